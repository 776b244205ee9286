/** Paths the tests share (compiled to out/compiled/src/test/paths.js). */
import * as fs from 'fs';
import * as path from 'path';

/** client-vscode/ */
export const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
/** The repository (client-vscode's parent). */
export const REPO = path.resolve(ROOT, '..');

export function readJson<T = Record<string, unknown>>(relative: string): T {
  return JSON.parse(fs.readFileSync(path.join(ROOT, relative), 'utf8')) as T;
}

/** The Python that runs the server in tests: $PROMPTXRAY_PYTHON, else the repo's .venv, else python3. */
export function testPython(): string {
  if (process.env.PROMPTXRAY_PYTHON) {
    return process.env.PROMPTXRAY_PYTHON;
  }
  const venv = path.join(REPO, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** The tiny test model: $PROMPTXRAY_STORIES, else <repo>/tests/models/stories260K. */
export function storiesModel(): string {
  return process.env.PROMPTXRAY_STORIES ?? path.resolve(REPO, 'tests', 'models', 'stories260K');
}
