/** The HTML view's logic: the CLI command line, and the page made safe for a webview. */

import { DEFAULTS, Settings } from './settings';

type BackendSettings = Pick<
  Settings,
  | 'endpoint'
  | 'servedModel'
  | 'keyVariable'
  | 'tier'
  | 'maxRequests'
  | 'pricePerMillionTokens'
  | 'concurrency'
  | 'requestTimeoutSeconds'
  | 'device'
  | 'dtype'
>;

/** The backends that send the prompts to an OpenAI-compatible server (`vllm`: one insisting on
 * prompt log-probabilities). */
export const REMOTE_BACKENDS: readonly string[] = ['openai', 'vllm'];

/** Arguments after the interpreter: `-m promptxray.cli explain FILE --format html -o OUT`. */
export function htmlCliArgs(
  settings: Pick<Settings, 'model' | 'backend' | 'method' | 'granularity' | 'maxNewTokens'> &
    Partial<BackendSettings>,
  file: string,
  out: string,
  overrides: { method?: string; target?: string | null } = {},
): string[] {
  const args = ['-m', 'promptxray.cli', 'explain', file, '--format', 'html', '-o', out];
  args.push('--method', overrides.method ?? settings.method);
  args.push('--granularity', settings.granularity);
  args.push('--backend', settings.backend);
  args.push('--max-new-tokens', String(settings.maxNewTokens));
  if (settings.model) {
    args.push('--model', settings.model);
  }
  // how the backend is reached (openai, vllm) or run (torch); defaults are left to the CLI
  if (REMOTE_BACKENDS.includes(settings.backend)) {
    if (settings.endpoint) {
      args.push('--endpoint', settings.endpoint);
    }
    if (settings.servedModel) {
      args.push('--served-model', settings.servedModel);
    }
    // the name of the variable holding the key, never the key itself
    if (settings.keyVariable && settings.keyVariable !== DEFAULTS.keyVariable) {
      args.push('--api-key-env', settings.keyVariable);
    }
    if (settings.tier && settings.tier !== DEFAULTS.tier) {
      args.push('--tier', settings.tier);
    }
    if (typeof settings.maxRequests === 'number' && settings.maxRequests > 0) {
      args.push('--max-requests', String(settings.maxRequests));
    }
    if (typeof settings.pricePerMillionTokens === 'number' && settings.pricePerMillionTokens > 0) {
      args.push('--price', String(settings.pricePerMillionTokens));
    }
    if (settings.concurrency !== undefined && settings.concurrency !== DEFAULTS.concurrency) {
      args.push('--concurrency', String(settings.concurrency));
    }
    if (
      settings.requestTimeoutSeconds !== undefined &&
      settings.requestTimeoutSeconds !== DEFAULTS.requestTimeoutSeconds
    ) {
      args.push('--request-timeout', String(settings.requestTimeoutSeconds));
    }
  } else if (settings.backend === 'torch') {
    if (settings.device && settings.device !== DEFAULTS.device) {
      args.push('--device', settings.device);
    }
    if (settings.dtype && settings.dtype !== DEFAULTS.dtype) {
      args.push('--dtype', settings.dtype);
    }
  }
  if (overrides.target) {
    args.push('--target', overrides.target);
  }
  return args;
}

/** The policy: nothing but inline styles and data: images; no scripts, frames, fetches. */
export function contentSecurityPolicy(cspSource: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource} 'unsafe-inline'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource} data:`,
  ].join('; ');
}

const escapeAttr = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The page with <script> elements removed and the CSP meta tag first in <head>. (Inline event
 * handlers need no rewriting: the policy has no script-src, and the webview disables scripts.)
 */
export function secureHtml(html: string, cspSource: string): string {
  let out = html
    .replace(/<script\b[\s\S]*?<\/script\s*>/gi, '')
    .replace(/<script\b[^>]*>/gi, '')
    .replace(/<meta\s+http-equiv\s*=\s*["']?content-security-policy["']?[^>]*>/gi, '');
  const meta = `<meta http-equiv="Content-Security-Policy" content="${escapeAttr(
    contentSecurityPolicy(cspSource),
  )}">`;
  if (/<head\b[^>]*>/i.test(out)) {
    out = out.replace(/<head\b[^>]*>/i, (head) => `${head}\n${meta}`);
  } else {
    out = `<!DOCTYPE html><html><head>${meta}</head><body>${out}</body></html>`;
  }
  return out;
}
