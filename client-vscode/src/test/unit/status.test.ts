import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { failureOf, modelLabel, stageLabel, stageState, StatusModel, StatusParams } from '../../common/status';

const settings = { model: '/home/user/models/stories260K', backend: 'torch', method: 'occlusion' };
const A = 'file:///a.prompt';
const B = 'file:///b.prompt';
const at = (uri: string, stage: string, done = 0, total = 0): StatusParams => ({ uri, stage, done, total });

describe('stages', () => {
  it('map the server’s stages to states, by name only', () => {
    assert.equal(stageState('queued'), 'explaining');
    assert.equal(stageState('load'), 'loading');
    for (const stage of ['target', 'attribute', 'outline', 'blocks', 'lines_bf16', 'top_lines', 'lines', 'refine', 'self-explain']) {
      assert.equal(stageState(stage), 'explaining', stage);
    }
    assert.equal(stageState('ready'), 'ready');
    assert.equal(stageState('error'), 'error');
    assert.equal(stageState('some-new-stage'), 'explaining', 'an unknown stage is still work');
  });

  it('label a stage with its steps when it counts them', () => {
    assert.equal(stageLabel(at(A, 'lines', 3, 10)), 'lines 3/10');
    assert.equal(stageLabel(at(A, 'target')), 'target');
    assert.equal(stageLabel(at(A, 'ready', 1, 1)), 'ready');
  });
});

describe('StatusModel', () => {
  it('follows a server start and one explanation', () => {
    const model = new StatusModel();
    assert.equal(model.state(), 'stopped');
    model.server('starting');
    assert.equal(model.state(), 'starting');
    model.server('running');
    assert.equal(model.state(A), 'ready');
    model.stage(at(A, 'queued'));
    assert.equal(model.state(A), 'explaining');
    model.stage(at(A, 'load', 0, 1));
    assert.equal(model.state(A), 'loading');
    model.stage(at(A, 'load', 1, 1));
    model.stage(at(A, 'attribute', 5, 10));
    assert.equal(model.state(A), 'explaining');
    assert.equal(model.view(settings, A).text, '$(sync~spin) promptxray: stories260K · torch · explaining: attribute 5/10');
    assert.match(model.view(settings, A).tooltip, /stage: attribute 5\/10 \(a\.prompt\)/);
    model.stage(at(A, 'ready', 1, 1));
    assert.equal(model.state(A), 'ready');
    assert.equal(model.view(settings, A).text, '$(eye) promptxray: stories260K · torch · ready');
  });

  it('shows loading while any document loads the model, and other documents’ work', () => {
    const model = new StatusModel();
    model.server('running');
    model.stage(at(A, 'ready', 1, 1));
    model.stage(at(B, 'load', 0, 1));
    assert.equal(model.state(A), 'loading');
    assert.equal(model.view(settings, A).text, '$(loading~spin) promptxray: stories260K · torch · loading');
    model.stage(at(B, 'lines', 1, 4));
    assert.equal(model.state(A), 'explaining', 'b.prompt is being explained');
    assert.equal(model.state(), 'explaining');
    model.stage(at(B, 'ready', 1, 1));
    assert.equal(model.state(A), 'ready');
  });

  it('shows the active document’s error, with the reason from its diagnostics', () => {
    const model = new StatusModel();
    model.server('running');
    model.diagnostics(A, [{ source: 'promptxray', severity: 1, message: 'promptxray could not explain this prompt: no model' }]);
    model.stage(at(A, 'error'));
    assert.equal(model.state(A), 'error');
    assert.equal(model.state(B), 'ready');
    assert.match(model.view(settings, A).tooltip, /no model/);
    model.stage(at(A, 'queued'));
    assert.equal(model.state(A), 'explaining', 'a new job for the document');
    model.stage(at(A, 'error'));
    model.forget(A);
    assert.equal(model.state(A), 'ready');
  });

  it('leaves error diagnostics of a ready document to the editor (e.g. failed checks)', () => {
    const model = new StatusModel();
    model.server('running');
    model.stage(at(A, 'ready', 1, 1));
    model.diagnostics(A, [{ source: 'promptxray', severity: 0, message: 'check failed: expected Paris' }]);
    assert.equal(model.state(A), 'ready');
  });

  it('reports a failed start as an error, with the reason in the tooltip', () => {
    const model = new StatusModel();
    model.server('failed', 'promptxray is not installed');
    const view = model.view(settings);
    assert.equal(view.state, 'error');
    assert.match(view.text, /\$\(error\) promptxray: stories260K · torch · error/);
    assert.match(view.tooltip, /not installed/);
  });

  it('forgets the stages when the server stops', () => {
    const model = new StatusModel();
    model.server('running');
    model.stage(at(A, 'attribute'));
    model.server('stopped');
    model.server('running');
    assert.equal(model.state(A), 'ready');
  });

  it('renders model, backend and state', () => {
    const model = new StatusModel();
    model.server('running');
    assert.equal(model.view(settings).text, '$(eye) promptxray: stories260K · torch · ready');
    assert.equal(model.view({ ...settings, model: null }).text, '$(eye) promptxray: default model · torch · ready');
  });
});

describe('helpers', () => {
  it('finds failures only in promptxray errors and warnings', () => {
    assert.equal(failureOf([{ source: 'other', severity: 0, message: 'x' }]), undefined);
    assert.equal(failureOf([{ source: 'promptxray', severity: 3, message: 'x' }]), undefined);
    assert.equal(failureOf([{ source: 'promptxray', severity: 0, message: 'x' }]), 'x');
  });

  it('labels models', () => {
    assert.equal(modelLabel(null), 'default model');
    assert.equal(modelLabel('HuggingFaceTB/SmolLM2-135M'), 'HuggingFaceTB/SmolLM2-135M');
    assert.equal(modelLabel('/a/b/stories260K/'), 'stories260K');
    assert.equal(modelLabel('C:\\models\\tiny'), 'tiny');
  });
});
