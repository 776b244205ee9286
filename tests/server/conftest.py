"""The in-process server shares the session's loaded backends with the other tests: after each
server test, turn off the score cache the server turned on, so later tests that count the
sequences a method scores see every one of them scored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_score_cache_left_behind() -> Iterator[None]:
    yield
    from promptxray.explainers.backends import _CACHE

    for backend in _CACHE.values():
        backend.score_cache = None
