"""End to end: headless Neovim 0.7 as an independent LSP client of the real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import STORIES

HERE = Path(__file__).resolve().parent
LUA = HERE / "nvim_client.lua"

PROMPT = "Once upon a time there was a\nlittle girl named"


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(none)"


@pytest.mark.slow
def test_neovim_diagnostics_and_hover(tmp_path):
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim not on PATH: .ci/run installs neovim (apt-get install -y neovim)")
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")

    doc = tmp_path / "story.prompt"
    doc.write_text(PROMPT)
    out = tmp_path / "result.json"
    offset = PROMPT.index("upon")
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # keeps lsp.log inside tmp_path
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PX_FILE": str(doc),
        "PX_OUT": str(out),
        "PX_ROOT": str(tmp_path),
        "PX_PYTHON": sys.executable,
        "PX_INIT_OPTIONS": json.dumps(
            {"model": str(STORIES), "granularity": "word", "debounceMs": 50}
        ),
        "PX_LINE": "0",
        "PX_COL": str(offset + 1),
        "PX_TIMEOUT_MS": "120000",
    }
    cmd = [nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {LUA}", "-c", "qa!"]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    elapsed = time.monotonic() - start
    lsp_log = tmp_path / "cache" / "nvim" / "lsp.log"
    context = (
        f"nvim rc={proc.returncode} after {elapsed:.1f}s\nstdout: {proc.stdout[-2000:]}\n"
        f"stderr: {proc.stderr[-2000:]}\nlsp.log: {_tail(lsp_log)}"
    )
    assert out.exists(), context
    result = json.loads(out.read_text())
    context = f"result: {json.dumps(result, indent=1)}\n{context}"
    assert result.get("error") is None, context

    diagnostics = result["diagnostics"]
    assert diagnostics, context
    assert all(d["source"] == "promptxray" for d in diagnostics), context
    assert all(d["severity"] in (1, 2, 3, 4) for d in diagnostics), context
    drivers = [d for d in diagnostics if d["severity"] == 3]  # Information: what drives it
    assert any(re.match(r"#\d+ of \d+ ", d["message"]) for d in drivers), context

    hover = result["hover"]
    assert isinstance(hover, str) and "score" in hover, context
    assert "upon" in hover and hover.count("Faithfulness") == 1, context
    assert result.get("exit") is not None, context  # the server went away on stop_client
