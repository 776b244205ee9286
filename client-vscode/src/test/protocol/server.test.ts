/**
 * The real promptxray language server over stdio, driven the way the extension drives it:
 * the same initializationOptions (built by the extension's own settings code, with the tiny
 * stories260K model), the same documents, commands and configuration changes.
 *
 * Python: $PROMPTXRAY_PYTHON, else <repo>/.venv/bin/python, else python3.
 * Model:  $PROMPTXRAY_STORIES, else <repo>/tests/models/stories260K.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import {
  createProtocolConnection,
  DiagnosticSeverity,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  Hover,
  InitializedNotification,
  InitializeRequest,
  InitializeResult,
  InlayHint,
  InlayHintRequest,
  LogMessageNotification,
  ProtocolConnection,
  PublishDiagnosticsNotification,
  PublishDiagnosticsParams,
  SemanticTokens,
  SemanticTokensRequest,
  ShowMessageNotification,
  ShowMessageParams,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCreateRequest,
  CodeLensRequest,
  HoverRequest,
  MessageType,
} from 'vscode-languageserver-protocol/node';

import { EXPLANATION_REQUEST, SERVER_COMMANDS, STATUS_NOTIFICATION } from '../../common/constants';
import { ConfigSource, didChangeConfigurationParams, readSettings, toInitializationOptions } from '../../common/settings';
import { STAGES, StatusModel, StatusParams } from '../../common/status';
import { readJson, storiesModel, testPython } from '../paths';

const TIMEOUT = 120_000;

/** What VS Code's `getConfiguration('promptxray')` would give with only `model` set by the user. */
const userConfig = (values: Record<string, unknown>): ConfigSource => ({
  inspect: <T>(key: string) => ({ key, globalValue: values[key] as T | undefined }),
});

function waitFor<T>(what: string, register: (resolve: (value: T) => void) => void, ms = TIMEOUT): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

describe('promptxray language server over stdio', { timeout: TIMEOUT * 3 }, () => {
  const python = testPython();
  const model = storiesModel();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promptxray-protocol-'));
  const file = path.join(dir, 'capital.prompt');
  const text = 'Once upon a time there was a little cat.\nThe cat liked to\n';
  const uri = pathToFileURL(file).href;
  const settings = readSettings(userConfig({ model }), true);
  // every setting the server knows, as the extension sends it (defaults but for the model)
  const initializationOptions = toInitializationOptions(settings);

  let server: ChildProcess;
  let connection: ProtocolConnection;
  let initialized: InitializeResult;
  let stderr = '';
  const messages: ShowMessageParams[] = [];
  const progress: WorkDoneProgressBegin[] = [];
  const stages: StatusParams[] = [];
  const status = new StatusModel();
  let diagnosticsListeners: ((p: PublishDiagnosticsParams) => void)[] = [];

  before(async () => {
    assert.ok(fs.existsSync(model), `the test model is missing: ${model} (set PROMPTXRAY_STORIES)`);
    fs.writeFileSync(file, text);
    server = spawn(python, ['-m', 'promptxray.server'], {
      cwd: dir,
      env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    server.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000); // drained, kept for failures
    });
    connection = createProtocolConnection(
      new StreamMessageReader(server.stdout!),
      new StreamMessageWriter(server.stdin!),
    );
    // what vscode-languageclient does with the server's requests and notifications
    connection.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      connection.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === 'begin') {
          progress.push(value);
        }
      });
      return null;
    });
    connection.onRequest('workspace/semanticTokens/refresh', () => null);
    connection.onRequest('workspace/codeLens/refresh', () => null);
    connection.onRequest('workspace/inlayHint/refresh', () => null);
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('window/showMessageRequest', () => null);
    connection.onNotification(ShowMessageNotification.type, (params) => messages.push(params));
    connection.onNotification(LogMessageNotification.type, () => undefined);
    // what the extension's status bar reads
    connection.onNotification(STATUS_NOTIFICATION, (params: StatusParams) => {
      stages.push(params);
      status.stage(params);
    });
    connection.onNotification(PublishDiagnosticsNotification.type, (params) => {
      status.diagnostics(
        params.uri,
        params.diagnostics.map((d) => ({ source: d.source, severity: (d.severity ?? 1) - 1, message: d.message })),
      );
      diagnosticsListeners.forEach((listener) => listener(params));
    });
    connection.listen();
    status.server('starting');

    initialized = await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: pathToFileURL(dir).href,
      workspaceFolders: [{ uri: pathToFileURL(dir).href, name: 'test' }],
      initializationOptions,
      capabilities: {
        window: { workDoneProgress: true, showMessage: {} },
        workspace: {
          configuration: false,
          semanticTokens: { refreshSupport: true },
          codeLens: { refreshSupport: true },
          inlayHint: { refreshSupport: true },
          executeCommand: { dynamicRegistration: true },
        },
        textDocument: {
          hover: { contentFormat: ['markdown', 'plaintext'] },
          publishDiagnostics: { tagSupport: { valueSet: [1, 2] } },
          semanticTokens: {
            requests: { full: true, range: true },
            tokenTypes: ['xrayPositive', 'xrayNegative'],
            tokenModifiers: ['level1', 'level2', 'level3', 'level4', 'level5'],
            formats: ['relative'],
          },
          codeLens: {},
          inlayHint: {},
        },
      },
    });
    await connection.sendNotification(InitializedNotification.type, {});
    status.server('running');
  });

  after(() => {
    diagnosticsListeners = [];
    if (server && server.exitCode === null) {
      server.kill();
    }
    connection?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends the server every setting it reads, new ones included', () => {
    assert.deepEqual(Object.keys(initializationOptions).sort(), [
      'autoBudgetSeconds',
      'backend',
      'concurrency',
      'debounceMs',
      'device',
      'dtype',
      'endpoint',
      'faithfulness',
      'granularity',
      'inlayHints',
      'keyVariable',
      'language',
      'maxNewTokens',
      'maxRequests',
      'method',
      'model',
      'pricePerMillionTokens',
      'requestTimeoutSeconds',
      'selfExplain',
      'servedModel',
      'tier',
      'trigger',
      'unnecessaryThreshold',
    ]);
    assert.equal(initializationOptions.model, model);
    assert.equal(initializationOptions.faithfulness, true);
    assert.equal(initializationOptions.autoBudgetSeconds, 5);
    assert.equal(initializationOptions.language, 'en');
    assert.equal(initializationOptions.selfExplain, false);
  });

  it('announces the semantic-token legend the extension colours', () => {
    const legend = initialized.capabilities.semanticTokensProvider?.legend;
    const pkg = readJson<{
      contributes: {
        semanticTokenTypes: { id: string }[];
        semanticTokenModifiers: { id: string }[];
        configurationDefaults: Record<string, { rules: Record<string, unknown> }>;
      };
    }>('package.json');
    assert.deepEqual(legend?.tokenTypes, pkg.contributes.semanticTokenTypes.map((t) => t.id));
    assert.deepEqual(legend?.tokenModifiers, pkg.contributes.semanticTokenModifiers.map((m) => m.id));
    const rules = Object.keys(pkg.contributes.configurationDefaults['editor.semanticTokenColorCustomizations'].rules);
    for (const type of legend.tokenTypes) {
      for (const modifier of legend.tokenModifiers) {
        assert.ok(rules.includes(`${type}.${modifier}`), `a colour for ${type}.${modifier}`);
      }
    }
  });

  it('serves the commands the client calls and intercepts', () => {
    const commands = initialized.capabilities.executeCommandProvider?.commands ?? [];
    for (const id of Object.values(SERVER_COMMANDS)) {
      assert.ok(commands.includes(id), id);
    }
  });

  it('publishes promptxray diagnostics when a prompt opens', { timeout: TIMEOUT }, async () => {
    const published = waitFor<PublishDiagnosticsParams>('publishDiagnostics', (resolve) => {
      diagnosticsListeners.push((params) => {
        if (params.uri === uri && params.diagnostics.length > 0) {
          resolve(params);
        }
      });
    });
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'prompt', version: 1, text },
    });
    const params = await published;
    assert.ok(params.diagnostics.every((d) => d.source === 'promptxray'));
    const failures = params.diagnostics.filter((d) => (d.severity ?? 1) <= DiagnosticSeverity.Warning);
    assert.deepEqual(failures, [], `no errors or warnings (stderr: ${stderr.slice(-2000)})`);
  });

  it('reports the machine-readable stages the status bar reads', async () => {
    // the default (occlusion, granularity auto) sends its anytime stages before it is ready
    await waitFor<void>('the document to be ready', (resolve) => {
      const poll = setInterval(() => {
        if (status.state(uri) === 'ready' && stages.some((s) => s.uri === uri && s.stage === 'ready')) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    const names = stages.filter((s) => s.uri === uri).map((s) => s.stage);
    assert.equal(names[0], 'queued', JSON.stringify(names));
    assert.equal(names[names.length - 1], 'ready', JSON.stringify(names));
    for (const stage of ['load', 'target', 'lines']) {
      assert.ok(names.includes(stage), `${stage} in ${JSON.stringify(names)}`);
    }
    assert.ok(names.every((s) => (STAGES as readonly string[]).includes(s)), JSON.stringify(names));
    for (const s of stages) {
      assert.ok(Number.isInteger(s.done) && Number.isInteger(s.total) && s.done >= 0, JSON.stringify(s));
      assert.ok(s.total === 0 || s.done <= s.total, JSON.stringify(s));
    }
    assert.equal(status.view(settings, uri).text, '$(eye) promptxray: stories260K · torch · ready');
    // people still get the work-done progress VS Code shows (and can cancel)
    assert.equal(progress[0]?.title, 'promptxray: capital.prompt');
  });

  let tokens: number[] = [];

  it('returns the heatmap as semantic tokens', async () => {
    const result: SemanticTokens | null = await connection.sendRequest(SemanticTokensRequest.type, {
      textDocument: { uri },
    });
    tokens = result?.data ?? [];
    assert.ok(tokens.length > 0 && tokens.length % 5 === 0, `semantic tokens: ${JSON.stringify(tokens)}`);
    for (let i = 0; i < tokens.length; i += 5) {
      const [, , length, type, modifiers] = tokens.slice(i, i + 5);
      assert.ok(length > 0);
      assert.ok(type === 0 || type === 1);
      assert.ok([1, 2, 4, 8, 16].includes(modifiers), `one level modifier, got ${modifiers}`);
    }
  });

  it('hovers with the score', async () => {
    const [line, character] = [tokens[0], tokens[1]];
    const hover: Hover | null = await connection.sendRequest(HoverRequest.type, {
      textDocument: { uri },
      position: { line, character },
    });
    const value = (hover?.contents as { value?: string } | undefined)?.value ?? '';
    assert.match(value, /score/);
    assert.match(value, /stories260K/);
  });

  it('puts the commands the middleware completes on the code lens', async () => {
    const lenses = ((await connection.sendRequest(CodeLensRequest.type, { textDocument: { uri } })) ?? []);
    const commands = lenses.map((l) => l.command?.command);
    assert.ok(commands.includes(SERVER_COMMANDS.explainWith));
    assert.ok(commands.includes(SERVER_COMMANDS.setTarget));
    const completed: string[] = [SERVER_COMMANDS.explainWith, SERVER_COMMANDS.setTarget];
    for (const lens of lenses.filter((l) => completed.includes(l.command?.command ?? ''))) {
      assert.deepEqual(lens.command?.arguments, [uri], 'just the uri: the client asks for the rest');
    }
  });

  it('explains with a chosen method and target, as the palette commands do', { timeout: TIMEOUT }, async () => {
    const result = (await connection.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_COMMANDS.explain,
      arguments: [uri, 'gradient_x_input'],
    })) as { method?: string; error?: string };
    assert.equal(result.method, 'gradient_x_input', JSON.stringify(result));
    const target = (await connection.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_COMMANDS.setTarget,
      arguments: [uri, ' dragon'],
    })) as { target?: string };
    assert.equal(target.target?.trim(), 'dragon', JSON.stringify(target));
    const cleared = (await connection.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_COMMANDS.setTarget,
      arguments: [uri, null],
    })) as { target?: string };
    assert.notEqual(cleared.target?.trim(), 'dragon', 'null clears the target');
  });

  it('compares methods', { timeout: TIMEOUT }, async () => {
    const result = (await connection.sendRequest(ExecuteCommandRequest.type, {
      command: SERVER_COMMANDS.compareMethods,
      arguments: [uri, ['occlusion', 'gradient_x_input']],
    })) as { methods: string[]; pairs: { methods: string[] }[]; summary: string };
    assert.deepEqual(result.methods, ['occlusion', 'gradient_x_input']);
    assert.equal(result.pairs.length, 1);
    assert.match(result.summary, /Spearman/);
  });

  it('returns the Explanation JSON', async () => {
    const explanation = await connection.sendRequest<{
      model: string;
      backend: string;
      spans: { text: string; start: number; end: number; score: number }[];
      target: { text: string; prob: number };
    }>(EXPLANATION_REQUEST, { uri });
    assert.equal(explanation.backend, 'torch');
    assert.ok(explanation.spans.length > 0);
    assert.equal(typeof explanation.target.prob, 'number');
  });

  it('takes setting changes in the shape the extension sends them', { timeout: TIMEOUT }, async () => {
    await connection.sendNotification(
      DidChangeConfigurationNotification.type,
      didChangeConfigurationParams({
        ...settings,
        inlayHints: true,
        faithfulness: false,
        autoBudgetSeconds: 2,
        language: 'zh',
        selfExplain: false,
      }),
    );
    const hints = await waitFor<InlayHint[]>('inlay hints', (resolve) => {
      const poll = async (): Promise<void> => {
        const result = ((await connection.sendRequest(InlayHintRequest.type, {
          textDocument: { uri },
          range: { start: { line: 0, character: 0 }, end: { line: 3, character: 0 } },
        })) ?? []);
        if (result.length > 0) {
          resolve(result);
        } else {
          setTimeout(() => void poll(), 100);
        }
      };
      void poll();
    });
    assert.ok(hints.length > 0);
  });

  it('never warned about a setting the extension sent', () => {
    const bad = messages.filter((m) => m.type <= MessageType.Warning || /setting/i.test(m.message));
    assert.deepEqual(bad, []);
  });

  it('shuts down cleanly', { timeout: 30_000 }, async () => {
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    await connection.sendRequest(ShutdownRequest.type);
    await connection.sendNotification(ExitNotification.type);
    assert.equal(await exited, 0, stderr.slice(-2000));
  });
});
