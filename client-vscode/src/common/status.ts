/**
 * The status-bar state, driven by the server's `$/progress` (work-done progress), its
 * diagnostics and the client's own life cycle. Plain data in, plain text out.
 */

export type ProgressValue =
  | { kind: 'begin'; title?: string; message?: string; percentage?: number }
  | { kind: 'report'; message?: string; percentage?: number }
  | { kind: 'end'; message?: string };

export type ServerPhase = 'stopped' | 'starting' | 'running' | 'failed';
export type StatusState = 'stopped' | 'starting' | 'loading' | 'explaining' | 'ready' | 'error';

/** The server's progress message while it loads the model (server/state.py STAGES["load"]). */
export const LOADING_MESSAGE = 'loading the model';

/** What one progress notification says about the work: loading, explaining, or finished. */
export function progressState(value: ProgressValue): 'loading' | 'explaining' | 'ready' {
  if (value.kind === 'end') {
    return 'ready';
  }
  return (value.message ?? '').trim().toLowerCase() === LOADING_MESSAGE ? 'loading' : 'explaining';
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

/** Tracks the progress tokens in flight, the server's phase and per-document failures. */
export class StatusModel {
  private readonly tokens = new Map<string, 'loading' | 'explaining'>();
  private readonly failures = new Map<string, string>();
  private phase: ServerPhase = 'stopped';
  private phaseDetail = '';

  /** The client started, stopped or failed; a new phase forgets the old progress. */
  server(phase: ServerPhase, detail = ''): void {
    this.phase = phase;
    this.phaseDetail = detail;
    if (phase !== 'running') {
      this.tokens.clear();
    }
  }

  progress(token: string | number, value: ProgressValue): void {
    const key = String(token);
    const state = progressState(value);
    if (state === 'ready') {
      this.tokens.delete(key);
    } else {
      this.tokens.set(key, state);
    }
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
    this.failures.delete(uri);
  }

  /** The state to show, for the active document `uri` if any. */
  state(uri?: string): StatusState {
    if (this.phase === 'failed') {
      return 'error';
    }
    if (this.phase === 'stopped' || this.phase === 'starting') {
      return this.phase;
    }
    const states = [...this.tokens.values()];
    if (states.includes('loading')) {
      return 'loading';
    }
    if (states.length > 0) {
      return 'explaining';
    }
    if (uri !== undefined && this.failures.has(uri)) {
      return 'error';
    }
    return 'ready';
  }

  view(settings: { model: string | null; backend: string; method: string }, uri?: string): StatusView {
    const state = this.state(uri);
    const model = modelLabel(settings.model);
    const text = `${ICONS[state]} promptxray: ${model} · ${settings.backend} · ${state}`;
    const lines = [
      `promptxray: ${state}`,
      `model: ${settings.model ?? 'default (SmolLM2-135M)'}`,
      `backend: ${settings.backend} · method: ${settings.method}`,
    ];
    if (state === 'error') {
      const why = this.phase === 'failed' ? this.phaseDetail : uri ? this.failures.get(uri) : undefined;
      if (why) {
        lines.push(why);
      }
    }
    lines.push('Click for the promptxray logs.');
    return { state, text, tooltip: lines.join('\n') };
  }
}
