/** The language client's life cycle: start, stop, restart (settings, trust), requests. */

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

import { completeArguments } from './common/commands';
import { RESTART_KEYS, SERVER_COMMANDS, STATUS_NOTIFICATION } from './common/constants';
import { displayCommand, installCommand, installHint, Interpreter, SERVER_ARGS } from './common/interpreter';
import { SECTION } from './common/manifest';
import { didChangeConfigurationParams, needsRestart, serverSettingsChanged, toInitializationOptions } from './common/settings';
import { StatusParams } from './common/status';
import { Configuration } from './configuration';
import { DOCUMENT_SELECTOR, hasPromptDocument, isCodeDocument, isPromptDocument } from './documents';
import { askUser } from './pickers';
import { Python } from './python';
import { StatusBar } from './statusBar';

export class Server {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private stopping = false;
  /** Set when the import check failed: no automatic retries until settings change or Restart. */
  private blocked = false;

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly config: Configuration,
    private readonly python: Python,
    private readonly status: StatusBar,
  ) {}

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
    this.starting ??= this.start().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** Start for a prompt document, unless running, starting or blocked by a failed check. */
  maybeStart(document: vscode.TextDocument | undefined): void {
    if (!this.blocked && !this.client && !this.starting && isPromptDocument(document)) {
      void this.ensureClient();
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
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    this.blocked = false;
    await this.ensureClient();
  }

  /** Settings changed: restart for what the server runs on, else tell the running server. */
  async onSettingsChanged(): Promise<void> {
    const { before, after } = this.config.reload();
    this.status.update();
    if (needsRestart(before, after)) {
      const changed = RESTART_KEYS.filter((key) => before[key] !== after[key]);
      this.output.info(`${changed.map((k) => `${SECTION}.${k}`).join(', ')} changed: restarting the server`);
      await this.restartIfWanted();
    } else if (serverSettingsChanged(before, after) && this.client?.state === State.Running) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(after));
    }
  }

  /** Trust changes the interpreter (the Python extension's may now be used), the working folder
   * and the workspace values of python, model, endpoint and keyVariable: start afresh. */
  async onTrustGranted(): Promise<void> {
    this.config.reload();
    this.output.info('The workspace is now trusted: restarting the server with its settings');
    await this.restartIfWanted();
  }

  /** The Python extension's interpreter changed: restart when it is the one in use. */
  async onInterpreterChanged(): Promise<void> {
    if (!this.config.current.python && vscode.workspace.isTrusted && (this.client || this.blocked)) {
      this.output.info("The Python extension's interpreter changed: restarting the server");
      this.blocked = false;
      await this.restart();
    }
  }

  private async restartIfWanted(): Promise<void> {
    this.blocked = false;
    if (this.client || this.starting || hasPromptDocument()) {
      await this.restart();
    }
  }

  /** Run a server command; its `error`, or a failed request, is shown to the user. */
  async execute(command: string, args: unknown[]): Promise<unknown> {
    const client = await this.ensureClient();
    if (!client) {
      return undefined;
    }
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
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

  private async start(): Promise<LanguageClient | undefined> {
    this.status.server('starting');
    const interpreter = await this.python.resolve(this.config.current.python);
    this.output.info(`Python (${interpreter.source}): ${displayCommand(interpreter)}`);
    const problem = await this.python.checkInstalled(interpreter);
    if (problem !== undefined) {
      this.blocked = true;
      const hint = installHint(interpreter, problem);
      this.output.error(hint);
      this.status.server('failed', hint);
      void this.showInstallError(interpreter, hint);
      return undefined;
    }
    const client = this.createClient(interpreter);
    try {
      await client.start();
    } catch (error) {
      const message = `promptxray: the language server failed to start: ${String(error)}`;
      this.output.error(message);
      this.status.server('failed', message);
      void vscode.window.showErrorMessage(message, 'Show Logs').then((choice) => {
        if (choice) {
          this.output.show();
        }
      });
      await client.dispose().catch(() => undefined);
      return undefined;
    }
    this.client = client;
    this.status.server('running');
    return client;
  }

  private createClient(interpreter: Interpreter): LanguageClient {
    const serverOptions: ServerOptions = {
      command: interpreter.command,
      args: [...interpreter.args, ...SERVER_ARGS],
      transport: TransportKind.stdio,
      options: { cwd: this.python.cwd(), env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const ask = askUser(() => this.config.current.method);
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      initializationOptions: toInitializationOptions(this.config.current),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // the hover's "Full report" link runs this one server command, nothing else
      markdown: { isTrusted: { enabledCommands: [SERVER_COMMANDS.showReport] } },
      middleware: {
        // the code lens's Explain with… and Set target… ask the user for what they lack
        executeCommand: async (command, args, next) => {
          const full = await completeArguments(command, args, ask);
          return full === undefined ? undefined : ((await next(command, full)) as unknown);
        },
        // in code files the code's own language server keeps the colouring
        provideDocumentSemanticTokens: (document, token, next) =>
          isCodeDocument(document) ? undefined : next(document, token),
        provideDocumentRangeSemanticTokens: (document, range, token, next) =>
          isCodeDocument(document) ? undefined : next(document, range, token),
        handleDiagnostics: (uri, diagnostics, next) => {
          const brief = diagnostics.map(({ source, severity, message }) => ({ source, severity, message }));
          this.status.diagnostics(uri.toString(), brief);
          next(uri, diagnostics);
        },
      },
    };
    const client = new LanguageClient('promptxray', 'promptxray', serverOptions, clientOptions);
    client.onNotification(STATUS_NOTIFICATION, (params: StatusParams) => this.status.stage(params));
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
    });
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
}
