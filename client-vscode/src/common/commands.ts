/** The commands' logic without VS Code: method picker items, code-lens arguments, results. */

import { SERVER_COMMANDS } from './constants';
import { choiceDescriptions, choices } from './manifest';

/** The attribution methods (package.json's `promptxray.method` enum: the server's registry). */
export const METHODS: readonly string[] = choices('method');

/** One entry of the method picker. */
export interface MethodItem {
  label: string;
  description?: string;
  detail: string;
  picked: boolean;
}

/** The method picker's entries: every method with its registry summary, the setting's marked. */
export function methodItems(current: string, preselected: readonly string[] = []): MethodItem[] {
  const details = choiceDescriptions('method');
  return METHODS.map((method) => ({
    label: method,
    description: method === current ? '(setting)' : undefined,
    detail: details[method],
    picked: preselected.includes(method),
  }));
}

export interface AskUser {
  /** The chosen method, or undefined when the user dismissed the pick. */
  pickMethod(): Promise<string | undefined>;
  /** The target text ('' clears it), or undefined when the user dismissed the box. */
  askTarget(current?: string | null): Promise<string | undefined>;
}

/** The arguments to forward to the server, or undefined to cancel (the user dismissed the UI). */
export async function completeArguments(
  command: string,
  args: unknown[],
  ask: AskUser,
): Promise<unknown[] | undefined> {
  if (command === SERVER_COMMANDS.explainWith) {
    if (args.length >= 2 && typeof args[1] === 'string' && args[1]) {
      return args;
    }
    const method = await ask.pickMethod();
    return method === undefined ? undefined : [args[0], method];
  }
  if (command === SERVER_COMMANDS.setTarget) {
    if (args.length >= 2) {
      return args;
    }
    const target = await ask.askTarget();
    return target === undefined ? undefined : [args[0], targetArgument(target)];
  }
  return args;
}

/** An InputBox value as the server's target: empty means "the model's own answer" (null). */
export function targetArgument(text: string): string | null {
  return text.trim() === '' ? null : text;
}

/** Check a multi-select of methods for Compare methods: at least two, all known. */
export function validateComparison(picked: readonly string[]): string | undefined {
  if (picked.length < 2) {
    return 'Pick at least two methods to compare.';
  }
  const known = new Set(METHODS);
  const unknown = picked.filter((m) => !known.has(m));
  return unknown.length ? `Unknown method(s): ${unknown.join(', ')}` : undefined;
}

export interface ComparisonPair {
  methods: string[];
  spearman: number | null;
  top5_overlap: number | null;
}

/** A readable report of the server's compareMethods result. */
export function formatComparison(result: {
  methods?: string[];
  pairs?: ComparisonPair[];
  summary?: string;
}): string {
  const lines: string[] = [];
  if (result.summary) {
    lines.push(result.summary);
  }
  for (const pair of result.pairs ?? []) {
    const rho =
      pair.spearman === null || pair.spearman === undefined ? 'n/a' : pair.spearman.toFixed(2);
    const top =
      pair.top5_overlap === null || pair.top5_overlap === undefined
        ? 'n/a'
        : `${Math.round(pair.top5_overlap * 100)}%`;
    lines.push(`${pair.methods.join(' vs ')}: Spearman ${rho}, top-5 overlap ${top}`);
  }
  return lines.join('\n');
}

/** The Markdown document of the server's diffWithSaved result, or undefined when it has none
 * (an error or a superseded run). */
export function diffDocument(result: unknown): string | undefined {
  const markdown = (result as { markdown?: unknown } | null | undefined)?.markdown;
  return typeof markdown === 'string' && markdown ? markdown : undefined;
}
