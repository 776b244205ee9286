/**
 * The promptxray VS Code client: finds a Python with promptxray, starts its language server
 * (`python -m promptxray.server`, stdio) for prompt files, and adds the commands, the status
 * bar item and the HTML view. The logic that needs no VS Code lives in ./common.
 */

import { execFile, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { completeArguments, formatComparison, targetArgument, validateComparison } from './common/commands';
import {
  CLIENT_COMMANDS,
  EXPLANATION_REQUEST,
  LANGUAGE_IDS,
  METHOD_DESCRIPTIONS,
  METHODS,
  PROMPT_MD_PATTERN,
  RESTART_KEYS,
  SECTION,
  SERVER_COMMANDS,
} from './common/constants';
import { htmlCliArgs, secureHtml } from './common/html';
import {
  CHECK_ARGS,
  chooseInterpreter,
  displayCommand,
  fromPythonExtensionApi,
  installCommand,
  installHint,
  Interpreter,
  SERVER_ARGS,
  serverCwd,
} from './common/interpreter';
import {
  ClientSettings,
  didChangeConfigurationParams,
  ignoredWorkspaceKeys,
  needsRestart,
  readSettings,
  serverSettingsChanged,
  toInitializationOptions,
} from './common/settings';
import { StatusModel } from './common/status';

/** Where the server attaches: our two languages, and Markdown prompt files by name only. */
export const DOCUMENT_SELECTOR = [
  ...LANGUAGE_IDS.map((language) => ({ scheme: 'file', language })),
  { scheme: 'file', pattern: PROMPT_MD_PATTERN },
];

const PYTHON_EXTENSION = 'ms-python.python';

/** The parts of the Python extension's `environments` API used here (all optional: guarded). */
interface PythonEnvironments {
  getActiveEnvironmentPath?: (resource?: vscode.Uri) => unknown;
  resolveEnvironment?: (environment: unknown) => unknown;
  onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
}
const CHECK_TIMEOUT_MS = 60_000;

/** What `activate` returns, for other extensions and integration tests. */
export interface PromptXrayApi {
  /** The full Explanation JSON of an open prompt document (explaining it first if needed). */
  explanation(uri: vscode.Uri): Promise<unknown>;
}

class PromptXray implements vscode.Disposable {
  private readonly output: vscode.LogOutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly status = new StatusModel();
  private readonly disposables: vscode.Disposable[] = [];
  private settings: ClientSettings;
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private stopping = false;
  /** Set when the import check failed: no automatic retries until settings change or Restart. */
  private blocked = false;
  private warnedUntrusted = false;
  private pythonListener: vscode.Disposable | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('promptxray', { log: true });
    this.statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'promptxray';
    this.statusItem.command = CLIENT_COMMANDS.showLogs;
    this.settings = this.readSettings();
    this.disposables.push(this.output, this.statusItem);
  }

  // --- settings -------------------------------------------------------------------------------
  private readSettings(): ClientSettings {
    const config = vscode.workspace.getConfiguration(SECTION);
    const trusted = vscode.workspace.isTrusted;
    const ignored = ignoredWorkspaceKeys(config, trusted);
    if (ignored.length > 0 && !this.warnedUntrusted) {
      this.warnedUntrusted = true;
      this.output?.warn(
        `This workspace is not trusted: its ${ignored.map((k) => `${SECTION}.${k}`).join(', ')} ` +
          'value(s) are ignored; the user settings are used instead.',
      );
    }
    return readSettings(config, trusted);
  }

  private async onConfigurationChanged(): Promise<void> {
    const before = this.settings;
    const after = this.readSettings();
    this.settings = after;
    this.updateStatus();
    if (needsRestart(before, after)) {
      const changed = RESTART_KEYS.filter((key) => before[key] !== after[key]);
      this.output.info(`${changed.map((k) => `${SECTION}.${k}`).join(', ')} changed: restarting the server`);
      this.blocked = false;
      if (this.client || this.starting || this.hasPromptDocument()) {
        await this.restart();
      }
    } else if (serverSettingsChanged(before, after) && this.client?.state === State.Running) {
      await this.client.sendNotification(
        DidChangeConfigurationNotification.type,
        didChangeConfigurationParams(after),
      );
    }
  }

  /** Trust changes the interpreter (the Python extension's may now be used), the working folder
   * and the workspace values of python and model: start afresh. */
  private async onTrustGranted(): Promise<void> {
    this.settings = this.readSettings();
    this.blocked = false;
    this.output.info('The workspace is now trusted: restarting the server with its settings');
    if (this.client || this.starting || this.hasPromptDocument()) {
      await this.restart();
    }
  }

  // --- documents ------------------------------------------------------------------------------
  isPromptDocument(document: vscode.TextDocument | undefined): document is vscode.TextDocument {
    return document !== undefined && vscode.languages.match(DOCUMENT_SELECTOR, document) > 0;
  }

  private hasPromptDocument(): boolean {
    return vscode.workspace.textDocuments.some((d) => this.isPromptDocument(d));
  }

  private activePromptDocument(): vscode.TextDocument | undefined {
    const document = vscode.window.activeTextEditor?.document;
    if (this.isPromptDocument(document)) {
      return document;
    }
    void vscode.window.showWarningMessage(
      'promptxray: open a .prompt, .prompty or .prompt.md file (saved on disk) first.',
    );
    return undefined;
  }

  // --- the interpreter ------------------------------------------------------------------------
  private workspaceFolder(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  private privateFolder(): string {
    const folder = this.context.globalStorageUri.fsPath;
    fs.mkdirSync(folder, { recursive: true });
    return folder;
  }

  private cwd(): string {
    return serverCwd(vscode.workspace.isTrusted, this.workspaceFolder(), this.privateFolder());
  }

  /** The Python extension's active interpreter, every step guarded; null when unavailable. */
  private async pythonExtensionInterpreter(): Promise<string[] | null> {
    const extension = vscode.extensions.getExtension(PYTHON_EXTENSION);
    if (!extension) {
      return null;
    }
    try {
      const api: unknown = extension.isActive
        ? extension.exports
        : await withTimeout(Promise.resolve(extension.activate()), 15_000);
      const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
      let resolved: string | null = null;
      const environments = (api as { environments?: PythonEnvironments } | undefined)?.environments;
      if (
        environments &&
        typeof environments.getActiveEnvironmentPath === 'function' &&
        typeof environments.resolveEnvironment === 'function'
      ) {
        const active = environments.getActiveEnvironmentPath(resource);
        const env = (await withTimeout(
          Promise.resolve(environments.resolveEnvironment(active)),
          15_000,
        )) as { executable?: { uri?: vscode.Uri } } | undefined;
        resolved = env?.executable?.uri?.fsPath ?? null;
      }
      this.watchPythonExtension(environments);
      return fromPythonExtensionApi(api, resolved, resource);
    } catch (error) {
      this.output.warn(`The Python extension's interpreter is unavailable: ${String(error)}`);
      return null;
    }
  }

  /** Restart when the Python extension's interpreter changes (and it is the one in use). */
  private watchPythonExtension(environments: PythonEnvironments | undefined): void {
    if (this.pythonListener || !environments) {
      return;
    }
    const event = environments.onDidChangeActiveEnvironmentPath;
    if (typeof event !== 'function') {
      return;
    }
    try {
      this.pythonListener = event(() => {
        if (!this.settings.python && vscode.workspace.isTrusted && (this.client || this.blocked)) {
          this.output.info("The Python extension's interpreter changed: restarting the server");
          this.blocked = false;
          void this.restart();
        }
      });
      this.disposables.push(this.pythonListener);
    } catch {
      // not the event we expected
    }
  }

  async resolveInterpreter(): Promise<Interpreter> {
    const trusted = vscode.workspace.isTrusted;
    const fromExtension =
      !this.settings.python && trusted ? await this.pythonExtensionInterpreter() : null;
    return chooseInterpreter({
      setting: this.settings.python,
      pythonExtension: fromExtension,
      trusted,
      platform: process.platform,
      workspaceFolder: this.workspaceFolder(),
      home: os.homedir(),
    });
  }

  /** Run `python -c "import promptxray.server"`; the error text when it fails. */
  private checkInstalled(interpreter: Interpreter): Promise<string | undefined> {
    return new Promise((resolve) => {
      execFile(
        interpreter.command,
        [...interpreter.args, ...CHECK_ARGS],
        { cwd: this.cwd(), timeout: CHECK_TIMEOUT_MS, windowsHide: true },
        (error, _stdout, stderr) => {
          if (!error) {
            resolve(undefined);
          } else {
            const code = (error as NodeJS.ErrnoException).code;
            resolve(code === 'ENOENT' ? 'not found' : stderr.trim() || error.message);
          }
        },
      );
    });
  }

  // --- the client -----------------------------------------------------------------------------
  /** The running client, starting it if needed; undefined when it cannot start. */
  async ensureClient(): Promise<LanguageClient | undefined> {
    if (this.client && this.client.state === State.Stopped && !this.stopping) {
      // the language client gave up restarting a crashed server: start a new one
      this.output.warn('The server is not running: starting it again');
      const dead = this.client;
      this.client = undefined;
      void dead.dispose().catch(() => undefined);
    }
    if (this.client) {
      return this.client;
    }
    if (!this.starting) {
      this.starting = this.start().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async start(): Promise<LanguageClient | undefined> {
    this.status.server('starting');
    this.updateStatus();
    const interpreter = await this.resolveInterpreter();
    this.output.info(`Python (${interpreter.source}): ${displayCommand(interpreter)}`);
    const problem = await this.checkInstalled(interpreter);
    if (problem !== undefined) {
      this.blocked = true;
      const hint = installHint(interpreter, problem);
      this.output.error(hint);
      this.status.server('failed', hint);
      this.updateStatus();
      void this.showInstallError(interpreter, hint);
      return undefined;
    }
    const serverOptions: ServerOptions = {
      command: interpreter.command,
      args: [...interpreter.args, ...SERVER_ARGS],
      transport: TransportKind.stdio,
      options: { cwd: this.cwd(), env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      initializationOptions: toInitializationOptions(this.settings),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // the hover's "Full report" link runs this one server command, nothing else
      markdown: { isTrusted: { enabledCommands: [SERVER_COMMANDS.showReport] } },
      middleware: {
        executeCommand: async (command, args, next) => {
          const full = await completeArguments(command, args, this.askUser);
          if (full === undefined) {
            return undefined;
          }
          const result: unknown = await next(command, full);
          return result;
        },
        handleWorkDoneProgress: (token, params, next) => {
          this.status.progress(String(token), params);
          this.updateStatus();
          next(token, params);
        },
        handleDiagnostics: (uri, diagnostics, next) => {
          this.status.diagnostics(
            uri.toString(),
            diagnostics.map((d) => ({
              source: d.source,
              severity: d.severity,
              message: d.message,
            })),
          );
          this.updateStatus();
          next(uri, diagnostics);
        },
      },
    };
    const client = new LanguageClient('promptxray', 'promptxray', serverOptions, clientOptions);
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) {
        this.status.server('running');
      } else if (event.newState === State.Starting) {
        this.status.server('starting');
      } else if (this.stopping) {
        this.status.server('stopped');
      } else {
        this.status.server('failed', 'The language server stopped; see the promptxray logs.');
      }
      this.updateStatus();
    });
    try {
      await client.start();
    } catch (error) {
      const message = `promptxray: the language server failed to start: ${String(error)}`;
      this.output.error(message);
      this.status.server('failed', message);
      this.updateStatus();
      void vscode.window.showErrorMessage(message, 'Show Logs').then((choice) => {
        if (choice) {
          this.output.show();
        }
      });
      try {
        await client.dispose();
      } catch {
        // already gone
      }
      return undefined;
    }
    this.client = client;
    this.status.server('running');
    this.updateStatus();
    return client;
  }

  private async showInstallError(interpreter: Interpreter, hint: string): Promise<void> {
    const copy = 'Copy Install Command';
    const settings = 'Choose Interpreter…';
    const choice = await vscode.window.showErrorMessage(hint, copy, settings, 'Show Logs');
    if (choice === copy) {
      await vscode.env.clipboard.writeText(installCommand(interpreter));
    } else if (choice === settings) {
      await vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.python`);
    } else if (choice) {
      this.output.show();
    }
  }

  async stop(): Promise<void> {
    const client = this.client ?? (await this.starting);
    this.client = undefined;
    if (!client) {
      return;
    }
    this.stopping = true;
    try {
      await client.stop(10_000);
    } catch (error) {
      this.output.warn(`Stopping the server: ${String(error)}`);
    } finally {
      this.stopping = false;
      this.status.server('stopped');
      this.updateStatus();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    this.blocked = false;
    await this.ensureClient();
  }

  private maybeStart(document: vscode.TextDocument | undefined): void {
    if (!this.blocked && !this.client && !this.starting && this.isPromptDocument(document)) {
      void this.ensureClient();
    }
  }

  // --- status bar -----------------------------------------------------------------------------
  private updateStatus(): void {
    const document = vscode.window.activeTextEditor?.document;
    const view = this.status.view(this.settings, document?.uri.toString());
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    if (this.isPromptDocument(document) || view.state === 'error' || this.starting) {
      this.statusItem.show();
    } else {
      this.statusItem.hide();
    }
  }

  // --- user input -----------------------------------------------------------------------------
  private readonly askUser = {
    pickMethod: async (): Promise<string | undefined> => {
      const items = METHODS.map((method) => ({
        label: method,
        description: method === this.settings.method ? '(default)' : undefined,
        detail: METHOD_DESCRIPTIONS[method],
      }));
      const choice = await vscode.window.showQuickPick(items, {
        title: 'promptxray: explain with which method?',
        placeHolder: 'Attribution method',
      });
      return choice?.label;
    },
    askTarget: async (): Promise<string | undefined> =>
      vscode.window.showInputBox({
        title: 'promptxray: set the target',
        prompt:
          "The answer whose probability to explain. Leave empty to explain the model's own answer.",
        placeHolder: 'e.g.  Paris',
      }),
  };

  // --- commands -------------------------------------------------------------------------------
  private async execute(command: string, args: unknown[]): Promise<unknown> {
    const client = await this.ensureClient();
    if (!client) {
      return undefined;
    }
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command,
        arguments: args,
      });
      const error = (result as { error?: unknown } | null)?.error;
      if (typeof error === 'string') {
        void vscode.window.showErrorMessage(`promptxray: ${error}`);
      }
      return result;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.output.error(`${command}: ${message}`);
      void vscode.window.showErrorMessage(`promptxray: ${message}`);
      return undefined;
    }
  }

  private async explain(method?: string): Promise<void> {
    const document = this.activePromptDocument();
    if (!document) {
      return;
    }
    const uri = document.uri.toString();
    await this.execute(SERVER_COMMANDS.explain, method ? [uri, method] : [uri]);
  }

  private async explainWith(): Promise<void> {
    const document = this.activePromptDocument();
    const method = document && (await this.askUser.pickMethod());
    if (document && method) {
      await this.execute(SERVER_COMMANDS.explain, [document.uri.toString(), method]);
    }
  }

  private async setTarget(): Promise<void> {
    const document = this.activePromptDocument();
    const text = document && (await this.askUser.askTarget());
    if (document && text !== undefined) {
      await this.execute(SERVER_COMMANDS.setTarget, [document.uri.toString(), targetArgument(text)]);
    }
  }

  private async compareMethods(): Promise<void> {
    const document = this.activePromptDocument();
    if (!document) {
      return;
    }
    const preselected = new Set([this.settings.method, 'occlusion', 'gradient_x_input']);
    const picks = await vscode.window.showQuickPick(
      METHODS.map((method) => ({
        label: method,
        detail: METHOD_DESCRIPTIONS[method],
        picked: preselected.has(method),
      })),
      { title: 'promptxray: compare which methods? (two or more)', canPickMany: true },
    );
    if (!picks) {
      return;
    }
    const methods = picks.map((p) => p.label);
    const problem = validateComparison(methods);
    if (problem) {
      void vscode.window.showWarningMessage(`promptxray: ${problem}`);
      return;
    }
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `promptxray: comparing ${methods.join(', ')}` },
      () => this.execute(SERVER_COMMANDS.compareMethods, [document.uri.toString(), methods]),
    );
    if (result && typeof result === 'object' && 'pairs' in result) {
      const text = formatComparison(result as Parameters<typeof formatComparison>[0]);
      this.output.info(`Compare methods on ${document.uri.fsPath}:\n${text}`);
      await vscode.window.showInformationMessage('promptxray: method agreement', {
        modal: true,
        detail: text,
      });
    }
  }

  /** Run the CLI's HTML report on the document (its saved file, or a copy of unsaved text). */
  private async showHtml(): Promise<void> {
    const document = this.activePromptDocument();
    if (!document) {
      return;
    }
    const interpreter = await this.resolveInterpreter();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promptxray-'));
    const name = path.basename(document.uri.fsPath) || 'untitled.prompt';
    let file = document.uri.fsPath;
    if (document.isDirty || document.isUntitled || document.uri.scheme !== 'file') {
      file = path.join(tmp, name);
      fs.writeFileSync(file, document.getText(), 'utf8');
    }
    const out = path.join(tmp, 'explanation.html');
    const args = [...interpreter.args, ...htmlCliArgs(this.settings, file, out)];
    this.output.info(`HTML: ${displayCommand({ command: interpreter.command, args })}`);
    try {
      const ok = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `promptxray: explaining ${name}`,
          cancellable: true,
        },
        (_progress, token) => this.runCli(interpreter.command, args, token),
      );
      if (!ok) {
        return;
      }
      const html = fs.readFileSync(out, 'utf8');
      const panel = vscode.window.createWebviewPanel(
        'promptxray.explanation',
        `promptxray: ${name}`,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: false, enableForms: false, localResourceRoots: [] },
      );
      panel.webview.html = secureHtml(html, panel.webview.cspSource);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  private runCli(command: string, args: string[], token: vscode.CancellationToken): Promise<boolean> {
    return new Promise((resolve) => {
      const child = spawn(command, args, {
        cwd: this.cwd(),
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
        windowsHide: true,
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
      });
      child.stdout.resume();
      const cancel = token.onCancellationRequested(() => child.kill());
      child.on('error', (error) => {
        cancel.dispose();
        void vscode.window.showErrorMessage(`promptxray: could not run ${command}: ${error.message}`);
        resolve(false);
      });
      child.on('close', (code) => {
        cancel.dispose();
        if (code === 0) {
          resolve(true);
          return;
        }
        if (!token.isCancellationRequested) {
          this.output.error(`promptxray explain failed (exit ${code}):\n${stderr}`);
          const last = stderr.trim().split('\n').slice(-1)[0] || `exit status ${code}`;
          void vscode.window.showErrorMessage(`promptxray: ${last}`, 'Show Logs').then((c) => {
            if (c) {
              this.output.show();
            }
          });
        }
        resolve(false);
      });
    });
  }

  // --- wiring ---------------------------------------------------------------------------------
  activate(): PromptXrayApi {
    const command = (id: string, run: () => Promise<void> | void): void => {
      this.disposables.push(vscode.commands.registerCommand(id, run));
    };
    command(CLIENT_COMMANDS.explain, () => this.explain());
    command(CLIENT_COMMANDS.explainWith, () => this.explainWith());
    command(CLIENT_COMMANDS.setTarget, () => this.setTarget());
    command(CLIENT_COMMANDS.compareMethods, () => this.compareMethods());
    command(CLIENT_COMMANDS.showHtml, () => this.showHtml());
    command(CLIENT_COMMANDS.restart, () => this.restart());
    command(CLIENT_COMMANDS.showLogs, () => this.output.show());
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration(SECTION)) {
          void this.onConfigurationChanged();
        }
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.onTrustGranted()),
      vscode.workspace.onDidOpenTextDocument((document) => this.maybeStart(document)),
      vscode.workspace.onDidCloseTextDocument((document) => this.status.forget(document.uri.toString())),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        this.maybeStart(editor?.document);
        this.updateStatus();
      }),
    );
    this.updateStatus();
    for (const document of vscode.workspace.textDocuments) {
      this.maybeStart(document);
    }
    return {
      explanation: async (uri: vscode.Uri): Promise<unknown> => {
        const client = await this.ensureClient();
        return client?.sendRequest(EXPLANATION_REQUEST, { uri: uri.toString() });
      },
    };
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) {
      disposable.dispose();
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

let instance: PromptXray | undefined;

export function activate(context: vscode.ExtensionContext): PromptXrayApi {
  instance = new PromptXray(context);
  context.subscriptions.push(instance);
  return instance.activate();
}

export async function deactivate(): Promise<void> {
  const current = instance;
  instance = undefined;
  await current?.stop();
}
