import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { failureOf, modelLabel, progressState, StatusModel } from '../../common/status';

const settings = { model: '/home/user/models/stories260K', backend: 'torch', method: 'occlusion' };

describe('progressState', () => {
  it('maps the server messages to states', () => {
    assert.equal(progressState({ kind: 'begin', title: 'promptxray: a.prompt', message: 'queued' }), 'explaining');
    assert.equal(progressState({ kind: 'report', message: 'starting' }), 'explaining');
    assert.equal(progressState({ kind: 'report', message: 'loading the model' }), 'loading');
    assert.equal(progressState({ kind: 'report', message: 'finding the answer' }), 'explaining');
    assert.equal(progressState({ kind: 'report', message: 'attributing' }), 'explaining');
    assert.equal(progressState({ kind: 'report' }), 'explaining');
    assert.equal(progressState({ kind: 'end', message: 'done' }), 'ready');
  });
});

describe('StatusModel', () => {
  it('follows a server start and one explanation', () => {
    const model = new StatusModel();
    assert.equal(model.state(), 'stopped');
    model.server('starting');
    assert.equal(model.state(), 'starting');
    model.server('running');
    assert.equal(model.state(), 'ready');
    model.progress('t1', { kind: 'begin', title: 'promptxray: a.prompt', message: 'queued' });
    assert.equal(model.state(), 'explaining');
    model.progress('t1', { kind: 'report', message: 'loading the model' });
    assert.equal(model.state(), 'loading');
    model.progress('t1', { kind: 'report', message: 'attributing', percentage: 50 });
    assert.equal(model.state(), 'explaining');
    model.progress('t1', { kind: 'end', message: 'done' });
    assert.equal(model.state(), 'ready');
  });

  it('shows loading while any job loads, and explaining until all end', () => {
    const model = new StatusModel();
    model.server('running');
    model.progress(1, { kind: 'begin', message: 'queued' });
    model.progress(2, { kind: 'report', message: 'loading the model' });
    assert.equal(model.state(), 'loading');
    model.progress(2, { kind: 'end' });
    assert.equal(model.state(), 'explaining');
    model.progress(1, { kind: 'end' });
    assert.equal(model.state(), 'ready');
  });

  it('reports a failed start as an error, with the reason in the tooltip', () => {
    const model = new StatusModel();
    model.server('failed', 'promptxray is not installed');
    const view = model.view(settings);
    assert.equal(view.state, 'error');
    assert.match(view.text, /\$\(error\) promptxray: stories260K · torch · error/);
    assert.match(view.tooltip, /not installed/);
  });

  it('shows the active document’s failure from its diagnostics', () => {
    const model = new StatusModel();
    model.server('running');
    model.diagnostics('file:///a.prompt', [
      { source: 'promptxray', severity: 1, message: 'promptxray could not explain this prompt: no model' },
    ]);
    assert.equal(model.state('file:///a.prompt'), 'error');
    assert.equal(model.state('file:///b.prompt'), 'ready');
    assert.match(model.view(settings, 'file:///a.prompt').tooltip, /no model/);
    model.diagnostics('file:///a.prompt', [{ source: 'promptxray', severity: 2, message: 'Drives the answer' }]);
    assert.equal(model.state('file:///a.prompt'), 'ready');
    model.diagnostics('file:///a.prompt', [{ source: 'promptxray', severity: 0, message: 'too long' }]);
    model.forget('file:///a.prompt');
    assert.equal(model.state('file:///a.prompt'), 'ready');
  });

  it('forgets progress when the server stops', () => {
    const model = new StatusModel();
    model.server('running');
    model.progress('x', { kind: 'begin' });
    model.server('stopped');
    model.server('running');
    assert.equal(model.state(), 'ready');
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
