"""A real vLLM engine (CPU build, its own virtual environment from scripts/install-vllm) for
the tests and the benchmarks: started on a free loopback port, stopped and restarted on
demand. Start-up takes about 100 s on two cores."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600


def engine_python() -> str:
    """The engine environment's python, installed on first use (minutes, once)."""
    out = subprocess.run(
        [str(REPO / "scripts" / "install-vllm")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    """`python -m vllm.entrypoints.openai.api_server` serving `folder` as `name`."""

    def __init__(self, folder: str, name: str, port: int | None = None, max_len: int = 2048):
        self.folder = folder
        self.name = name
        self.port = port or free_port()
        self.max_len = max_len
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"promptxray-vllm-{self.port}.log"

    def start(self, wait: bool = True) -> Engine:
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        env.pop("VLLM_CPU_OMP_THREADS_BIND", None)  # "all" is rejected by this version
        env["HF_HUB_OFFLINE"] = "1"
        env["VLLM_NO_USAGE_STATS"] = "1"
        env["DO_NOT_TRACK"] = "1"
        command = [
            engine_python(),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.folder,
            "--served-model-name",
            self.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            "float32",
            "--max-model-len",
            str(self.max_len),
            "--enable-prefix-caching",
            "--max-logprobs",
            "20",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the vLLM engine exited; its log: {self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"the vLLM engine did not start in {timeout_s:g} s: {self.tail()}")

    def stop(self) -> None:
        """Kill the engine and every process it started (its API and core processes)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.proc = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the port is free again
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.2)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
