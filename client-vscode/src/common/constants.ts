/** Names package.json does not hold: command ids, the custom request and notification. */

import type { SettingKey } from './manifest';

/** The semantic-token legend the server announces (server/convert.py). */
export const TOKEN_TYPES = ['xrayPositive', 'xrayNegative'] as const;
export const TOKEN_MODIFIERS = ['level1', 'level2', 'level3', 'level4', 'level5'] as const;

/** Commands the server executes (workspace/executeCommand); VS Code gets them from the client. */
export const SERVER_COMMANDS = {
  explain: 'promptxray.explain',
  explainWith: 'promptxray.explainWith',
  setTarget: 'promptxray.setTarget',
  compareMethods: 'promptxray.compareMethods',
  showReport: 'promptxray.showReport',
  diffWithSaved: 'promptxray.diffWithSaved',
  whyNot: 'promptxray.whyNot',
} as const;

/** The client's own palette commands: different ids, so they never clash with the server's. */
export const CLIENT_COMMANDS = {
  explain: 'promptxray.client.explain',
  explainWith: 'promptxray.client.explainWith',
  setTarget: 'promptxray.client.setTarget',
  compareMethods: 'promptxray.client.compareMethods',
  showHtml: 'promptxray.client.showHtml',
  diffWithSaved: 'promptxray.client.diffWithSaved',
  restart: 'promptxray.client.restart',
  showLogs: 'promptxray.client.showLogs',
} as const;

/** The custom request returning an Explanation as JSON. */
export const EXPLANATION_REQUEST = 'promptxray/explanation';
/** The server's machine-readable progress notification (server/progress.py). */
export const STATUS_NOTIFICATION = 'promptxray/status';

/** The glob for Markdown prompt files the server attaches to (they keep their own language). */
export const PROMPT_MD_PATTERN = '**/*.prompt.md';

/** The settings whose change restarts the server (what it runs on: the interpreter, the model,
 * the backend and how it is reached or loaded). */
export const RESTART_KEYS = [
  'python',
  'model',
  'backend',
  'endpoint',
  'keyVariable',
  'servedModel',
  'tier',
  'device',
  'dtype',
] as const satisfies readonly SettingKey[];
