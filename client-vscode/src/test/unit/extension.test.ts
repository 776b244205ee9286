/**
 * The extension's entry point with the `vscode` module stubbed: activation registers every
 * contributed command, starts nothing without a prompt file, and a missing promptxray install
 * gives the actionable error and an error status.
 */
import assert from 'node:assert/strict';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { readJson } from '../paths';

type Fn = (...args: unknown[]) => unknown;

interface Calls {
  commands: Map<string, Fn>;
  errors: string[];
  warnings: string[];
  statusText: string[];
}

interface Current {
  calls: Calls;
  options: { python: string; matches: boolean };
}

/** One stub for the whole file (modules cache their `vscode`); it reads `current` on each call. */
function makeStub(current: Current) {
  class Disposable {
    constructor(private readonly fn?: () => void) {}
    dispose(): void {
      this.fn?.();
    }
    static from(...items: { dispose(): void }[]): Disposable {
      return new Disposable(() => items.forEach((d) => d.dispose()));
    }
  }
  class EventEmitter {
    event = (): Disposable => new Disposable();
    fire(): void {}
    dispose(): void {}
  }
  const event = (): Disposable => new Disposable();
  const log = {
    info(): void {},
    warn(): void {},
    error(): void {},
    trace(): void {},
    debug(): void {},
    show(): void {},
    hide(): void {},
    append(): void {},
    appendLine(): void {},
    replace(): void {},
    clear(): void {},
    dispose(): void {},
  };
  const document = {
    uri: { toString: () => 'file:///tmp/a.prompt', fsPath: '/tmp/a.prompt', scheme: 'file' },
    languageId: 'prompt',
  };
  const base: Record<string, unknown> = {
    Disposable,
    EventEmitter,
    StatusBarAlignment: { Left: 1, Right: 2 },
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    ViewColumn: { Beside: -2 },
    ThemeColor: class {
      constructor(readonly id: string) {}
    },
    commands: {
      registerCommand: (id: string, fn: Fn) => {
        current.calls.commands.set(id, fn);
        return new Disposable(() => current.calls.commands.delete(id));
      },
      executeCommand: () => Promise.resolve(undefined),
    },
    window: {
      createOutputChannel: () => log,
      createStatusBarItem: () => {
        const item = {
          _text: '',
          get text(): string {
            return this._text;
          },
          set text(value: string) {
            this._text = value;
            current.calls.statusText.push(value);
          },
          show(): void {},
          hide(): void {},
          dispose(): void {},
        };
        return item;
      },
      onDidChangeActiveTextEditor: event,
      get activeTextEditor() {
        return current.options.matches ? { document } : undefined;
      },
      showWarningMessage: (message: string) => {
        current.calls.warnings.push(message);
        return Promise.resolve(undefined);
      },
      showErrorMessage: (message: string) => {
        current.calls.errors.push(message);
        return Promise.resolve(undefined);
      },
      showInformationMessage: () => Promise.resolve(undefined),
    },
    workspace: {
      isTrusted: true,
      workspaceFolders: undefined,
      get textDocuments() {
        return current.options.matches ? [document] : [];
      },
      getConfiguration: () => ({
        inspect: (key: string) => ({ key, defaultValue: undefined, globalValue: key === 'python' ? current.options.python : undefined }),
        get: () => undefined,
      }),
      onDidChangeConfiguration: event,
      onDidGrantWorkspaceTrust: event,
      onDidOpenTextDocument: event,
      onDidCloseTextDocument: event,
    },
    languages: { match: () => (current.options.matches ? 10 : 0) },
    extensions: { getExtension: () => undefined },
    env: { clipboard: { writeText: () => Promise.resolve() } },
  };
  // anything else vscode-languageclient touches while loading: an empty class
  return new Proxy(base, {
    get(target, prop: string) {
      if (!(prop in target)) {
        target[prop] = class {};
      }
      return target[prop];
    },
  });
}

const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const originalLoad = loader._load;
const current: Current = {
  calls: { commands: new Map(), errors: [], warnings: [], statusText: [] },
  options: { python: '/nonexistent/python', matches: false },
};
const stub = makeStub(current);

before(() => {
  loader._load = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? stub : originalLoad.call(this, request, ...rest);
  };
});

after(() => {
  loader._load = originalLoad;
});

const context = () => ({
  subscriptions: [] as { dispose(): void }[],
  globalStorageUri: { fsPath: path.join(os.tmpdir(), 'promptxray-test-storage') },
});

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) {
      throw new Error('timed out');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('extension entry point (vscode stubbed)', () => {
  it('registers every contributed command and starts nothing without a prompt file', async () => {
    const calls: Calls = { commands: new Map(), errors: [], warnings: [], statusText: [] };
    Object.assign(current, { calls, options: { python: '/nonexistent/python', matches: false } });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const extension = require('../../extension') as typeof import('../../extension');
    const ctx = context();
    const api = extension.activate(ctx as never);
    assert.equal(typeof api.explanation, 'function');
    const pkg = readJson<{ contributes: { commands: { command: string }[] } }>('package.json');
    assert.deepEqual([...calls.commands.keys()].sort(), pkg.contributes.commands.map((c) => c.command).sort());
    await calls.commands.get('promptxray.client.explain')?.();
    assert.match(calls.warnings[0] ?? '', /open a \.prompt, \.prompty or \.prompt\.md file/);
    assert.equal(calls.errors.length, 0, 'no server start was attempted');
    await extension.deactivate();
    ctx.subscriptions.forEach((d) => d.dispose());
    assert.equal(calls.commands.size, 0, 'disposing unregisters the commands');
  });

  it('explains how to install promptxray when the interpreter lacks it', async () => {
    const calls: Calls = { commands: new Map(), errors: [], warnings: [], statusText: [] };
    Object.assign(current, { calls, options: { python: '/nonexistent/python3', matches: true } });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const extension = require('../../extension') as typeof import('../../extension');
    const ctx = context();
    extension.activate(ctx as never); // a prompt file is open: it starts the server
    await until(() => calls.errors.length > 0);
    assert.match(calls.errors[0], /\/nonexistent\/python3 -m pip install promptxray/);
    assert.match(calls.errors[0], /promptxray\.python/);
    assert.match(calls.statusText[calls.statusText.length - 1], /promptxray: default model · torch · error/);
    await extension.deactivate();
    ctx.subscriptions.forEach((d) => d.dispose());
  });
});
