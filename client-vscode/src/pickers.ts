/** What the user is asked: the one method picker (single or several), and the target box. */

import * as vscode from 'vscode';

import { AskUser, methodItems } from './common/commands';

/** Pick one method; `current` (the setting) is marked. Undefined when dismissed. */
export async function pickMethod(current: string): Promise<string | undefined> {
  return (await pickMethods(current))?.[0];
}

/** Pick methods: one, or with `preselected` several (checked to start with). */
export async function pickMethods(current: string, preselected?: readonly string[]): Promise<string[] | undefined> {
  const items = methodItems(current, preselected);
  if (preselected === undefined) {
    const choice = await vscode.window.showQuickPick(items, {
      title: 'promptxray: explain with which method?',
      placeHolder: 'Attribution method',
    });
    return choice && [choice.label];
  }
  const choices = await vscode.window.showQuickPick(items, {
    title: 'promptxray: compare which methods? (two or more)',
    canPickMany: true,
  });
  return choices?.map((choice) => choice.label);
}

/** The target text ('' clears it), or undefined when dismissed. */
export function askTarget(): Promise<string | undefined> {
  return Promise.resolve(
    vscode.window.showInputBox({
      title: 'promptxray: set the target',
      prompt: "The answer whose probability to explain. Leave empty to explain the model's own answer.",
      placeHolder: 'e.g.  Paris',
    }),
  );
}

/** The pickers as the code-lens middleware asks for them. */
export function askUser(currentMethod: () => string): AskUser {
  return { pickMethod: () => pickMethod(currentMethod()), askTarget };
}
