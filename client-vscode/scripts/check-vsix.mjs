// Check the packaged extension: open the .vsix (a zip), and assert that it holds only what
// VS Code needs, that its package.json is the source tree's (the one source of the settings,
// their defaults and choices, which the bundle embeds) and is well formed: languages with their
// grammars, commands in the palette and editor title, every setting and choice described,
// a colour for every semantic-token type and modifier. Then load the bundled extension.js
// with a stand-in `vscode` module to show it needs nothing from node_modules. Everything it
// expects is read from package.json; nothing is listed twice.
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
    'extension/package.json',
    'extension/readme.md',
    `extension/${path.posix.normalize(source.main)}`,
    ...source.contributes.grammars.map((g) => `extension/${path.posix.normalize(g.path)}`),
    ...source.contributes.languages.map((l) => `extension/${path.posix.normalize(l.configuration)}`),
  ];
  assert.deepEqual(names, [...new Set(expected)].sort());
  assert.ok(size < 1024 * 1024, `the .vsix is ${size} bytes`);
});

check('the manifest is the one in the source tree, pointing at the bundle', () => {
  assert.deepEqual(pkg, source);
  assert.equal(pkg.main, './out/extension.js');
  assert.ok(pkg.publisher && pkg.license && pkg.engines?.vscode && pkg.repository?.url, 'publishable');
});

check(`languages ${c.languages.map((l) => l.id).join(', ')}, each with a packaged grammar`, () => {
  assert.ok(c.languages.length > 0);
  assert.ok(!JSON.stringify(c.languages).includes('.prompt.md'), '.prompt.md is not claimed');
  for (const language of c.languages) {
    assert.ok(language.extensions.length > 0, language.id);
    assert.ok(pkg.activationEvents.includes(`onLanguage:${language.id}`), `activates on ${language.id}`);
  }
  assert.deepEqual(c.grammars.map((g) => g.language).sort(), c.languages.map((l) => l.id).sort());
  for (const grammar of c.grammars) {
    const file = entries.get(path.posix.join('extension', grammar.path));
    assert.equal(JSON.parse(file.toString('utf8')).scopeName, grammar.scopeName, grammar.path);
  }
});

check(`${c.commands.length} commands, in the palette and the editor title`, () => {
  const ids = c.commands.map((x) => x.command);
  // the server's own commands (promptxray.explain, ...) are left to the language client
  assert.ok(ids.every((id) => id.startsWith(`${pkg.name}.client.`)), ids.join(', '));
  assert.ok(c.commands.every((x) => x.title && x.category === pkg.name));
  const title = new Set(c.menus['editor/title'].map((m) => m.command));
  assert.deepEqual([...title].sort(), [...ids].sort());
  for (const item of Object.values(c.menus).flat()) {
    assert.ok(ids.includes(item.command), item.command);
  }
});

const props = c.configuration.properties;
const TYPES = { string: 'string', boolean: 'boolean', integer: 'number', number: 'number' };

check(`${Object.keys(props).length} settings, each described, each choice too, defaults of their type`, () => {
  for (const [name, prop] of Object.entries(props)) {
    assert.ok(name.startsWith(`${pkg.name}.`), name);
    assert.ok(prop.description || prop.markdownDescription, `${name} is described`);
    // a nullable number (["integer", "null"]) may default to null: "not set"
    const types = [prop.type].flat();
    const unset = prop.default === null && types.includes('null');
    assert.ok(unset || types.some((t) => typeof prop.default === TYPES[t]), `${name}: a ${types.join(' or ')} default`);
    if (types.includes('integer') && !unset) {
      assert.ok(Number.isInteger(prop.default), name);
    }
    if (!unset && (prop.minimum !== undefined || prop.maximum !== undefined)) {
      assert.ok(prop.default >= (prop.minimum ?? -Infinity) && prop.default <= (prop.maximum ?? Infinity), name);
    }
    if (prop.enum) {
      assert.ok(prop.enum.includes(prop.default), `${name}: the default is a choice`);
      assert.equal(new Set(prop.enum).size, prop.enum.length, `${name}: no choice twice`);
      assert.equal(prop.enumDescriptions?.length, prop.enum.length, `${name}: one description per choice`);
      assert.ok(prop.enumDescriptions.every((d) => d.trim()), `${name}: no empty description`);
    }
  }
  // the prompts go to the endpoint, with the key keyVariable names: only a user (machine)
  // setting may name either; no setting holds a key itself
  assert.equal(props[`${pkg.name}.endpoint`].scope, 'machine');
  assert.equal(props[`${pkg.name}.keyVariable`].scope, 'machine');
  assert.ok(!Object.keys(props).some((k) => /api.?key|secret|password/i.test(k)), 'no setting holds a key');
  const trust = pkg.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, 'limited');
  assert.ok(trust.restrictedConfigurations.every((name) => name in props), 'restricted settings exist');
  assert.ok(trust.restrictedConfigurations.includes(`${pkg.name}.endpoint`));
  assert.ok(trust.restrictedConfigurations.includes(`${pkg.name}.keyVariable`));
});

check('semantic token types and modifiers, with a colour for every combination', () => {
  const types = c.semanticTokenTypes.map((t) => t.id);
  const modifiers = c.semanticTokenModifiers.map((m) => m.id);
  assert.ok(types.length > 0 && modifiers.length > 0);
  assert.ok(c.semanticTokenTypes.every((t) => t.superType));
  const rules = c.configurationDefaults['editor.semanticTokenColorCustomizations'].rules;
  for (const type of types) {
    for (const modifier of modifiers) {
      assert.match(rules[`${type}.${modifier}`]?.foreground ?? '', /^#[0-9a-f]{6}$/i, `${type}.${modifier}`);
    }
  }
  assert.deepEqual(Object.keys(c.semanticTokenScopes[0].scopes).sort(), [...types].sort());
});

check('the bundle embeds package.json’s settings and choices (the client reads them from there)', () => {
  const code = entries.get('extension/out/extension.js').toString('utf8');
  for (const [name, prop] of Object.entries(props)) {
    assert.ok(code.includes(name), name);
    for (const choice of prop.enum ?? []) {
      assert.ok(code.includes(`"${choice}"`), `${name}: ${choice}`);
    }
  }
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
