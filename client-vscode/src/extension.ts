/** Wiring only: activate creates the client's modules and connects them to VS Code's events. */

import * as vscode from 'vscode';

import { EXPLANATION_REQUEST } from './common/constants';
import { SECTION } from './common/manifest';
import { registerCommands } from './commands';
import { Configuration } from './configuration';
import { Python } from './python';
import { Server } from './server';
import { StatusBar } from './statusBar';

/** What `activate` returns, for other extensions and integration tests. */
export interface PromptXrayApi {
  /** The full Explanation JSON of an open prompt document (explaining it first if needed). */
  explanation(uri: vscode.Uri): Promise<unknown>;
}

let server: Server | undefined;

export function activate(context: vscode.ExtensionContext): PromptXrayApi {
  const output = vscode.window.createOutputChannel('promptxray', { log: true });
  const config = new Configuration(output);
  const status = new StatusBar(() => config.current);
  const python = new Python(context, output);
  const current = new Server(output, config, python, status);
  server = current;
  context.subscriptions.push(
    output,
    status,
    python,
    ...registerCommands({ server: current, config, python, output }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SECTION)) {
        void current.onSettingsChanged();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void current.onTrustGranted()),
    python.onDidChangeInterpreter(() => void current.onInterpreterChanged()),
    vscode.workspace.onDidOpenTextDocument((document) => current.maybeStart(document)),
    vscode.workspace.onDidCloseTextDocument((document) => status.forget(document.uri.toString())),
    vscode.window.onDidChangeActiveTextEditor((editor) => {
      current.maybeStart(editor?.document);
      status.update();
    }),
  );
  status.update();
  vscode.workspace.textDocuments.forEach((document) => current.maybeStart(document));
  return {
    explanation: async (uri: vscode.Uri): Promise<unknown> => {
      const client = await current.ensureClient();
      return client?.sendRequest(EXPLANATION_REQUEST, { uri: uri.toString() });
    },
  };
}

export async function deactivate(): Promise<void> {
  const current = server;
  server = undefined;
  await current?.stop();
}
