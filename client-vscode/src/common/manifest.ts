/** package.json's settings (embedded at build time): their names, defaults, choices, descriptions. */

import manifest from '../../package.json';

/** The configuration section: every setting is `promptxray.<key>`. */
export const SECTION = 'promptxray';

type Properties = typeof manifest.contributes.configuration.properties;
type KeyOf<P> = P extends `${typeof SECTION}.${infer K}` ? K : never;
/** A setting's key without the section: `method`, `granularity`, ... (from package.json). */
export type SettingKey = KeyOf<keyof Properties>;
type PropertyOf<K extends SettingKey> = Properties[`${typeof SECTION}.${K}`];
/** An enum setting holds one of its choices; a free-text one is null when empty ("not set"); a
 * nullable number (`"type": ["integer", "null"]`, default null) is null when not set. */
type ValueOf<P> = P extends { enum: unknown }
  ? string
  : P extends { type: readonly string[] }
    ? number | null
    : P extends { default: string }
      ? string | null
      : P extends { default: infer D }
        ? D
        : never;
/** Every setting as the client reads it, typed from package.json. */
export type Settings = { [K in SettingKey]: ValueOf<PropertyOf<K>> };

/** One `contributes.configuration.properties` entry (the fields the client reads). */
export interface SettingProperty {
  type: string | readonly string[];
  default: unknown;
  enum?: string[];
  enumDescriptions?: string[];
  description?: string;
  markdownDescription?: string;
  minimum?: number;
  maximum?: number;
  scope?: string;
}

const PROPERTIES: Readonly<Record<string, SettingProperty>> = manifest.contributes.configuration.properties;
const strip = (name: string): SettingKey => name.slice(SECTION.length + 1) as SettingKey;

/** Every setting's key, in package.json's order. */
export const SETTING_KEYS: readonly SettingKey[] = Object.keys(PROPERTIES).map(strip);

export function property(key: SettingKey): SettingProperty {
  return PROPERTIES[`${SECTION}.${key}`];
}

/** The values an enum setting allows (empty for other settings). */
export function choices(key: SettingKey): readonly string[] {
  return property(key).enum ?? [];
}

/** One sentence per choice of an enum setting (its `enumDescriptions`). */
export function choiceDescriptions(key: SettingKey): Readonly<Record<string, string>> {
  const { enum: values = [], enumDescriptions = [] } = property(key);
  return Object.fromEntries(values.map((value, i) => [value, enumDescriptions[i] ?? '']));
}

/** A free-text string setting (no enum): empty means "not set" and is sent as null. */
export function isFreeText(key: SettingKey): boolean {
  const prop = property(key);
  return prop.type === 'string' && prop.enum === undefined;
}

/** A number that may be left unset (`"type": ["integer", "null"]` or `["number", "null"]`): null
 * means "not set", and so does 0 (no limit, no price). */
export function isOptionalNumber(key: SettingKey): boolean {
  const { type } = property(key);
  return Array.isArray(type) && type.includes('null');
}

/** The defaults, as the client reads them (free text: null for package.json's ""). */
export const DEFAULTS: Readonly<Settings> = Object.fromEntries(
  SETTING_KEYS.map((key) => {
    const value = property(key).default;
    return [key, isFreeText(key) && value === '' ? null : value];
  }),
) as unknown as Settings;

/** Settings read only from the user's own values in an untrusted workspace (package.json
 * `capabilities.untrustedWorkspaces.restrictedConfigurations`). */
export const RESTRICTED_KEYS: readonly SettingKey[] =
  manifest.capabilities.untrustedWorkspaces.restrictedConfigurations.map(strip);

/** The languages this extension contributes (`prompt`, `prompty`). */
export const LANGUAGE_IDS: readonly string[] = manifest.contributes.languages.map((l) => l.id);
