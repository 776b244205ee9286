"""One real vLLM engine per test session, serving the default model (SmolLM2-135M-Instruct,
the folder promptxray converts it into) as `smollm2`.

The engine is installed in its own environment by scripts/install-vllm and started once
(about 100 s). PROMPTXRAY_VLLM_ENDPOINT points the tests at an engine already running
instead (it must serve the same folder as `smollm2`). Tests that stop the engine restart it.
"""

from __future__ import annotations

import os

import pytest

from tests.vllm.engine import Engine

SERVED = "smollm2"


@pytest.fixture(scope="session")
def engine():
    """The running engine (its `url`; `stop()` and `start()` for the fault tests)."""
    from promptxray.explainers.models.loading import resolve_model_path

    folder, _ = resolve_model_path(None)
    given = os.environ.get("PROMPTXRAY_VLLM_ENDPOINT")
    if given:
        running = Engine(folder, SERVED)
        running.url = given.rstrip("/")
        yield running
        return
    started = Engine(folder, SERVED).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def vllm(engine):
    """The vllm backend connected to the session's engine (the default model's tokenizer)."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.options import BackendOptions

    return get_backend("vllm", None, options=BackendOptions(endpoint=engine.url))
