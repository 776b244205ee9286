/** The status-bar item: model, backend and state, from the server's stages and diagnostics. */

import * as vscode from 'vscode';

import { CLIENT_COMMANDS } from './common/constants';
import { Settings } from './common/settings';
import { DiagnosticLike, ServerPhase, StatusModel, StatusParams } from './common/status';
import { isPromptDocument } from './documents';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly model = new StatusModel();

  constructor(private readonly settings: () => Settings) {
    this.item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'promptxray';
    this.item.command = CLIENT_COMMANDS.showLogs;
  }

  /** The client started, stopped or failed (`detail`: why). */
  server(phase: ServerPhase, detail = ''): void {
    this.model.server(phase, detail);
    this.update();
  }

  /** A `promptxray/status` notification. */
  stage(params: StatusParams): void {
    this.model.stage(params);
    this.update();
  }

  diagnostics(uri: string, diagnostics: readonly DiagnosticLike[]): void {
    this.model.diagnostics(uri, diagnostics);
    this.update();
  }

  forget(uri: string): void {
    this.model.forget(uri);
    this.update();
  }

  /** Show the state for the active editor (hidden away from prompts unless starting or failed). */
  update(): void {
    const document = vscode.window.activeTextEditor?.document;
    const view = this.model.view(this.settings(), document?.uri.toString());
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    if (isPromptDocument(document) || view.state === 'error' || view.state === 'starting') {
      this.item.show();
    } else {
      this.item.hide();
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
