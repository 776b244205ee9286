import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { contentSecurityPolicy, htmlCliArgs, secureHtml } from '../../common/html';
import { DEFAULTS } from '../../common/settings';

describe('HTML view', () => {
  it('runs the CLI with the settings', () => {
    const args = htmlCliArgs({ ...DEFAULTS, model: '/m/tiny', maxNewTokens: 4 }, '/p/a.prompt', '/t/out.html');
    assert.deepEqual(args.slice(0, 8), ['-m', 'promptxray.cli', 'explain', '/p/a.prompt', '--format', 'html', '-o', '/t/out.html']);
    const pairs = Object.fromEntries(
      args.slice(8).flatMap((a, i, all) => (a.startsWith('--') ? [[a, all[i + 1]]] : [])),
    );
    assert.deepEqual(pairs, {
      '--method': 'occlusion',
      '--granularity': 'auto',
      '--backend': 'torch',
      '--max-new-tokens': '4',
      '--model': '/m/tiny',
    });
    assert.ok(!htmlCliArgs(DEFAULTS, 'f', 'o').includes('--model'), 'no --model: the CLI default');
    assert.deepEqual(htmlCliArgs(DEFAULTS, 'f', 'o', { method: 'saliency', target: 'Paris' }).slice(-2), ['--target', 'Paris']);
  });

  it('passes how the backend is reached or run, leaving defaults to the CLI', () => {
    const flags = (args: string[]): Record<string, string> =>
      Object.fromEntries(args.slice(8).flatMap((a, i, all) => (a.startsWith('--') ? [[a, all[i + 1]]] : [])));
    const vllm = flags(
      htmlCliArgs(
        { ...DEFAULTS, backend: 'vllm', endpoint: 'http://127.0.0.1:8000', servedModel: 'smollm2', concurrency: 4, requestTimeoutSeconds: 30, device: 'cuda' },
        'f',
        'o',
      ),
    );
    assert.equal(vllm['--backend'], 'vllm');
    assert.equal(vllm['--endpoint'], 'http://127.0.0.1:8000');
    assert.equal(vllm['--served-model'], 'smollm2');
    assert.equal(vllm['--concurrency'], '4');
    assert.equal(vllm['--request-timeout'], '30');
    assert.ok(!('--device' in vllm), 'torch settings are not the engine’s');
    const plain = flags(htmlCliArgs({ ...DEFAULTS, backend: 'vllm', endpoint: 'http://e:1' }, 'f', 'o'));
    assert.deepEqual(Object.keys(plain).sort(), ['--backend', '--endpoint', '--granularity', '--max-new-tokens', '--method']);
    const torch = flags(htmlCliArgs({ ...DEFAULTS, device: 'cpu', dtype: 'bfloat16', endpoint: 'http://e:1' }, 'f', 'o'));
    assert.equal(torch['--device'], 'cpu');
    assert.equal(torch['--dtype'], 'bfloat16');
    assert.ok(!('--endpoint' in torch), 'the torch backend sends nothing anywhere');
  });

  it('passes the openai flags for backends openai and vllm', () => {
    const flags = (args: string[]): Record<string, string> =>
      Object.fromEntries(args.slice(8).flatMap((a, i, all) => (a.startsWith('--') ? [[a, all[i + 1]]] : [])));
    const remote = {
      ...DEFAULTS,
      endpoint: 'https://api.openai.com/v1',
      servedModel: 'gpt-4o-mini',
      keyVariable: 'OPENAI_API_KEY',
      tier: 'generated-logprobs',
      maxRequests: 300,
      pricePerMillionTokens: 0.15,
      concurrency: 8,
      requestTimeoutSeconds: 60,
      device: 'cuda',
      dtype: 'float16',
    };
    for (const backend of ['openai', 'vllm']) {
      const got = flags(htmlCliArgs({ ...remote, backend }, 'f', 'o'));
      assert.deepEqual(got, {
        '--method': 'occlusion',
        '--granularity': 'auto',
        '--backend': backend,
        '--max-new-tokens': '8',
        '--endpoint': 'https://api.openai.com/v1',
        '--served-model': 'gpt-4o-mini',
        '--api-key-env': 'OPENAI_API_KEY',
        '--tier': 'generated-logprobs',
        '--max-requests': '300',
        '--price': '0.15',
        '--concurrency': '8',
        '--request-timeout': '60',
      });
    }
    // defaults (the default key variable, tier auto, no budget, no price) are left to the CLI
    const plain = flags(htmlCliArgs({ ...DEFAULTS, backend: 'openai', endpoint: 'http://127.0.0.1:8080/v1' }, 'f', 'o'));
    assert.deepEqual(Object.keys(plain).sort(), ['--backend', '--endpoint', '--granularity', '--max-new-tokens', '--method']);
    const zero = flags(htmlCliArgs({ ...DEFAULTS, backend: 'openai', maxRequests: 0, pricePerMillionTokens: 0 }, 'f', 'o'));
    assert.ok(!('--max-requests' in zero) && !('--price' in zero), '0: no limit, no price');
    const args = htmlCliArgs({ ...remote, backend: 'openai' }, 'f', 'o');
    assert.ok(!args.some((a) => /^sk-|api-key$/.test(a)), 'a variable name, never a key');
    const torch = flags(htmlCliArgs({ ...remote, backend: 'torch' }, 'f', 'o'));
    for (const flag of ['--endpoint', '--api-key-env', '--tier', '--max-requests', '--price']) {
      assert.ok(!(flag in torch), `${flag}: not the torch backend's`);
    }
  });

  it('adds a restrictive CSP and removes scripts', () => {
    const page =
      '<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src *">' +
      '<style>b{}</style></head><body><header>h</header><script>alert(1)</script><script src="x.js"></script><p>one = 1 &lt;script&gt;</p></body></html>';
    const safe = secureHtml(page, 'vscode-webview://abc');
    assert.ok(!/<script/i.test(safe));
    assert.ok(safe.includes('one = 1 &lt;script&gt;'), 'text is left alone');
    assert.ok(safe.includes('<header>h</header>'));
    const metas = safe.match(/Content-Security-Policy/g) ?? [];
    assert.equal(metas.length, 1, 'only our policy remains');
    assert.ok(safe.indexOf('Content-Security-Policy') < safe.indexOf('<style>'), 'the policy comes before the styles');
    assert.match(safe, /default-src 'none'/);
    assert.match(contentSecurityPolicy('src'), /^default-src 'none'; style-src src 'unsafe-inline'; img-src src data:; font-src src data:$/);
    assert.ok(!contentSecurityPolicy('src').includes('script-src'));
  });

  it('wraps a fragment in a page', () => {
    assert.match(secureHtml('<p>x</p>', 's'), /^<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy"/);
  });
});
