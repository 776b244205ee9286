"""Shared fixtures: each real model is loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
# The tiny real model ships with the tests (MIT; tests/models/stories260K/PROVENANCE.md).
STORIES = Path(os.environ.get("PROMPTXRAY_STORIES", REPO / "tests" / "models" / "stories260K"))
GOOD_FILES = sorted(
    p for p in DATA.iterdir() if p.is_file() and not p.name.startswith(("broken", "missing"))
)


@pytest.fixture(autouse=True)
def _no_score_cache_left_behind() -> Iterator[None]:
    """The in-process language server (and `diff`) turn on the score cache of the session's
    shared backends: turn it off after every test, so tests that count the sequences a method
    scores see every one of them scored."""
    yield
    from promptxray.explainers.backends import _CACHE

    for backend in _CACHE.values():
        backend.score_cache = None


@pytest.fixture(scope="session")
def stories():
    """The tiny real Llama model shipped in tests/models (fast tests)."""
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")
    from promptxray.explainers.backends import get_backend

    return get_backend("torch", str(STORIES))


@pytest.fixture(scope="session")
def smol():
    """The default model, SmolLM2-135M-Instruct (converted into the cache on first use)."""
    from promptxray.explainers.backends import get_backend

    return get_backend("torch", None)


@pytest.fixture(params=["stories", "smol"])
def any_backend(request):
    """Both real models: nothing may be tied to one of them."""
    return request.getfixturevalue(request.param)
