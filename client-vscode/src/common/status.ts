/** The status-bar state from the server's `promptxray/status` stages, diagnostics, life cycle. */

/** The stages the server sends (server/progress.py STATUS_STAGES), in their usual order. */
export const STAGES = [
  'queued',
  'load',
  'target',
  'attribute',
  'outline',
  'blocks',
  'lines_bf16',
  'top_lines',
  'lines',
  'refine',
  'self-explain',
  'ready',
  'error',
] as const;
export type Stage = (typeof STAGES)[number];

/** One `promptxray/status` notification: `done`/`total` count the stage's steps (0/0: none). */
export interface StatusParams {
  uri: string;
  stage: string;
  done: number;
  total: number;
}

export type ServerPhase = 'stopped' | 'starting' | 'running' | 'failed';
export type StatusState = 'stopped' | 'starting' | 'loading' | 'explaining' | 'ready' | 'error';

/** What a stage says about its document: the model loads, it is being explained, or it is done. */
export function stageState(stage: string): 'loading' | 'explaining' | 'ready' | 'error' {
  if (stage === 'load') {
    return 'loading';
  }
  if (stage === 'ready' || stage === 'error') {
    return stage;
  }
  return 'explaining'; // queued, target, attribute, the anytime stages, self-explain (and new ones)
}

/** A stage for people: its name, and its steps when it counts them (`lines 3/10`). */
export function stageLabel(params: Pick<StatusParams, 'stage' | 'done' | 'total'>): string {
  return params.total > 0 && params.stage !== 'ready' ? `${params.stage} ${params.done}/${params.total}` : params.stage;
}

/** A diagnostic as the status model needs it. */
export interface DiagnosticLike {
  source?: string;
  /** 0 Error, 1 Warning, 2 Information, 3 Hint (vscode.DiagnosticSeverity). */
  severity: number;
  message: string;
}

/** The reason explaining failed, if the server's diagnostics say so (Error or Warning). */
export function failureOf(diagnostics: readonly DiagnosticLike[]): string | undefined {
  const bad = diagnostics.find((d) => d.source === 'promptxray' && d.severity <= 1);
  return bad?.message;
}

/** The short model name shown in the status bar: a folder's last part, or the hub id. */
export function modelLabel(model: string | null | undefined): string {
  if (!model) {
    return 'default model';
  }
  const parts = model.replace(/[\\/]+$/, '').split(/[\\/]/);
  const last = parts[parts.length - 1] || model;
  // a hub id "org/name" keeps its org; a path keeps its last folder
  return /^[\w.-]+\/[\w.-]+$/.test(model) ? model : last;
}

const ICONS: Record<StatusState, string> = {
  stopped: '$(circle-slash)',
  starting: '$(loading~spin)',
  loading: '$(loading~spin)',
  explaining: '$(sync~spin)',
  ready: '$(eye)',
  error: '$(error)',
};

export interface StatusView {
  state: StatusState;
  text: string;
  tooltip: string;
}

/** Tracks the server's phase and each document's latest stage and failure. */
export class StatusModel {
  private readonly stages = new Map<string, StatusParams>();
  private readonly failures = new Map<string, string>();
  private phase: ServerPhase = 'stopped';
  private phaseDetail = '';

  /** The client started, stopped or failed; a new phase forgets the old stages. */
  server(phase: ServerPhase, detail = ''): void {
    this.phase = phase;
    this.phaseDetail = detail;
    if (phase !== 'running') {
      this.stages.clear();
    }
  }

  /** A `promptxray/status` notification: the document's stage now. */
  stage(params: StatusParams): void {
    this.stages.set(params.uri, { ...params });
  }

  diagnostics(uri: string, diagnostics: readonly DiagnosticLike[]): void {
    const failure = failureOf(diagnostics);
    if (failure === undefined) {
      this.failures.delete(uri);
    } else {
      this.failures.set(uri, failure);
    }
  }

  forget(uri: string): void {
    this.stages.delete(uri);
    this.failures.delete(uri);
  }

  /** The stage shown: the active document's while it works or failed, else another's at work. */
  private current(uri?: string): StatusParams | undefined {
    const all = [...this.stages.values()];
    const loading = all.find((s) => s.stage === 'load');
    if (loading) {
      return loading; // the model loads once, for every document
    }
    const own = uri === undefined ? undefined : this.stages.get(uri);
    if (own && stageState(own.stage) !== 'ready') {
      return own;
    }
    return all.find((s) => stageState(s.stage) === 'explaining') ?? own;
  }

  /** The state to show, for the active document `uri` if any. */
  state(uri?: string): StatusState {
    if (this.phase === 'failed') {
      return 'error';
    }
    if (this.phase === 'stopped' || this.phase === 'starting') {
      return this.phase;
    }
    const current = this.current(uri);
    return current ? stageState(current.stage) : 'ready';
  }

  view(settings: { model: string | null; backend: string; method: string }, uri?: string): StatusView {
    const state = this.state(uri);
    const current = this.phase === 'running' ? this.current(uri) : undefined;
    const working = state === 'loading' || state === 'explaining';
    const detail = working && current && current.stage !== 'load' ? `: ${stageLabel(current)}` : '';
    const text = `${ICONS[state]} promptxray: ${modelLabel(settings.model)} · ${settings.backend} · ${state}${detail}`;
    const lines = [
      `promptxray: ${state}`,
      `model: ${settings.model ?? 'default (SmolLM2-135M)'}`,
      `backend: ${settings.backend} · method: ${settings.method}`,
    ];
    if (working && current) {
      lines.push(`stage: ${stageLabel(current)} (${current.uri.replace(/^.*\//, '')})`);
    }
    if (state === 'error') {
      const why = this.phase === 'failed' ? this.phaseDetail : current && this.failures.get(current.uri);
      if (why) {
        lines.push(why);
      }
    }
    lines.push('Click for the promptxray logs.');
    return { state, text, tooltip: lines.join('\n') };
  }
}
