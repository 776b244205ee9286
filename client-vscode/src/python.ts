/** The Python that runs the server: which one, whether it has promptxray, where it runs. */

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';

import {
  CHECK_ARGS,
  chooseInterpreter,
  fromPythonExtensionApi,
  Interpreter,
  serverCwd,
} from './common/interpreter';

const PYTHON_EXTENSION = 'ms-python.python';
const CHECK_TIMEOUT_MS = 60_000;
const API_TIMEOUT_MS = 15_000;

/** The parts of the Python extension's `environments` API used here (all optional: guarded). */
interface PythonEnvironments {
  getActiveEnvironmentPath?: (resource?: vscode.Uri) => unknown;
  resolveEnvironment?: (environment: unknown) => unknown;
  onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
}

export class Python implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** The Python extension's active interpreter changed (watched once it has been asked). */
  readonly onDidChangeInterpreter = this.changed.event;
  private listener: vscode.Disposable | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  /** The interpreter for the `promptxray.python` setting (already filtered for trust). */
  async resolve(setting: string | null): Promise<Interpreter> {
    const trusted = vscode.workspace.isTrusted;
    const fromExtension = !setting && trusted ? await this.pythonExtensionInterpreter() : null;
    return chooseInterpreter({
      setting,
      pythonExtension: fromExtension,
      trusted,
      platform: process.platform,
      workspaceFolder: workspaceFolder(),
      home: os.homedir(),
    });
  }

  /** The folder Python runs in: never the workspace when it is not trusted. */
  cwd(): string {
    const folder = this.context.globalStorageUri.fsPath;
    fs.mkdirSync(folder, { recursive: true });
    return serverCwd(vscode.workspace.isTrusted, workspaceFolder(), folder);
  }

  /** Run `python -c "import promptxray.server"`; the error text when it fails. */
  checkInstalled(interpreter: Interpreter): Promise<string | undefined> {
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

  /** The Python extension's active interpreter, every step guarded; null when unavailable. */
  private async pythonExtensionInterpreter(): Promise<string[] | null> {
    const extension = vscode.extensions.getExtension(PYTHON_EXTENSION);
    if (!extension) {
      return null;
    }
    try {
      const api: unknown = extension.isActive
        ? extension.exports
        : await withTimeout(Promise.resolve(extension.activate()), API_TIMEOUT_MS);
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
          API_TIMEOUT_MS,
        )) as { executable?: { uri?: vscode.Uri } } | undefined;
        resolved = env?.executable?.uri?.fsPath ?? null;
      }
      this.watch(environments);
      return fromPythonExtensionApi(api, resolved, resource);
    } catch (error) {
      this.output.warn(`The Python extension's interpreter is unavailable: ${String(error)}`);
      return null;
    }
  }

  private watch(environments: PythonEnvironments | undefined): void {
    const event = environments?.onDidChangeActiveEnvironmentPath;
    if (this.listener || typeof event !== 'function') {
      return;
    }
    try {
      this.listener = event(() => this.changed.fire());
    } catch {
      // not the event we expected
    }
  }

  dispose(): void {
    this.listener?.dispose();
    this.changed.dispose();
  }
}

function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
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
