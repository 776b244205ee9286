/** Which documents are prompts: the server's document selector, and the active prompt. */

import * as vscode from 'vscode';

import { PROMPT_MD_PATTERN } from './common/constants';
import { LANGUAGE_IDS } from './common/manifest';

/** Where the server attaches: our two languages, and Markdown prompt files by name only. */
export const DOCUMENT_SELECTOR = [
  ...LANGUAGE_IDS.map((language) => ({ scheme: 'file', language })),
  { scheme: 'file', pattern: PROMPT_MD_PATTERN },
  // prompts in Python code: lenses, hovers and diagnostics only (see isCodeDocument)
  { scheme: 'file', language: 'python' },
];

/** A code file: its own language server colours it, so promptxray adds no semantic tokens. */
export function isCodeDocument(document: vscode.TextDocument): boolean {
  return document.languageId === 'python';
}

export function isPromptDocument(document: vscode.TextDocument | undefined): document is vscode.TextDocument {
  return document !== undefined && vscode.languages.match(DOCUMENT_SELECTOR, document) > 0;
}

export function hasPromptDocument(): boolean {
  return vscode.workspace.textDocuments.some(isPromptDocument);
}

/** The active editor's prompt document; else a warning, and undefined. */
export function activePromptDocument(): vscode.TextDocument | undefined {
  const document = vscode.window.activeTextEditor?.document;
  if (isPromptDocument(document)) {
    return document;
  }
  void vscode.window.showWarningMessage(
    'promptxray: open a .prompt, .prompty or .prompt.md file (saved on disk) first.',
  );
  return undefined;
}
