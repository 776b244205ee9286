import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  ConfigSource,
  DEFAULTS,
  didChangeConfigurationParams,
  effectiveValue,
  ignoredWorkspaceKeys,
  Inspected,
  needsRestart,
  readSettings,
  serverSettingsChanged,
  toInitializationOptions,
  toServerSettings,
} from '../../common/settings';

/** A stand-in for `vscode.workspace.getConfiguration('promptxray')`. */
function config(values: Record<string, Inspected>): ConfigSource {
  return {
    inspect<T>(key: string): Inspected<T> | undefined {
      const defaults = DEFAULTS as unknown as Record<string, unknown>;
      return { key, defaultValue: defaults[key], ...values[key] } as Inspected<T>;
    },
  };
}

describe('effectiveValue', () => {
  const inspected = { defaultValue: 'd', globalValue: 'g', workspaceValue: 'w', workspaceFolderValue: 'f' };

  it('prefers folder, then workspace, then user, then default', () => {
    assert.equal(effectiveValue('model', inspected, true), 'f');
    assert.equal(effectiveValue('model', { ...inspected, workspaceFolderValue: undefined }, true), 'w');
    assert.equal(effectiveValue('model', { defaultValue: 'd', globalValue: 'g' }, true), 'g');
    assert.equal(effectiveValue('model', { defaultValue: 'd' }, true), 'd');
    assert.equal(effectiveValue('model', undefined, true), undefined);
  });

  it('drops workspace values of model and python in an untrusted workspace', () => {
    assert.equal(effectiveValue('model', inspected, false), 'g');
    assert.equal(effectiveValue('python', inspected, false), 'g');
    assert.equal(effectiveValue('python', { ...inspected, globalValue: undefined }, false), 'd');
  });

  it('keeps workspace values of harmless settings in an untrusted workspace', () => {
    assert.equal(effectiveValue('method', inspected, false), 'f');
    assert.equal(effectiveValue('debounceMs', { defaultValue: 600, workspaceValue: 50 }, false), 50);
  });
});

describe('readSettings', () => {
  it('gives the defaults when nothing is set', () => {
    assert.deepEqual(readSettings(config({}), true), DEFAULTS);
  });

  it('reads every setting and turns empty strings into null', () => {
    const settings = readSettings(
      config({
        python: { globalValue: '  ' },
        model: { workspaceValue: '/models/tiny ' },
        method: { workspaceValue: 'saliency' },
        granularity: { globalValue: 'line' },
        maxNewTokens: { globalValue: 3 },
        trigger: { workspaceValue: 'manual' },
        debounceMs: { globalValue: 0 },
        unnecessaryThreshold: { globalValue: 0.2 },
        inlayHints: { globalValue: true },
        faithfulness: { workspaceValue: false },
        autoBudgetSeconds: { globalValue: 12.5 },
        language: { globalValue: 'zh' },
        selfExplain: { workspaceFolderValue: true },
      }),
      true,
    );
    assert.deepEqual(settings, {
      python: null,
      model: '/models/tiny',
      backend: 'torch',
      method: 'saliency',
      granularity: 'line',
      maxNewTokens: 3,
      trigger: 'manual',
      debounceMs: 0,
      unnecessaryThreshold: 0.2,
      inlayHints: true,
      faithfulness: false,
      autoBudgetSeconds: 12.5,
      language: 'zh',
      selfExplain: true,
    });
  });

  it('has the server’s defaults for faithfulness, the auto budget, language and self-explanation', () => {
    const settings = readSettings(config({}), true);
    assert.equal(settings.faithfulness, true);
    assert.equal(settings.autoBudgetSeconds, 5);
    assert.equal(settings.language, 'en');
    assert.equal(settings.selfExplain, false);
  });

  it('keeps workspace values of the new settings in an untrusted workspace (they are not restricted)', () => {
    const settings = readSettings(
      config({
        method: { workspaceValue: 'auto' },
        faithfulness: { workspaceValue: false },
        autoBudgetSeconds: { workspaceValue: 0 },
        language: { workspaceValue: 'zh' },
        selfExplain: { workspaceValue: true },
      }),
      false,
    );
    assert.equal(settings.method, 'auto');
    assert.equal(settings.faithfulness, false);
    assert.equal(settings.autoBudgetSeconds, 0);
    assert.equal(settings.language, 'zh');
    assert.equal(settings.selfExplain, true);
  });

  it('in an untrusted workspace uses only the user values of model and python', () => {
    const source = config({
      python: { globalValue: '/usr/bin/python3', workspaceValue: './evil/python' },
      model: { workspaceValue: './evil-model' },
      method: { workspaceValue: 'attention' },
    });
    const untrusted = readSettings(source, false);
    assert.equal(untrusted.python, '/usr/bin/python3');
    assert.equal(untrusted.model, null);
    assert.equal(untrusted.method, 'attention');
    assert.deepEqual(ignoredWorkspaceKeys(source, false), ['python', 'model']);
    assert.deepEqual(ignoredWorkspaceKeys(source, true), []);
    const trusted = readSettings(source, true);
    assert.equal(trusted.python, './evil/python');
    assert.equal(trusted.model, './evil-model');
  });
});

describe('toInitializationOptions', () => {
  it('is the flat object the server reads, without client-only keys', () => {
    const options = toInitializationOptions({ ...DEFAULTS, python: '/usr/bin/python3', model: '' });
    assert.deepEqual(options, {
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
    });
    assert.ok(!('python' in options));
    assert.ok(!('target' in options), 'no target: per-document targets stay on the server');
  });

  it('passes numbers, booleans and enum values through (the server validates them)', () => {
    const options = toServerSettings({
      model: 'HuggingFaceTB/SmolLM2-135M',
      method: 'no_such_method',
      granularity: 'token',
      maxNewTokens: 1000,
      debounceMs: 0,
      unnecessaryThreshold: 0,
      inlayHints: true,
      trigger: 'onSave',
      faithfulness: false,
      autoBudgetSeconds: 600,
      language: 'fr',
      selfExplain: true,
    });
    assert.equal(options.model, 'HuggingFaceTB/SmolLM2-135M');
    assert.equal(options.method, 'no_such_method');
    assert.equal(options.granularity, 'token');
    assert.equal(options.maxNewTokens, 1000);
    assert.equal(options.debounceMs, 0);
    assert.equal(options.unnecessaryThreshold, 0);
    assert.equal(options.inlayHints, true);
    assert.equal(options.trigger, 'onSave');
    assert.equal(options.faithfulness, false);
    assert.equal(options.autoBudgetSeconds, 600);
    assert.equal(options.language, 'fr');
    assert.equal(options.selfExplain, true);
  });

  it('fills missing keys with the defaults and empty enum strings too', () => {
    assert.deepEqual(toServerSettings({}), toServerSettings(DEFAULTS));
    assert.equal(toServerSettings({ method: '', backend: ' ' }).method, 'occlusion');
    assert.equal(toServerSettings({ method: '', backend: ' ' }).backend, 'torch');
    assert.equal(toServerSettings({ language: '' }).language, 'en');
    assert.equal(toServerSettings({ language: ' zh ' }).language, 'zh');
    assert.equal(toServerSettings({ autoBudgetSeconds: 0, faithfulness: false }).autoBudgetSeconds, 0);
    assert.equal(toServerSettings({ autoBudgetSeconds: 0, faithfulness: false }).faithfulness, false);
  });

  it('sends changes under the promptxray key', () => {
    const params = didChangeConfigurationParams({ ...DEFAULTS, method: 'saliency' });
    assert.equal(params.settings.promptxray.method, 'saliency');
    assert.ok(!('python' in params.settings.promptxray));
  });

  it('sends faithfulness, autoBudgetSeconds, language and selfExplain under those names', () => {
    const params = didChangeConfigurationParams({
      ...DEFAULTS,
      method: 'auto',
      faithfulness: false,
      autoBudgetSeconds: 30,
      language: 'zh',
      selfExplain: true,
    });
    const sent = params.settings.promptxray as unknown as Record<string, unknown>;
    assert.equal(sent.method, 'auto');
    assert.equal(sent.faithfulness, false);
    assert.equal(sent.autoBudgetSeconds, 30);
    assert.equal(sent.language, 'zh');
    assert.equal(sent.selfExplain, true);
  });
});

describe('restart or notify', () => {
  it('restarts for python, model and backend only', () => {
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, python: '/p' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, model: 'm' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, backend: 'onnx' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, method: 'saliency' }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, method: 'auto' }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, faithfulness: false }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, autoBudgetSeconds: 60 }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, language: 'zh' }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, selfExplain: true }), false);
  });

  it('notifies the server only when something it reads changed', () => {
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, inlayHints: true }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS }), false);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, method: 'shapley' }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, faithfulness: false }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, autoBudgetSeconds: 10 }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, language: 'zh' }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, selfExplain: true }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, python: '/p' }), false, 'python is client-only');
  });
});
