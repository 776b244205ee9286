/** package.json against the code: languages, grammars, commands, settings (which the code
 * reads from package.json itself), semantic tokens. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { contrast } from '../../common/colors';
import { methodItems } from '../../common/commands';
import { CLIENT_COMMANDS, RESTART_KEYS, SERVER_COMMANDS, TOKEN_MODIFIERS, TOKEN_TYPES } from '../../common/constants';
import {
  choiceDescriptions,
  choices,
  DEFAULTS,
  isFreeText,
  isOptionalNumber,
  LANGUAGE_IDS,
  RESTRICTED_KEYS,
  SETTING_KEYS,
} from '../../common/manifest';
import { readJson, ROOT } from '../paths';

interface Manifest {
  main: string;
  engines: { vscode: string };
  activationEvents: string[];
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations: string[] } };
  contributes: {
    languages: { id: string; extensions: string[]; configuration: string }[];
    grammars: { language: string; scopeName: string; path: string }[];
    semanticTokenTypes: { id: string; superType?: string; description: string }[];
    semanticTokenModifiers: { id: string; description: string }[];
    semanticTokenScopes: { scopes: Record<string, string[]> }[];
    configurationDefaults: Record<string, { rules?: Record<string, { foreground: string; bold?: boolean; underline?: boolean }> }>;
    commands: { command: string; title: string; category: string }[];
    menus: Record<string, { command: string; when: string }[]>;
    configuration: {
      properties: Record<
        string,
        {
          type: string | string[];
          description?: string;
          markdownDescription?: string;
          default: unknown;
          enum?: string[];
          enumDescriptions?: string[];
          minimum?: number;
          maximum?: number;
          scope?: string;
          pattern?: string;
        }
      >;
    };
  };
}

const pkg = readJson<Manifest>('package.json');
const c = pkg.contributes;
const setting = (key: string) => c.configuration.properties[`promptxray.${key}`];

describe('package.json', () => {
  it('contributes the prompt and prompty languages, not .prompt.md', () => {
    assert.deepEqual(
      c.languages.map((l) => [l.id, l.extensions]),
      [
        ['prompt', ['.prompt']],
        ['prompty', ['.prompty']],
      ],
    );
    assert.deepEqual(c.languages.map((l) => l.id), [...LANGUAGE_IDS]);
    const all = JSON.stringify(c.languages);
    assert.ok(!all.includes('.prompt.md') && !all.includes('markdown'), 'leaves .prompt.md to its own language');
    for (const language of c.languages) {
      assert.ok(fs.existsSync(path.join(ROOT, language.configuration)));
    }
  });

  it('has a grammar per language, whose files exist and name their scope', () => {
    assert.deepEqual(c.grammars.map((g) => g.language), [...LANGUAGE_IDS]);
    for (const grammar of c.grammars) {
      const file = readJson<{ scopeName: string }>(grammar.path);
      assert.equal(file.scopeName, grammar.scopeName);
    }
  });

  it('activates for its languages, Markdown (for *.prompt.md) and Python (prompts in code)', () => {
    assert.deepEqual(pkg.activationEvents, [
      'onLanguage:prompt',
      'onLanguage:prompty',
      'onLanguage:markdown',
      'onLanguage:python',
    ]);
    assert.equal(pkg.main, './out/extension.js');
    assert.equal(pkg.engines.vscode, '^1.85.0');
  });

  it('declares the semantic-token legend the server uses', () => {
    assert.deepEqual(c.semanticTokenTypes.map((t) => t.id), [...TOKEN_TYPES]);
    assert.ok(c.semanticTokenTypes.every((t) => t.superType && t.description));
    assert.deepEqual(c.semanticTokenModifiers.map((m) => m.id), [...TOKEN_MODIFIERS]);
    assert.deepEqual(Object.keys(c.semanticTokenScopes[0].scopes).sort(), [...TOKEN_TYPES].sort());
  });

  it('colours every type.modifier pair, readable on the default dark and light themes', () => {
    const rules = c.configurationDefaults['editor.semanticTokenColorCustomizations'].rules ?? {};
    const expected = TOKEN_TYPES.flatMap((t) => TOKEN_MODIFIERS.map((m) => `${t}.${m}`));
    assert.deepEqual(Object.keys(rules).sort(), expected.sort());
    // Dark Modern, Dark+, Light Modern / Light+ editor backgrounds
    for (const background of ['#1f1f1f', '#1e1e1e', '#ffffff']) {
      for (const [key, rule] of Object.entries(rules)) {
        assert.ok(contrast(rule.foreground, background) >= 3, `${key} ${rule.foreground} on ${background}`);
      }
    }
    for (const type of TOKEN_TYPES) {
      assert.equal(rules[`${type}.level4`].bold, true);
      assert.equal(rules[`${type}.level5`].bold, true);
      assert.equal(rules[`${type}.level5`].underline, true);
      assert.ok(!rules[`${type}.level1`].bold);
      const colours = TOKEN_MODIFIERS.map((m) => rules[`${type}.${m}`].foreground);
      assert.equal(new Set(colours).size, colours.length, `${type}: one colour per level`);
    }
    // reds for positive, blues for negative
    const hue = (hex: string): [number, number] => [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(5, 7), 16)];
    for (const m of TOKEN_MODIFIERS) {
      const [pr, pb] = hue(rules[`xrayPositive.${m}`].foreground);
      const [nr, nb] = hue(rules[`xrayNegative.${m}`].foreground);
      assert.ok(pr > pb && nb > nr, m);
    }
  });

  it('contributes exactly the client commands, none of the server’s ids', () => {
    assert.deepEqual(c.commands.map((x) => x.command).sort(), Object.values(CLIENT_COMMANDS).sort());
    for (const id of Object.values(SERVER_COMMANDS)) {
      assert.ok(!JSON.stringify(c.commands).includes(`"${id}"`), `${id} is the server's`);
    }
    assert.ok(c.commands.every((x) => x.title && x.category === 'promptxray'));
    const known = new Set(c.commands.map((x) => x.command));
    for (const [menu, items] of Object.entries(c.menus)) {
      for (const item of items) {
        assert.ok(known.has(item.command), `${menu}: ${item.command}`);
      }
    }
    const title = c.menus['editor/title'].map((m) => m.command).sort();
    assert.deepEqual(title, Object.values(CLIENT_COMMANDS).sort());
    assert.ok(c.menus['editor/title'].every((m) => m.when.includes('resourceLangId == prompt')));
  });

  it('describes every setting and every choice; the client takes its defaults from there', () => {
    const props = c.configuration.properties;
    assert.deepEqual(Object.keys(props), SETTING_KEYS.map((k) => `promptxray.${k}`));
    for (const key of SETTING_KEYS) {
      const prop = props[`promptxray.${key}`];
      assert.ok(prop.description || prop.markdownDescription, key);
      const expected = DEFAULTS[key];
      if (expected === null) {
        // "not set": empty text, or a nullable number's null
        assert.ok(isFreeText(key) || isOptionalNumber(key), key);
        assert.equal(prop.default, isFreeText(key) ? '' : null, key);
      } else {
        assert.equal(prop.default, expected, key);
      }
      assert.deepEqual(choices(key), prop.enum ?? [], key);
      if (prop.enum) {
        assert.ok(prop.enum.includes(prop.default as string), `${key}: the default is a choice`);
        assert.equal(prop.enumDescriptions?.length, prop.enum.length, `${key}: one description per value`);
        assert.ok(Object.values(choiceDescriptions(key)).every((d) => d.trim()), `${key}: no empty description`);
      }
    }
    const enums = SETTING_KEYS.filter((key) => choices(key).length > 0);
    assert.deepEqual(enums.sort(), ['backend', 'device', 'dtype', 'granularity', 'language', 'method', 'tier', 'trigger']);
    assert.ok(RESTART_KEYS.every((key) => SETTING_KEYS.includes(key)));
    assert.equal(props['promptxray.autoBudgetSeconds'].minimum, 0);
    assert.equal(props['promptxray.autoBudgetSeconds'].maximum, 600);
  });

  it('offers every method in the one method picker, with its registry summary', () => {
    const items = methodItems('saliency', ['occlusion']);
    assert.deepEqual(items.map((i) => i.label), setting('method').enum);
    assert.deepEqual(items.map((i) => i.detail), setting('method').enumDescriptions);
    assert.deepEqual(items.filter((i) => i.description).map((i) => i.label), ['saliency']);
    assert.deepEqual(items.filter((i) => i.picked).map((i) => i.label), ['occlusion']);
    assert.ok(items.some((i) => i.label === 'auto'));
  });

  it('limits untrusted workspaces to user values of python, model, endpoint and keyVariable', () => {
    const trust = pkg.capabilities.untrustedWorkspaces;
    assert.equal(trust.supported, 'limited');
    assert.deepEqual(trust.restrictedConfigurations, RESTRICTED_KEYS.map((k) => `promptxray.${k}`));
    assert.deepEqual([...RESTRICTED_KEYS], ['python', 'model', 'endpoint', 'keyVariable']);
    assert.ok(trust.restrictedConfigurations.includes('promptxray.endpoint'));
    assert.ok(trust.restrictedConfigurations.includes('promptxray.keyVariable'));
  });

  it('lets only the user (machine) settings choose where the prompts are sent, and which key', () => {
    const props = c.configuration.properties;
    assert.equal(props['promptxray.endpoint'].scope, 'machine');
    assert.equal(props['promptxray.keyVariable'].scope, 'machine');
    const text = JSON.stringify(props['promptxray.endpoint']);
    assert.ok(text.includes('PROMPTXRAY_API_KEY'), 'says where the API key comes from');
    assert.ok(text.includes('promptxray.keyVariable'), 'or the variable keyVariable names');
    assert.ok(!text.includes('PROMPTXRAY_VLLM_API_KEY'), 'the old variable is only a fallback');
    assert.ok(!Object.keys(props).some((k) => /api.?key|secret|password/i.test(k)), 'no setting holds a key');
    const backend = JSON.stringify(props['promptxray.backend']);
    assert.ok(backend.includes('vllm') && !/only torch|torch only/i.test(backend), backend);
    assert.ok(backend.includes('openai'), backend);
  });

  it('offers the openai backend and its settings', () => {
    const props = c.configuration.properties;
    assert.deepEqual(choices('backend'), ['torch', 'onnx', 'openai', 'vllm']);
    assert.match(choiceDescriptions('backend').openai, /OpenAI-compatible/);
    assert.match(choiceDescriptions('backend').openai, /promptxray\.endpoint/);
    assert.deepEqual(choices('tier'), ['auto', 'prompt-logprobs', 'generated-logprobs', 'text-only']);
    assert.equal(DEFAULTS.tier, 'auto');
    assert.equal(DEFAULTS.keyVariable, 'PROMPTXRAY_API_KEY');
    const pattern = new RegExp(props['promptxray.keyVariable'].pattern ?? '');
    assert.ok(pattern.test('PROMPTXRAY_API_KEY') && pattern.test('OPENAI_API_KEY') && pattern.test(''));
    assert.ok(!pattern.test('sk-abc123') && !pattern.test('A B'), 'a variable name, not a key');
    for (const key of ['maxRequests', 'pricePerMillionTokens'] as const) {
      assert.equal(DEFAULTS[key], null, key);
      assert.ok(isOptionalNumber(key), key);
      assert.equal(props[`promptxray.${key}`].minimum, 0, key);
    }
    assert.deepEqual(props['promptxray.maxRequests'].type, ['integer', 'null']);
    assert.deepEqual(props['promptxray.pricePerMillionTokens'].type, ['number', 'null']);
    for (const key of ['endpoint', 'servedModel', 'keyVariable', 'tier', 'maxRequests', 'pricePerMillionTokens', 'concurrency', 'requestTimeoutSeconds']) {
      const prop = props[`promptxray.${key}`];
      const text = prop.markdownDescription ?? prop.description ?? '';
      assert.ok(/openai/.test(text) && /vllm/.test(text), `${key} names both backends it applies to`);
    }
    assert.deepEqual(SETTING_KEYS.filter(isOptionalNumber), ['maxRequests', 'pricePerMillionTokens']);
  });
});
