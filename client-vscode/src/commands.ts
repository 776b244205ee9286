/** The palette and editor-title commands: each a small function of the active prompt. */

import * as vscode from 'vscode';

import { diffDocument, formatComparison, targetArgument, validateComparison } from './common/commands';
import { CLIENT_COMMANDS, SERVER_COMMANDS } from './common/constants';
import { Configuration } from './configuration';
import { activePromptDocument } from './documents';
import { showHtml } from './htmlView';
import { askTarget, pickMethod, pickMethods } from './pickers';
import { Python } from './python';
import { Server } from './server';

export interface CommandDeps {
  server: Server;
  config: Configuration;
  python: Python;
  output: vscode.LogOutputChannel;
}

/** Register every `promptxray.client.*` command; the disposables unregister them. */
export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { server, config, python, output } = deps;
  const withDocument =
    (run: (document: vscode.TextDocument) => Promise<unknown>) =>
    async (): Promise<void> => {
      const document = activePromptDocument();
      if (document) {
        await run(document);
      }
    };
  const handlers: Record<keyof typeof CLIENT_COMMANDS, () => unknown> = {
    explain: withDocument((document) => server.execute(SERVER_COMMANDS.explain, [document.uri.toString()])),
    explainWith: withDocument(async (document) => {
      const method = await pickMethod(config.current.method);
      if (method) {
        await server.execute(SERVER_COMMANDS.explain, [document.uri.toString(), method]);
      }
    }),
    setTarget: withDocument(async (document) => {
      const text = await askTarget();
      if (text !== undefined) {
        await server.execute(SERVER_COMMANDS.setTarget, [document.uri.toString(), targetArgument(text)]);
      }
    }),
    compareMethods: withDocument((document) => compareMethods(document, deps)),
    showHtml: withDocument((document) => showHtml(document, config.current, python, output)),
    diffWithSaved: withDocument((document) => diffWithSaved(document, server)),
    restart: () => server.restart(),
    showLogs: () => output.show(),
  };
  return Object.entries(handlers).map(([name, run]) =>
    vscode.commands.registerCommand(CLIENT_COMMANDS[name as keyof typeof CLIENT_COMMANDS], run),
  );
}

/** Explain with two or more methods and show how well their rankings agree. */
async function compareMethods(document: vscode.TextDocument, { server, config, output }: CommandDeps): Promise<void> {
  const current = config.current.method;
  const methods = await pickMethods(current, [current, 'occlusion', 'gradient_x_input']);
  if (!methods) {
    return;
  }
  const problem = validateComparison(methods);
  if (problem) {
    void vscode.window.showWarningMessage(`promptxray: ${problem}`);
    return;
  }
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `promptxray: comparing ${methods.join(', ')}` },
    () => server.execute(SERVER_COMMANDS.compareMethods, [document.uri.toString(), methods]),
  );
  if (result && typeof result === 'object' && 'pairs' in result) {
    const text = formatComparison(result as Parameters<typeof formatComparison>[0]);
    output.info(`Compare methods on ${document.uri.fsPath}:\n${text}`);
    await vscode.window.showInformationMessage('promptxray: method agreement', { modal: true, detail: text });
  }
}

/** What the edits since the last save changed, as a Markdown document beside the prompt. */
async function diffWithSaved(document: vscode.TextDocument, server: Server): Promise<void> {
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'promptxray: comparing with the saved version' },
    () => server.execute(SERVER_COMMANDS.diffWithSaved, [document.uri.toString()]),
  );
  const markdown = diffDocument(result);
  if (markdown !== undefined) {
    const diff = await vscode.workspace.openTextDocument({ content: markdown, language: 'markdown' });
    await vscode.window.showTextDocument(diff, { viewColumn: vscode.ViewColumn.Beside, preview: true });
  }
}
