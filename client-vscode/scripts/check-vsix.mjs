// Check the packaged extension: open the .vsix (a zip), and assert that it holds only what
// VS Code needs and that its package.json contributes the languages, commands, settings and
// semantic-token types/modifiers/colours the extension relies on; then load the bundled
// extension.js with a stand-in `vscode` module to show it needs nothing from node_modules.
//
// Usage: node scripts/check-vsix.mjs [path/to/promptxray-<version>.vsix]

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { createRequire, Module } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import yauzl from 'yauzl';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = path.resolve(process.argv[2] ?? path.join(root, `${source.name}-${source.version}.vsix`));

/** Every entry of the zip, name -> contents. */
function readZip(file) {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (error, zip) => {
      if (error) {
        reject(error);
        return;
      }
      const entries = new Map();
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (entry) => {
        if (entry.fileName.endsWith('/')) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (err, stream) => {
          if (err) {
            reject(err);
            return;
          }
          const chunks = [];
          stream.on('data', (chunk) => chunks.push(chunk));
          stream.on('end', () => {
            entries.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

let checks = 0;
function check(what, fn) {
  fn();
  checks += 1;
  console.log(`ok - ${what}`);
}

assert.ok(fs.existsSync(vsix), `no ${vsix}: run npm run package first`);
const size = fs.statSync(vsix).size;
const entries = await readZip(vsix);
const names = [...entries.keys()].sort();
const pkg = JSON.parse(entries.get('extension/package.json').toString('utf8'));
const c = pkg.contributes;

check(`${path.basename(vsix)} holds only the runtime files (${names.length} files, ${(size / 1024).toFixed(1)} KiB)`, () => {
  const expected = [
    '[Content_Types].xml',
    'extension.vsixmanifest',
    'extension/LICENSE.txt',
    'extension/language-configuration.json',
    'extension/out/extension.js',
    'extension/package.json',
    'extension/readme.md',
    'extension/syntaxes/prompt.tmLanguage.json',
    'extension/syntaxes/prompty.tmLanguage.json',
  ];
  assert.deepEqual(names, expected);
  assert.ok(size < 1024 * 1024, `the .vsix is ${size} bytes`);
});

check('the manifest is the one in the source tree, pointing at the bundle', () => {
  assert.equal(pkg.name, source.name);
  assert.equal(pkg.version, source.version);
  assert.equal(pkg.publisher, 'promptxray');
  assert.equal(pkg.license, 'MIT');
  assert.equal(pkg.engines.vscode, '^1.85.0');
  assert.equal(pkg.main, './out/extension.js');
  assert.ok(pkg.repository?.url, 'a repository');
});

check('languages prompt (.prompt) and prompty (.prompty), each with a grammar in the package', () => {
  assert.deepEqual(
    c.languages.map((l) => [l.id, l.extensions]),
    [
      ['prompt', ['.prompt']],
      ['prompty', ['.prompty']],
    ],
  );
  assert.ok(!JSON.stringify(c.languages).includes('.prompt.md'), '.prompt.md is not claimed');
  for (const grammar of c.grammars) {
    const file = entries.get(path.posix.join('extension', grammar.path));
    assert.ok(file, `${grammar.path} is packaged`);
    assert.equal(JSON.parse(file.toString('utf8')).scopeName, grammar.scopeName);
  }
  assert.deepEqual(c.grammars.map((g) => g.language).sort(), ['prompt', 'prompty']);
  for (const language of c.languages) {
    assert.ok(entries.has(path.posix.join('extension', language.configuration)), language.configuration);
  }
});

const COMMANDS = ['explain', 'explainWith', 'setTarget', 'compareMethods', 'showHtml', 'restart', 'showLogs'].map(
  (id) => `promptxray.client.${id}`,
);

check('the commands, in the palette and the editor title', () => {
  assert.deepEqual(c.commands.map((x) => x.command).sort(), [...COMMANDS].sort());
  assert.ok(c.commands.every((x) => x.title && x.category === 'promptxray'));
  const title = new Set(c.menus['editor/title'].map((m) => m.command));
  assert.ok(COMMANDS.every((id) => title.has(id)));
  for (const id of ['promptxray.explain', 'promptxray.explainWith', 'promptxray.setTarget', 'promptxray.compareMethods']) {
    assert.ok(!c.commands.some((x) => x.command === id), `${id} is left to the server`);
  }
});

const SETTINGS = {
  python: '',
  model: '',
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
  endpoint: '',
  servedModel: '',
  concurrency: 16,
  requestTimeoutSeconds: 120,
  device: 'auto',
  dtype: 'auto',
};

check('the settings, each described, with the server’s defaults', () => {
  const props = c.configuration.properties;
  assert.deepEqual(Object.keys(props).sort(), Object.keys(SETTINGS).map((k) => `promptxray.${k}`).sort());
  for (const [key, value] of Object.entries(SETTINGS)) {
    const prop = props[`promptxray.${key}`];
    assert.ok(prop.description || prop.markdownDescription, `${key} is described`);
    assert.deepEqual(prop.default, value, key);
  }
  assert.deepEqual(props['promptxray.method'].enum, [
    'occlusion',
    'gradient_x_input',
    'saliency',
    'integrated_gradients',
    'attention',
    'attention_rollout',
    'shapley',
    'surrogate',
    'counterfactual',
    'activation_max',
    'auto',
  ]);
  assert.equal(props['promptxray.method'].enumDescriptions.length, props['promptxray.method'].enum.length);
  assert.deepEqual(props['promptxray.language'].enum, ['en', 'zh']);
  assert.equal(props['promptxray.language'].enumDescriptions.length, 2);
  assert.deepEqual([props['promptxray.autoBudgetSeconds'].minimum, props['promptxray.autoBudgetSeconds'].maximum], [0, 600]);
  assert.deepEqual(props['promptxray.granularity'].enum, ['token', 'word', 'line', 'auto']);
  assert.deepEqual(props['promptxray.trigger'].enum, ['onChange', 'onSave', 'manual']);
  assert.deepEqual(props['promptxray.backend'].enum, ['torch', 'onnx', 'vllm']);
  assert.equal(props['promptxray.backend'].enumDescriptions.length, 3);
  assert.deepEqual(props['promptxray.device'].enum, ['auto', 'cpu', 'cuda']);
  assert.deepEqual(props['promptxray.dtype'].enum, ['auto', 'float32', 'bfloat16', 'float16']);
  assert.deepEqual([props['promptxray.concurrency'].minimum, props['promptxray.concurrency'].maximum], [1, 256]);
  // the prompts go to the endpoint: only a user (machine) setting may name it
  assert.equal(props['promptxray.endpoint'].scope, 'machine');
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces, {
    supported: 'limited',
    description: pkg.capabilities.untrustedWorkspaces.description,
    restrictedConfigurations: ['promptxray.python', 'promptxray.model', 'promptxray.endpoint'],
  });
});

const TYPES = ['xrayPositive', 'xrayNegative'];
const MODIFIERS = ['level1', 'level2', 'level3', 'level4', 'level5'];

check('semantic token types and modifiers, with a colour for every combination', () => {
  assert.deepEqual(c.semanticTokenTypes.map((t) => t.id), TYPES);
  assert.ok(c.semanticTokenTypes.every((t) => t.superType));
  assert.deepEqual(c.semanticTokenModifiers.map((m) => m.id), MODIFIERS);
  const rules = c.configurationDefaults['editor.semanticTokenColorCustomizations'].rules;
  for (const type of TYPES) {
    for (const modifier of MODIFIERS) {
      assert.match(rules[`${type}.${modifier}`]?.foreground ?? '', /^#[0-9a-f]{6}$/i, `${type}.${modifier}`);
    }
  }
  assert.deepEqual(Object.keys(c.semanticTokenScopes[0].scopes).sort(), [...TYPES].sort());
});

check('the bundle stands alone: it loads with only `vscode` provided', () => {
  const code = entries.get('extension/out/extension.js').toString('utf8');
  assert.ok(!/require\(["']vscode-languageclient/.test(code), 'vscode-languageclient is bundled in');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promptxray-vsix-'));
  const file = path.join(dir, 'extension.js');
  fs.writeFileSync(file, code);
  const stub = new Proxy(
    {},
    {
      get(target, prop) {
        if (!(prop in target)) {
          target[prop] = class {};
        }
        return target[prop];
      },
    },
  );
  const originalLoad = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'vscode') {
      return stub;
    }
    if (request !== file && !request.startsWith('node:') && !Module.builtinModules.includes(request)) {
      throw new Error(`the bundle requires ${request}`);
    }
    return originalLoad.call(this, request, ...rest);
  };
  try {
    const extension = createRequire(file)(file);
    assert.equal(typeof extension.activate, 'function');
    assert.equal(typeof extension.deactivate, 'function');
  } finally {
    Module._load = originalLoad;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

console.log(`${checks} checks passed: ${vsix}`);
