/** The settings in effect (workspace trust applied) and the server's settings object. */

import { RESTART_KEYS } from './constants';
import { DEFAULTS, isFreeText, isOptionalNumber, RESTRICTED_KEYS, SETTING_KEYS, SettingKey, Settings } from './manifest';

export { DEFAULTS, SETTING_KEYS };
export type { Settings };

/** Settings of the client alone (the interpreter that runs the server): never sent to it. */
export const CLIENT_ONLY_KEYS = ['python'] as const satisfies readonly SettingKey[];
/** The server's settings object (server/settings.py): every other setting. */
export type ServerSettings = Omit<Settings, (typeof CLIENT_ONLY_KEYS)[number]>;
const SERVER_KEYS = SETTING_KEYS.filter(
  (key): key is keyof ServerSettings => !(CLIENT_ONLY_KEYS as readonly string[]).includes(key),
);

/** What `WorkspaceConfiguration.inspect(key)` returns (the fields this module uses). */
export interface Inspected<T = unknown> {
  key?: string;
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** Anything with `inspect`, e.g. `vscode.workspace.getConfiguration('promptxray')`. */
export interface ConfigSource {
  inspect<T>(key: string): Inspected<T> | undefined;
}

const isRestricted = (key: string): boolean => (RESTRICTED_KEYS as readonly string[]).includes(key);

/**
 * The value in effect for `key`. In an untrusted workspace, the restricted settings (`python`,
 * `model`, `endpoint`, `keyVariable`) ignore workspace and folder values: only the user's own
 * (global) value or the default counts, so opening a folder can never choose the interpreter or
 * model folder, the server the prompts are sent to, nor which secret is sent with them.
 */
export function effectiveValue<T>(
  key: string,
  inspected: Inspected<T> | undefined,
  trusted: boolean,
): T | undefined {
  if (inspected === undefined) {
    return undefined;
  }
  const order: (T | undefined)[] =
    trusted || !isRestricted(key)
      ? [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue]
      : [inspected.globalValue];
  for (const value of order) {
    if (value !== undefined) {
      return value;
    }
  }
  return inspected.defaultValue;
}

/** Keys whose workspace-level value was dropped because the workspace is not trusted. */
export function ignoredWorkspaceKeys(config: ConfigSource, trusted: boolean): string[] {
  if (trusted) {
    return [];
  }
  return RESTRICTED_KEYS.filter((key) => {
    const inspected = config.inspect(key);
    return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
  });
}

/** A string setting: trimmed, with empty (or non-string) meaning "not set" (null). */
export function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

/**
 * One setting's value as used: missing means the default; free text is trimmed, empty being
 * the default (null: "not set", or e.g. `keyVariable`'s variable name); an empty enum value is
 * the default; an optional number (`maxRequests`, `pricePerMillionTokens`) of 0 is null ("not
 * set"). Other numbers, booleans and enum values pass through unchanged (the server validates
 * them and warns once about a bad value).
 */
function normalise(key: SettingKey, value: unknown): unknown {
  if (value === undefined) {
    return DEFAULTS[key];
  }
  if (isFreeText(key)) {
    return optionalString(value) ?? DEFAULTS[key];
  }
  if (isOptionalNumber(key)) {
    return value === null || value === 0 ? null : value;
  }
  if (typeof DEFAULTS[key] === 'string') {
    return optionalString(value) ?? DEFAULTS[key];
  }
  return value;
}

/** Read every setting, honouring workspace trust. Missing values take the defaults. */
export function readSettings(config: ConfigSource, trusted: boolean): Settings {
  const entries = SETTING_KEYS.map((key) => [key, normalise(key, effectiveValue(key, config.inspect(key), trusted))]);
  return Object.fromEntries(entries) as Settings;
}

/**
 * The server's settings object: `initializationOptions` at start, and (under `promptxray`)
 * the `workspace/didChangeConfiguration` payload. Client-only keys (`python`) are left out, so
 * the server never warns about them.
 */
export function toServerSettings(settings: Partial<Settings>): ServerSettings {
  return Object.fromEntries(SERVER_KEYS.map((key) => [key, normalise(key, settings[key])])) as ServerSettings;
}

/** Alias with the name the LSP uses. */
export const toInitializationOptions = toServerSettings;

/** The `workspace/didChangeConfiguration` params for new settings. */
export function didChangeConfigurationParams(settings: Settings): {
  settings: { promptxray: ServerSettings };
} {
  return { settings: { promptxray: toServerSettings(settings) } };
}

/** Whether going from `before` to `after` needs a new server process (interpreter, model,
 * backend, the server's endpoint, key variable, served model or tier, device, dtype). */
export function needsRestart(before: Settings, after: Settings): boolean {
  return RESTART_KEYS.some((key) => before[key] !== after[key]);
}

/** Whether anything the server reads changed (so a didChangeConfiguration is worth sending). */
export function serverSettingsChanged(before: Settings, after: Settings): boolean {
  return JSON.stringify(toServerSettings(before)) !== JSON.stringify(toServerSettings(after));
}
