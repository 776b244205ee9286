/** Which Python runs the server (setting, Python extension, default): pure functions. */

/** A command line: the program, then arguments that always come first (e.g. `conda run ...`). */
export interface Interpreter {
  command: string;
  args: string[];
  /** Where it came from, for the logs and error messages. */
  source: 'setting' | 'python-extension' | 'default';
}

export interface InterpreterInputs {
  /** The `promptxray.python` setting (already filtered for workspace trust), or null. */
  setting: string | null;
  /** The Python extension's interpreter as a command line, if that extension is present. */
  pythonExtension?: string[] | null;
  /** Whether the workspace is trusted; untrusted ones never use workspace-chosen interpreters. */
  trusted: boolean;
  platform: string;
  /** The first workspace folder's path, for `${workspaceFolder}`. */
  workspaceFolder?: string | null;
  /** The user's home folder, for `~` and `${userHome}`. */
  home?: string | null;
}

/** Expand `~`, `${userHome}` and `${workspaceFolder}`; null when a variable has no value. */
export function expandVariables(
  value: string,
  vars: { home?: string | null; workspaceFolder?: string | null },
): string | null {
  let out = value.trim();
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) {
    if (!vars.home) {
      return null;
    }
    out = vars.home + out.slice(1);
  }
  const table: Record<string, string | null | undefined> = {
    userHome: vars.home,
    workspaceFolder: vars.workspaceFolder,
  };
  let missing = false;
  out = out.replace(/\$\{(\w+)\}/g, (whole, name: string) => {
    if (!(name in table)) {
      return whole;
    }
    const v = table[name];
    if (!v) {
      missing = true;
      return '';
    }
    return v;
  });
  return missing ? null : out;
}

export function defaultPython(platform: string): string {
  return platform === 'win32' ? 'python' : 'python3';
}

/**
 * The interpreter to use, in order: the setting, the Python extension's active interpreter
 * (trusted workspaces only: it is often the workspace's own virtual environment), the default.
 * In an untrusted workspace a setting that points into the workspace (`${workspaceFolder}`) is
 * skipped too.
 */
export function chooseInterpreter(inputs: InterpreterInputs): Interpreter {
  const setting = inputs.setting?.trim();
  if (setting) {
    const refersToWorkspace = setting.includes('${workspaceFolder}');
    if (inputs.trusted || !refersToWorkspace) {
      const expanded = expandVariables(setting, inputs);
      if (expanded) {
        return { command: expanded, args: [], source: 'setting' };
      }
    }
  }
  const fromExtension = (inputs.pythonExtension ?? []).filter((part) => part && part.trim());
  if (inputs.trusted && fromExtension.length > 0) {
    return { command: fromExtension[0], args: fromExtension.slice(1), source: 'python-extension' };
  }
  return { command: defaultPython(inputs.platform), args: [], source: 'default' };
}

/** Arguments that check the server can be imported (exit status 0 when it can). */
export const CHECK_ARGS = ['-c', 'import promptxray.server'];
/** Arguments that start the server over stdio. */
export const SERVER_ARGS = ['-m', 'promptxray.server'];

/** The interpreter as the user would type it (quoted when needed). */
export function displayCommand(interpreter: Pick<Interpreter, 'command' | 'args'>): string {
  return [interpreter.command, ...interpreter.args].map(shellQuote).join(' ');
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./\\-]+$/.test(word) ? word : `"${word.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** The actionable message shown when `import promptxray.server` fails. */
export function installHint(interpreter: Interpreter, detail?: string): string {
  const py = displayCommand(interpreter);
  const why = detail ? ` (${detail.trim().split('\n').slice(-1)[0]})` : '';
  const where =
    interpreter.source === 'setting'
      ? 'the interpreter set in "promptxray.python"'
      : interpreter.source === 'python-extension'
        ? "the Python extension's active interpreter"
        : 'the default interpreter';
  return (
    `promptxray: the language server is not installed for ${where}, ${py}${why}. ` +
    `Install it with \`${py} -m pip install promptxray\` (or, from a clone of the repository, ` +
    `\`${py} -m pip install -e .\`), or set "promptxray.python" to an interpreter that has it.`
  );
}

/** The shell command the "Copy install command" button copies. */
export function installCommand(interpreter: Interpreter): string {
  return `${displayCommand(interpreter)} -m pip install promptxray`;
}

/**
 * The Python extension's interpreter from its API object (`ms-python.python` exports), with
 * every step guarded: the newer `environments` API first, then `settings.getExecutionDetails`.
 * `resolve` is the API's `resolveEnvironment`, already awaited by the caller when available.
 */
export function fromPythonExtensionApi(
  api: unknown,
  resolvedExecutable?: string | null,
  resource?: unknown,
): string[] | null {
  if (resolvedExecutable) {
    return [resolvedExecutable];
  }
  if (typeof api !== 'object' || api === null) {
    return null;
  }
  const a = api as {
    environments?: { getActiveEnvironmentPath?: (r?: unknown) => { path?: unknown } | undefined };
    settings?: { getExecutionDetails?: (r?: unknown) => { execCommand?: unknown } | undefined };
  };
  try {
    const active = a.environments?.getActiveEnvironmentPath?.(resource);
    if (active && typeof active.path === 'string' && active.path && /python[\d.]*(\.exe)?$/i.test(active.path)) {
      return [active.path];
    }
  } catch {
    // an older or broken API: fall through
  }
  try {
    const details = a.settings?.getExecutionDetails?.(resource);
    const exec = details?.execCommand;
    if (Array.isArray(exec) && exec.length > 0 && exec.every((p) => typeof p === 'string')) {
      return exec;
    }
  } catch {
    // ignore
  }
  return null;
}

/**
 * The folder the server (and the import check and the CLI) runs in. `python -m` and `python -c`
 * put the current folder first on `sys.path`, so in an untrusted workspace it must not be the
 * workspace (a `promptxray/` folder there would run instead of the installed package): use the
 * extension's own storage folder. A trusted workspace runs in its first folder, so relative
 * model paths in the settings resolve against it.
 */
export function serverCwd(
  trusted: boolean,
  workspaceFolder: string | null | undefined,
  privateFolder: string,
): string {
  return trusted && workspaceFolder ? workspaceFolder : privateFolder;
}
