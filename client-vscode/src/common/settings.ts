/**
 * Settings: read from a `WorkspaceConfiguration`-like object (only its `inspect()` is used, so
 * tests pass plain objects), filtered for untrusted workspaces, and turned into the flat
 * object the server reads as `initializationOptions` and `workspace/didChangeConfiguration`.
 */

import { RESTART_KEYS, RESTRICTED_KEYS } from './constants';

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

/** The extension's settings as read (before conversion for the server). */
export interface ClientSettings {
  python: string | null;
  model: string | null;
  backend: string;
  method: string;
  granularity: string;
  maxNewTokens: number;
  trigger: string;
  debounceMs: number;
  unnecessaryThreshold: number;
  inlayHints: boolean;
  faithfulness: boolean;
  autoBudgetSeconds: number;
  language: string;
  selfExplain: boolean;
  endpoint: string | null;
  servedModel: string | null;
  concurrency: number;
  requestTimeoutSeconds: number;
  device: string;
  dtype: string;
}

/** The server's settings object (server/settings.py): a flat object, keys it knows only. */
export interface ServerSettings {
  model: string | null;
  backend: string;
  method: string;
  granularity: string;
  maxNewTokens: number;
  trigger: string;
  debounceMs: number;
  unnecessaryThreshold: number;
  inlayHints: boolean;
  faithfulness: boolean;
  autoBudgetSeconds: number;
  language: string;
  selfExplain: boolean;
  endpoint: string | null;
  servedModel: string | null;
  concurrency: number;
  requestTimeoutSeconds: number;
  device: string;
  dtype: string;
}

/** Defaults, the same as package.json's and the server's. */
export const DEFAULTS: ClientSettings = {
  python: null,
  model: null,
  backend: 'torch',
  method: 'occlusion',
  granularity: 'auto',
  maxNewTokens: 8,
  trigger: 'onChange',
  debounceMs: 600,
  unnecessaryThreshold: 0.05,
  inlayHints: false,
  faithfulness: true,
  autoBudgetSeconds: 5,
  language: 'en',
  selfExplain: false,
  endpoint: null,
  servedModel: null,
  concurrency: 16,
  requestTimeoutSeconds: 120,
  device: 'auto',
  dtype: 'auto',
};

export const SETTING_KEYS = Object.keys(DEFAULTS) as (keyof ClientSettings)[];

const isRestricted = (key: string): boolean => (RESTRICTED_KEYS as readonly string[]).includes(key);

/**
 * The value in effect for `key`. In an untrusted workspace, the restricted settings (`python`,
 * `model`, `endpoint`) ignore workspace and folder values: only the user's own (global) value
 * or the default counts, so opening a folder can never choose the interpreter or model folder,
 * nor the engine the prompts are sent to.
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

/** Read every setting, honouring workspace trust. Missing values take the defaults. */
export function readSettings(config: ConfigSource, trusted: boolean): ClientSettings {
  const get = <K extends keyof ClientSettings>(key: K): unknown => {
    const value = effectiveValue(key, config.inspect(key), trusted);
    return value === undefined ? DEFAULTS[key] : value;
  };
  return {
    python: optionalString(get('python')),
    model: optionalString(get('model')),
    backend: get('backend') as string,
    method: get('method') as string,
    granularity: get('granularity') as string,
    maxNewTokens: get('maxNewTokens') as number,
    trigger: get('trigger') as string,
    debounceMs: get('debounceMs') as number,
    unnecessaryThreshold: get('unnecessaryThreshold') as number,
    inlayHints: get('inlayHints') as boolean,
    faithfulness: get('faithfulness') as boolean,
    autoBudgetSeconds: get('autoBudgetSeconds') as number,
    language: get('language') as string,
    selfExplain: get('selfExplain') as boolean,
    endpoint: optionalString(get('endpoint')),
    servedModel: optionalString(get('servedModel')),
    concurrency: get('concurrency') as number,
    requestTimeoutSeconds: get('requestTimeoutSeconds') as number,
    device: get('device') as string,
    dtype: get('dtype') as string,
  };
}

/**
 * The server's settings object: `initializationOptions` at start, and (under `promptxray`)
 * the `workspace/didChangeConfiguration` payload. Empty strings become null; numbers, booleans
 * and enum values pass through unchanged (the server validates them and warns once about a bad
 * value). Client-only keys (`python`) are left out, so the server never warns about them.
 */
export function toServerSettings(settings: Partial<ClientSettings>): ServerSettings {
  const pick = <K extends keyof ServerSettings>(key: K): ClientSettings[K] =>
    (settings[key] === undefined ? DEFAULTS[key] : settings[key]);
  return {
    model: optionalString(settings.model),
    backend: optionalString(pick('backend')) ?? DEFAULTS.backend,
    method: optionalString(pick('method')) ?? DEFAULTS.method,
    granularity: optionalString(pick('granularity')) ?? DEFAULTS.granularity,
    maxNewTokens: pick('maxNewTokens'),
    trigger: optionalString(pick('trigger')) ?? DEFAULTS.trigger,
    debounceMs: pick('debounceMs'),
    unnecessaryThreshold: pick('unnecessaryThreshold'),
    inlayHints: pick('inlayHints'),
    faithfulness: pick('faithfulness'),
    autoBudgetSeconds: pick('autoBudgetSeconds'),
    language: optionalString(pick('language')) ?? DEFAULTS.language,
    selfExplain: pick('selfExplain'),
    endpoint: optionalString(settings.endpoint),
    servedModel: optionalString(settings.servedModel),
    concurrency: pick('concurrency'),
    requestTimeoutSeconds: pick('requestTimeoutSeconds'),
    device: optionalString(pick('device')) ?? DEFAULTS.device,
    dtype: optionalString(pick('dtype')) ?? DEFAULTS.dtype,
  };
}

/** Alias with the name the LSP uses. */
export const toInitializationOptions = toServerSettings;

/** The `workspace/didChangeConfiguration` params for new settings. */
export function didChangeConfigurationParams(settings: ClientSettings): {
  settings: { promptxray: ServerSettings };
} {
  return { settings: { promptxray: toServerSettings(settings) } };
}

/** Whether going from `before` to `after` needs a new server process (interpreter, model,
 * backend, engine endpoint or served model, device, dtype). */
export function needsRestart(before: ClientSettings, after: ClientSettings): boolean {
  return RESTART_KEYS.some((key) => before[key] !== after[key]);
}

/** Whether anything the server reads changed (so a didChangeConfiguration is worth sending). */
export function serverSettingsChanged(before: ClientSettings, after: ClientSettings): boolean {
  return JSON.stringify(toServerSettings(before)) !== JSON.stringify(toServerSettings(after));
}
