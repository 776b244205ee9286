"""README.md points only at files the repository has: its pictures (made by
tests/e2e/test_readme_pictures.py into docs/images/) and its links into docs/."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
# ![alt](target "title") and <img src="target"> for pictures; every ](target) and href for links
TARGET = r"\]\(\s*(?:<([^>]+)>|([^)\s]+))[^)]*\)"
IMAGE = re.compile(r"!\[[^\]]*" + TARGET + r"|<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']")
LINK = re.compile(TARGET + r"|\bhref=[\"']([^\"']+)[\"']")


def _targets(pattern: re.Pattern[str]) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return ["".join(groups) for groups in pattern.findall(text)]


def _local(target: str) -> str:
    """The repository path of a relative link (no anchor, no query, no leading ./)."""
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    return path[2:] if path.startswith("./") else path


def test_every_picture_of_the_readme_exists():
    images = _targets(IMAGE)
    if not images:
        pytest.skip("README.md shows no pictures yet")
    for target in images:
        assert "://" not in target, f"README picture {target} is not in the repository"
        path = REPO / _local(target)
        assert path.is_file(), f"README.md shows {target}, which the repository does not have"
        assert path.stat().st_size > 0, target


def test_every_docs_link_of_the_readme_exists():
    links = [_local(t) for t in _targets(IMAGE) + _targets(LINK)]  # pictures are links too
    for path in (p for p in links if p.startswith("docs/")):
        assert (REPO / path).exists(), f"README.md links to {path}, which does not exist"
