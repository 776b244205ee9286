"""Every command README.md gives is run: the `promptxray` ones here, on the default model, as a
newcomer would type them (in a folder holding the repository's examples); the set-up commands
by CI itself, which this test checks."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
README = REPO / "README.md"
BLOCK = re.compile(r"^\s*```sh\n(.*?)^\s*```", re.S | re.M)
# what runs these: CI runs .ci/run -> scripts/test, which builds and packages the client
RUN_BY_CI = {
    "./scripts/demo": "scripts/setup, then `promptxray explain examples/capital.prompt` (below)",
    "./scripts/test": ".ci/run",
    "cd client-vscode && npm ci && npm run package": "scripts/test",
}


def readme_commands() -> list[str]:
    """The shell commands of README.md's ```sh blocks, comments stripped."""
    commands = []
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_the_setup_commands_are_what_ci_runs():
    commands = readme_commands()
    assert "./scripts/demo" in commands and "./scripts/test" in commands
    assert "./scripts/test" in (REPO / ".ci" / "run").read_text()
    assert "promptxray explain examples/capital.prompt" in (REPO / "scripts" / "demo").read_text()
    test_script = (REPO / "scripts" / "test").read_text()
    assert "npm ci" in test_script and "npm run package" in test_script
    assert "promptxray explain examples/capital.prompt" in commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_until_up(argv: list[str], cwd: Path, env: dict[str, str], port: int) -> None:
    """Start a server command, wait until it answers on `port`, then stop it."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.5)
        pytest.fail(f"{' '.join(argv)} did not serve on port {port} within 180 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("command", [c for c in readme_commands() if c not in RUN_BY_CI])
def test_the_readme_command_runs(command: str, tmp_path: Path):
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    argv = shlex.split(command)
    assert argv[0] == "promptxray", f"README command {command!r} is run by no test"
    if argv[1] == "chat":  # a server: it must come up and serve (on a free port here)
        port = _free_port()
        argv = [*argv[:2], "--port", str(port)]
        _serve_until_up(argv, tmp_path, env, port)
        return
    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
