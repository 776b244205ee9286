/** The settings in effect (workspace trust applied), read from VS Code and re-read on change. */

import * as vscode from 'vscode';

import { SECTION } from './common/manifest';
import { ignoredWorkspaceKeys, readSettings, Settings } from './common/settings';

export class Configuration {
  private settings: Settings;
  private warnedUntrusted = false;

  constructor(private readonly output: vscode.LogOutputChannel) {
    this.settings = this.read();
  }

  /** The settings as last read. */
  get current(): Settings {
    return this.settings;
  }

  /** Read the settings again; the old and the new. */
  reload(): { before: Settings; after: Settings } {
    const before = this.settings;
    this.settings = this.read();
    return { before, after: this.settings };
  }

  private read(): Settings {
    const config = vscode.workspace.getConfiguration(SECTION);
    const trusted = vscode.workspace.isTrusted;
    const ignored = ignoredWorkspaceKeys(config, trusted);
    if (ignored.length > 0 && !this.warnedUntrusted) {
      this.warnedUntrusted = true;
      this.output.warn(
        `This workspace is not trusted: its ${ignored.map((k) => `${SECTION}.${k}`).join(', ')} ` +
          'value(s) are ignored; the user settings are used instead.',
      );
    }
    return readSettings(config, trusted);
  }
}
