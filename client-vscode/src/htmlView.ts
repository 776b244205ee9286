/** The HTML view: runs the CLI's HTML report on a prompt and shows it in a script-free webview. */

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';

import { htmlCliArgs, secureHtml } from './common/html';
import { displayCommand } from './common/interpreter';
import { Settings } from './common/settings';
import { Python } from './python';

/** Explain `document` (its saved file, or a copy of unsaved text) and show the page beside it. */
export async function showHtml(
  document: vscode.TextDocument,
  settings: Settings,
  python: Python,
  output: vscode.LogOutputChannel,
): Promise<void> {
  const interpreter = await python.resolve(settings.python);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promptxray-'));
  const name = path.basename(document.uri.fsPath) || 'untitled.prompt';
  let file = document.uri.fsPath;
  if (document.isDirty || document.isUntitled || document.uri.scheme !== 'file') {
    file = path.join(tmp, name);
    fs.writeFileSync(file, document.getText(), 'utf8');
  }
  const out = path.join(tmp, 'explanation.html');
  const args = [...interpreter.args, ...htmlCliArgs(settings, file, out)];
  output.info(`HTML: ${displayCommand({ command: interpreter.command, args })}`);
  try {
    const ok = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `promptxray: explaining ${name}`, cancellable: true },
      (_progress, token) => runCli(interpreter.command, args, python.cwd(), token, output),
    );
    if (!ok) {
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      'promptxray.explanation',
      `promptxray: ${name}`,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: false, enableForms: false, localResourceRoots: [] },
    );
    panel.webview.html = secureHtml(fs.readFileSync(out, 'utf8'), panel.webview.cspSource);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Run the CLI; true when it succeeded (a failure is shown, a cancellation is not). */
function runCli(
  command: string,
  args: string[],
  cwd: string,
  token: vscode.CancellationToken,
  output: vscode.LogOutputChannel,
): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, PYTHONUNBUFFERED: '1' }, windowsHide: true });
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
        output.error(`promptxray explain failed (exit ${code}):\n${stderr}`);
        const last = stderr.trim().split('\n').slice(-1)[0] || `exit status ${code}`;
        void vscode.window.showErrorMessage(`promptxray: ${last}`, 'Show Logs').then((choice) => {
          if (choice) {
            output.show();
          }
        });
      }
      resolve(false);
    });
  });
}
