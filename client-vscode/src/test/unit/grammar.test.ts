/** The TextMate grammar, run by the same engine VS Code uses (vscode-textmate + oniguruma). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';

import * as oniguruma from 'vscode-oniguruma';
import * as vsctm from 'vscode-textmate';

import { ROOT } from '../paths';

const FILES: Record<string, string> = {
  'source.promptxray.prompt': 'syntaxes/prompt.tmLanguage.json',
  'source.promptxray.prompty': 'syntaxes/prompty.tmLanguage.json',
};

const YAML_STUB = {
  scopeName: 'source.yaml',
  patterns: [{ match: '^\\s*[\\w-]+(?=:)', name: 'entity.name.tag.yaml' }],
};

let registry: vsctm.Registry;

before(async () => {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text: string) => new oniguruma.OnigString(text),
    }),
    loadGrammar: (scopeName: string) => {
      if (scopeName === 'source.yaml') {
        // VS Code's own YAML grammar; a one-rule stand-in shows the front matter includes it
        return Promise.resolve(vsctm.parseRawGrammar(JSON.stringify(YAML_STUB), 'yaml.json'));
      }
      const file = FILES[scopeName];
      if (!file) {
        return Promise.resolve(null);
      }
      const full = path.join(ROOT, file);
      return Promise.resolve(vsctm.parseRawGrammar(fs.readFileSync(full, 'utf8'), full));
    },
  });
});

/** Each line's tokens as [text, scopes]. */
async function tokenize(scope: string, text: string): Promise<[string, string[]][][]> {
  const grammar = await registry.loadGrammar(scope);
  assert.ok(grammar, scope);
  let stack = vsctm.INITIAL;
  return text.split('\n').map((line) => {
    const result = grammar.tokenizeLine(line, stack);
    stack = result.ruleStack;
    return result.tokens.map((t): [string, string[]] => [line.slice(t.startIndex, t.endIndex), t.scopes]);
  });
}

function scopesOf(lines: [string, string[]][][], line: number, text: string): string[] {
  const token = lines[line].find(([t]) => t === text);
  assert.ok(token, `no token ${JSON.stringify(text)} on line ${line}: ${JSON.stringify(lines[line].map(([t]) => t))}`);
  return token[1];
}

const PROMPTY = `---
name: Capital
inputs:
  country:
    sample: France
---
system:
You are a concise {{ style }} assistant.

user:
What is the capital of {{country}}?
{# a comment #}
{% if x %}yes{% endif %}`;

describe('prompt grammar', () => {
  it('embeds the YAML front matter', async () => {
    const lines = await tokenize('source.promptxray.prompty', PROMPTY);
    assert.ok(scopesOf(lines, 0, '---').includes('punctuation.definition.tag.begin.frontmatter.promptxray'));
    assert.ok(lines[2].every(([, s]) => s.includes('meta.embedded.block.frontmatter')));
    assert.ok(scopesOf(lines, 1, 'name').includes('entity.name.tag.yaml'), 'YAML inside');
    assert.ok(scopesOf(lines, 5, '---').includes('punctuation.definition.tag.end.frontmatter.promptxray'));
    assert.ok(!lines[7].some(([, s]) => s.includes('meta.frontmatter.promptxray')), 'the body is not front matter');
  });

  it('marks role lines', async () => {
    const lines = await tokenize('source.promptxray.prompty', PROMPTY);
    assert.ok(scopesOf(lines, 6, 'system').includes('keyword.control.role.promptxray'));
    assert.ok(scopesOf(lines, 9, 'user').includes('keyword.control.role.promptxray'));
    assert.ok(scopesOf(lines, 9, ':').includes('punctuation.separator.role.promptxray'));
  });

  it('marks placeholders, Jinja statements and comments', async () => {
    const lines = await tokenize('source.promptxray.prompty', PROMPTY);
    assert.ok(scopesOf(lines, 10, 'country').includes('variable.other.placeholder.promptxray'));
    assert.ok(scopesOf(lines, 10, '{{').includes('punctuation.definition.template-expression.begin.promptxray'));
    assert.ok(scopesOf(lines, 7, 'style').includes('variable.other.placeholder.promptxray'));
    assert.ok(lines[11].every(([, s]) => s.includes('comment.block.template.promptxray')));
    assert.ok(scopesOf(lines, 12, 'if').includes('keyword.control.template.promptxray'));
  });

  it('does not take "user:" inside a sentence for a role', async () => {
    const lines = await tokenize('source.promptxray.prompt', 'Ask the user: what now?\n  assistant :  ');
    assert.ok(lines[0].every(([, s]) => !s.includes('keyword.control.role.promptxray')));
    assert.ok(scopesOf(lines, 1, 'assistant').includes('keyword.control.role.promptxray'));
  });

  it('accepts a byte-order mark before the front matter', async () => {
    const lines = await tokenize('source.promptxray.prompt', '\uFEFF---\na: 1\n---\nHi');
    assert.ok(lines[1].every(([, s]) => s.includes('meta.embedded.block.frontmatter')));
  });

  it('only takes --- on the first line for front matter', async () => {
    const lines = await tokenize('source.promptxray.prompt', 'Hello\n---\nworld');
    assert.ok(lines.flat().every(([, s]) => !s.includes('meta.frontmatter.promptxray')));
  });

  it('colours light Markdown: headings, code, tags and ${variables}', async () => {
    const lines = await tokenize(
      'source.promptxray.prompt',
      '# Task {{x}}\nUse `code` and <context>here</context> with ${input:name}.\n```\nuser:\n```',
    );
    assert.ok(scopesOf(lines, 0, 'x').includes('variable.other.placeholder.promptxray'));
    assert.ok(lines[0][0][1].includes('markup.heading.promptxray'));
    assert.ok(scopesOf(lines, 1, 'context').includes('entity.name.tag.promptxray'));
    assert.ok(scopesOf(lines, 1, 'input:name').includes('variable.other.placeholder.promptxray'));
    assert.ok(lines[1].some(([t, s]) => t.includes('code') && s.includes('markup.inline.raw.promptxray')));
    assert.ok(lines[3].every(([, s]) => !s.includes('keyword.control.role.promptxray')), 'no roles inside code');
  });
});
