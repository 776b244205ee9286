import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AskUser,
  completeArguments,
  diffDocument,
  formatComparison,
  targetArgument,
  validateComparison,
} from '../../common/commands';

function ui(method: string | undefined, target: string | undefined): AskUser & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    pickMethod: () => {
      asked.push('method');
      return Promise.resolve(method);
    },
    askTarget: () => {
      asked.push('target');
      return Promise.resolve(target);
    },
  };
}

describe('code-lens command interception', () => {
  it('asks for the method when explainWith has none', async () => {
    const ask = ui('saliency', undefined);
    assert.deepEqual(await completeArguments('promptxray.explainWith', ['file:///a.prompt'], ask), [
      'file:///a.prompt',
      'saliency',
    ]);
    assert.deepEqual(ask.asked, ['method']);
  });

  it('cancels when the pick is dismissed', async () => {
    assert.equal(await completeArguments('promptxray.explainWith', ['u'], ui(undefined, undefined)), undefined);
  });

  it('forwards explainWith with a method untouched', async () => {
    const ask = ui('x', undefined);
    assert.deepEqual(await completeArguments('promptxray.explainWith', ['u', 'attention'], ask), ['u', 'attention']);
    assert.deepEqual(ask.asked, []);
  });

  it('asks for the target; empty clears it; dismissing cancels', async () => {
    assert.deepEqual(await completeArguments('promptxray.setTarget', ['u'], ui(undefined, ' Paris')), ['u', ' Paris']);
    assert.deepEqual(await completeArguments('promptxray.setTarget', ['u'], ui(undefined, '')), ['u', null]);
    assert.equal(await completeArguments('promptxray.setTarget', ['u'], ui(undefined, undefined)), undefined);
    const ask = ui(undefined, 'no');
    assert.deepEqual(await completeArguments('promptxray.setTarget', ['u', null], ask), ['u', null]);
    assert.deepEqual(ask.asked, []);
  });

  it('leaves other commands alone', async () => {
    const ask = ui('x', 'y');
    assert.deepEqual(await completeArguments('promptxray.explain', ['u'], ask), ['u']);
    assert.deepEqual(ask.asked, []);
  });

  it('turns blank targets into null', () => {
    assert.equal(targetArgument('   '), null);
    assert.equal(targetArgument(' Paris'), ' Paris');
  });
});

describe('compare methods', () => {
  it('needs two or more known methods', () => {
    assert.match(validateComparison(['occlusion']) ?? '', /at least two/);
    assert.match(validateComparison(['occlusion', 'magic']) ?? '', /magic/);
    assert.equal(validateComparison(['occlusion', 'saliency']), undefined);
  });

  it('formats the server result', () => {
    const text = formatComparison({
      methods: ['occlusion', 'saliency'],
      pairs: [{ methods: ['occlusion', 'saliency'], spearman: 0.4321, top5_overlap: 0.6 }],
      summary: 'promptxray: occlusion vs saliency: Spearman 0.43, top-5 overlap 60%',
    });
    assert.match(text, /occlusion vs saliency: Spearman 0\.43, top-5 overlap 60%$/m);
    assert.match(formatComparison({ pairs: [{ methods: ['a', 'b'], spearman: null, top5_overlap: null }] }), /n\/a/);
  });
});

describe('diff with the saved version', () => {
  it('shows the server’s Markdown, nothing for an error or a superseded run', () => {
    assert.equal(diffDocument({ uri: 'u', markdown: '# promptxray\n', text: 't' }), '# promptxray\n');
    assert.equal(diffDocument({ error: 'no saved version' }), undefined);
    assert.equal(diffDocument({ superseded: true }), undefined);
    assert.equal(diffDocument(undefined), undefined);
  });
});
