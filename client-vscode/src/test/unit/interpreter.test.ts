import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  CHECK_ARGS,
  chooseInterpreter,
  defaultPython,
  displayCommand,
  expandVariables,
  fromPythonExtensionApi,
  installCommand,
  installHint,
  SERVER_ARGS,
  serverCwd,
} from '../../common/interpreter';

const base = { setting: null, trusted: true, platform: 'linux', home: '/home/u', workspaceFolder: '/ws' };

describe('chooseInterpreter', () => {
  it('prefers the setting', () => {
    const chosen = chooseInterpreter({ ...base, setting: '/opt/py/bin/python', pythonExtension: ['/venv/bin/python'] });
    assert.deepEqual(chosen, { command: '/opt/py/bin/python', args: [], source: 'setting' });
  });

  it("then the Python extension's interpreter, with its extra arguments", () => {
    assert.deepEqual(chooseInterpreter({ ...base, pythonExtension: ['/venv/bin/python'] }), {
      command: '/venv/bin/python',
      args: [],
      source: 'python-extension',
    });
    assert.deepEqual(chooseInterpreter({ ...base, pythonExtension: ['conda', 'run', '-n', 'x', 'python'] }), {
      command: 'conda',
      args: ['run', '-n', 'x', 'python'],
      source: 'python-extension',
    });
  });

  it('then python3 (python on Windows)', () => {
    assert.deepEqual(chooseInterpreter(base), { command: 'python3', args: [], source: 'default' });
    assert.equal(chooseInterpreter({ ...base, platform: 'win32' }).command, 'python');
    assert.equal(chooseInterpreter({ ...base, setting: '   ', pythonExtension: [] }).source, 'default');
    assert.equal(defaultPython('darwin'), 'python3');
  });

  it('expands ~, ${userHome} and ${workspaceFolder}', () => {
    assert.equal(chooseInterpreter({ ...base, setting: '~/py/bin/python' }).command, '/home/u/py/bin/python');
    assert.equal(chooseInterpreter({ ...base, setting: '${userHome}/p' }).command, '/home/u/p');
    assert.equal(chooseInterpreter({ ...base, setting: '${workspaceFolder}/.venv/bin/python' }).command, '/ws/.venv/bin/python');
    assert.equal(expandVariables('${workspaceFolder}/x', { home: '/h' }), null);
    assert.equal(expandVariables('${unknown}/x', {}), '${unknown}/x');
  });

  it('never runs a workspace-chosen interpreter in an untrusted workspace', () => {
    const untrusted = { ...base, trusted: false };
    assert.equal(chooseInterpreter({ ...untrusted, pythonExtension: ['/ws/.venv/bin/python'] }).source, 'default');
    assert.equal(
      chooseInterpreter({ ...untrusted, setting: '${workspaceFolder}/.venv/bin/python' }).command,
      'python3',
    );
    assert.equal(chooseInterpreter({ ...untrusted, setting: '/usr/bin/python3.12' }).command, '/usr/bin/python3.12');
  });
});

describe('the Python extension API', () => {
  it('uses the resolved executable first', () => {
    assert.deepEqual(fromPythonExtensionApi({}, '/env/bin/python'), ['/env/bin/python']);
  });

  it('reads environments.getActiveEnvironmentPath when it names an interpreter', () => {
    const api = { environments: { getActiveEnvironmentPath: () => ({ id: 'x', path: '/env/bin/python3.11' }) } };
    assert.deepEqual(fromPythonExtensionApi(api), ['/env/bin/python3.11']);
    const folder = { environments: { getActiveEnvironmentPath: () => ({ id: 'x', path: '/env' }) } };
    assert.equal(fromPythonExtensionApi(folder), null);
  });

  it('falls back to settings.getExecutionDetails', () => {
    const api = { settings: { getExecutionDetails: () => ({ execCommand: ['/old/python'] }) } };
    assert.deepEqual(fromPythonExtensionApi(api), ['/old/python']);
  });

  it('survives missing, odd and throwing APIs', () => {
    assert.equal(fromPythonExtensionApi(undefined), null);
    assert.equal(fromPythonExtensionApi(42), null);
    assert.equal(fromPythonExtensionApi({ settings: { getExecutionDetails: () => ({ execCommand: [1] }) } }), null);
    const throwing = {
      environments: {
        getActiveEnvironmentPath: () => {
          throw new Error('boom');
        },
      },
      settings: {
        getExecutionDetails: () => {
          throw new Error('boom');
        },
      },
    };
    assert.equal(fromPythonExtensionApi(throwing), null);
  });
});

describe('messages and command lines', () => {
  const interpreter = { command: '/opt/my py/python', args: [], source: 'setting' as const };

  it('tells the user how to install, quoting the interpreter', () => {
    const hint = installHint(interpreter, 'Traceback...\nModuleNotFoundError: No module named promptxray');
    assert.match(hint, /"\/opt\/my py\/python" -m pip install promptxray/);
    assert.match(hint, /pip install -e \./);
    assert.match(hint, /promptxray\.python/);
    assert.match(hint, /ModuleNotFoundError/);
    assert.equal(installCommand(interpreter), '"/opt/my py/python" -m pip install promptxray');
    assert.equal(displayCommand({ command: 'conda', args: ['run', '-n', 'x', 'python'] }), 'conda run -n x python');
  });

  it('checks and starts the server as a module', () => {
    assert.deepEqual(CHECK_ARGS, ['-c', 'import promptxray.server']);
    assert.deepEqual(SERVER_ARGS, ['-m', 'promptxray.server']);
  });

  it('never runs Python inside an untrusted workspace folder', () => {
    assert.equal(serverCwd(true, '/ws', '/storage'), '/ws');
    assert.equal(serverCwd(false, '/ws', '/storage'), '/storage');
    assert.equal(serverCwd(true, undefined, '/storage'), '/storage');
  });
});
