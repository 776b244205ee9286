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

  it('drops workspace values of model, python and endpoint in an untrusted workspace', () => {
    assert.equal(effectiveValue('model', inspected, false), 'g');
    assert.equal(effectiveValue('python', inspected, false), 'g');
    assert.equal(effectiveValue('python', { ...inspected, globalValue: undefined }, false), 'd');
    assert.equal(effectiveValue('endpoint', inspected, false), 'g');
    assert.equal(effectiveValue('endpoint', { ...inspected, globalValue: undefined }, false), 'd');
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
        backend: { globalValue: 'vllm' },
        endpoint: { globalValue: ' http://127.0.0.1:8000 ' },
        servedModel: { globalValue: 'smollm2' },
        keyVariable: { globalValue: ' MY_VLLM_KEY ' },
        tier: { workspaceValue: 'generated-logprobs' },
        maxRequests: { workspaceValue: 500 },
        pricePerMillionTokens: { globalValue: 0.15 },
        concurrency: { globalValue: 4 },
        requestTimeoutSeconds: { workspaceValue: 30 },
        device: { globalValue: 'cpu' },
        dtype: { workspaceValue: 'bfloat16' },
      }),
      true,
    );
    assert.deepEqual(settings, {
      python: null,
      model: '/models/tiny',
      backend: 'vllm',
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
      endpoint: 'http://127.0.0.1:8000',
      servedModel: 'smollm2',
      keyVariable: 'MY_VLLM_KEY',
      tier: 'generated-logprobs',
      maxRequests: 500,
      pricePerMillionTokens: 0.15,
      concurrency: 4,
      requestTimeoutSeconds: 30,
      device: 'cpu',
      dtype: 'bfloat16',
    });
  });

  it('has the server’s defaults for the backend settings', () => {
    const settings = readSettings(config({}), true);
    assert.equal(settings.backend, 'torch');
    assert.equal(settings.endpoint, null);
    assert.equal(settings.servedModel, null);
    assert.equal(settings.keyVariable, 'PROMPTXRAY_API_KEY');
    assert.equal(settings.tier, 'auto');
    assert.equal(settings.maxRequests, null);
    assert.equal(settings.pricePerMillionTokens, null);
    assert.equal(settings.concurrency, 16);
    assert.equal(settings.requestTimeoutSeconds, 120);
    assert.equal(settings.device, 'auto');
    assert.equal(settings.dtype, 'auto');
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

  it('in an untrusted workspace sends the prompts only to the user’s own endpoint', () => {
    const source = config({
      backend: { workspaceValue: 'vllm' },
      endpoint: { globalValue: 'http://127.0.0.1:8000', workspaceValue: 'https://collector.example/' },
      servedModel: { workspaceValue: 'smollm2' },
    });
    const untrusted = readSettings(source, false);
    assert.equal(untrusted.endpoint, 'http://127.0.0.1:8000');
    assert.equal(untrusted.backend, 'vllm');
    assert.equal(untrusted.servedModel, 'smollm2', 'a name, not a destination: not restricted');
    assert.deepEqual(ignoredWorkspaceKeys(source, false), ['endpoint']);
    const folder = config({ endpoint: { workspaceFolderValue: 'https://collector.example/' } });
    assert.equal(readSettings(folder, false).endpoint, null, 'no user value: none at all');
    assert.deepEqual(ignoredWorkspaceKeys(folder, false), ['endpoint']);
    assert.equal(readSettings(source, true).endpoint, 'https://collector.example/');
  });

  it('in an untrusted workspace sends only the key of the user’s own key variable', () => {
    const source = config({
      backend: { workspaceValue: 'openai' },
      keyVariable: { globalValue: 'MY_KEY', workspaceValue: 'AWS_SECRET_ACCESS_KEY' },
      tier: { workspaceValue: 'text-only' },
      maxRequests: { workspaceValue: 10 },
      pricePerMillionTokens: { workspaceValue: 2.5 },
    });
    const untrusted = readSettings(source, false);
    assert.equal(untrusted.keyVariable, 'MY_KEY');
    assert.equal(untrusted.backend, 'openai');
    assert.equal(untrusted.tier, 'text-only', 'how figures are obtained: not restricted');
    assert.equal(untrusted.maxRequests, 10);
    assert.equal(untrusted.pricePerMillionTokens, 2.5);
    assert.deepEqual(ignoredWorkspaceKeys(source, false), ['keyVariable']);
    const folder = config({ keyVariable: { workspaceFolderValue: 'GITHUB_TOKEN' } });
    assert.equal(readSettings(folder, false).keyVariable, 'PROMPTXRAY_API_KEY', 'no user value: the default');
    assert.equal(readSettings(source, true).keyVariable, 'AWS_SECRET_ACCESS_KEY');
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
      endpoint: null,
      servedModel: null,
      keyVariable: 'PROMPTXRAY_API_KEY',
      tier: 'auto',
      maxRequests: null,
      pricePerMillionTokens: null,
      concurrency: 16,
      requestTimeoutSeconds: 120,
      device: 'auto',
      dtype: 'auto',
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

  it('passes the backend settings through, empty strings as null', () => {
    const options = toServerSettings({
      backend: 'vllm',
      endpoint: ' http://127.0.0.1:8000 ',
      servedModel: 'smollm2',
      concurrency: 0,
      requestTimeoutSeconds: 2.5,
      device: 'cuda',
      dtype: 'float16',
    });
    assert.equal(options.backend, 'vllm');
    assert.equal(options.endpoint, 'http://127.0.0.1:8000');
    assert.equal(options.servedModel, 'smollm2');
    assert.equal(options.concurrency, 0, 'the server validates it and warns');
    assert.equal(options.requestTimeoutSeconds, 2.5);
    assert.equal(options.device, 'cuda');
    assert.equal(options.dtype, 'float16');
    const empty = toServerSettings({ endpoint: '', servedModel: '  ', device: '', dtype: ' ' });
    assert.equal(empty.endpoint, null);
    assert.equal(empty.servedModel, null);
    assert.equal(empty.device, 'auto');
    assert.equal(empty.dtype, 'auto');
  });

  it('passes the openai settings through: the key variable’s name, tier, budget and price', () => {
    const options = toServerSettings({
      backend: 'openai',
      endpoint: 'https://api.openai.com/v1',
      servedModel: 'gpt-4o-mini',
      keyVariable: ' OPENAI_API_KEY ',
      tier: 'generated-logprobs',
      maxRequests: 200,
      pricePerMillionTokens: 0.15,
    });
    assert.equal(options.backend, 'openai');
    assert.equal(options.endpoint, 'https://api.openai.com/v1');
    assert.equal(options.servedModel, 'gpt-4o-mini');
    assert.equal(options.keyVariable, 'OPENAI_API_KEY');
    assert.equal(options.tier, 'generated-logprobs');
    assert.equal(options.maxRequests, 200);
    assert.equal(options.pricePerMillionTokens, 0.15);
    const unset = toServerSettings({ keyVariable: '  ', tier: '', maxRequests: 0, pricePerMillionTokens: 0 });
    assert.equal(unset.keyVariable, 'PROMPTXRAY_API_KEY', 'empty: the default variable, never null');
    assert.equal(unset.tier, 'auto');
    assert.equal(unset.maxRequests, null, '0: no limit');
    assert.equal(unset.pricePerMillionTokens, null, '0: no price');
    const cleared = toServerSettings({ maxRequests: null, pricePerMillionTokens: null });
    assert.equal(cleared.maxRequests, null);
    assert.equal(cleared.pricePerMillionTokens, null);
    const bad = toServerSettings({ maxRequests: -3 });
    assert.equal(bad.maxRequests, -3, 'the server validates it and warns');
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
  it('restarts for python, model, backend and how the backend is reached or loaded', () => {
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
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, backend: 'vllm' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, endpoint: 'http://127.0.0.1:8000' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, servedModel: 'smollm2' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, device: 'cpu' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, dtype: 'bfloat16' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, concurrency: 4 }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, requestTimeoutSeconds: 30 }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, backend: 'openai' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, keyVariable: 'OPENAI_API_KEY' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, tier: 'text-only' }), true);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, maxRequests: 100 }), false);
    assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, pricePerMillionTokens: 0.15 }), false);
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
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, concurrency: 4 }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, requestTimeoutSeconds: 30 }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, maxRequests: 100 }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, pricePerMillionTokens: 0.15 }), true);
    assert.equal(serverSettingsChanged(DEFAULTS, { ...DEFAULTS, maxRequests: 0 }), false, '0 and null: no limit');
  });
});
