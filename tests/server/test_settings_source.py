"""One source of truth: the VS Code client's package.json (which its code reads its defaults
and choices from) must agree with the server's settings and the method registry."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

import pytest

from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.backends.options import DEVICES, DTYPES, TIERS
from promptxray.explainers.nl import LANGUAGES
from promptxray.explainers.registry import AUTO, AUTO_SUMMARY, list_methods
from promptxray.explainers.types import GRANULARITIES
from promptxray.server.settings import TRIGGERS, Settings
from tests.conftest import REPO

PACKAGE = REPO / "client-vscode" / "package.json"
# server settings the client does not offer as settings, and why
SERVER_ONLY = {
    "target": "set per document by the Set target command, not a workspace-wide setting",
    "globs": "the client attaches by its own languages and the *.prompt.md pattern",
    "samples": "an object setting for clients such as Neovim; VS Code users use the "
    "FILE.samples.yaml sidecar (docs/templates.md)",
}
CLIENT_ONLY = {"python": "the interpreter the client starts the server with"}
CHOICES = {
    "backend": BACKENDS,
    "granularity": GRANULARITIES,
    "trigger": TRIGGERS,
    "language": LANGUAGES,
    "device": DEVICES,
    "dtype": DTYPES,
    "tier": TIERS,
}


@pytest.fixture(scope="module")
def properties() -> dict[str, dict[str, Any]]:
    config = json.loads(PACKAGE.read_text())["contributes"]["configuration"]
    return {k.removeprefix("promptxray."): v for k, v in config["properties"].items()}


def test_every_server_setting_is_a_client_setting_and_back(properties):
    server = {f.name for f in fields(Settings)} - set(SERVER_ONLY)
    assert set(properties) - set(CLIENT_ONLY) == server


def test_defaults_agree(properties):
    defaults = Settings()
    for name, prop in properties.items():
        if name in CLIENT_ONLY:
            continue
        want = getattr(defaults, name)
        got = prop["default"]
        if want is None:  # "not set": an empty string in VS Code's settings UI
            assert got in ("", None), name
        else:
            assert got == want and isinstance(got, bool) == isinstance(want, bool), name


def test_choices_agree(properties):
    for name, choices in CHOICES.items():
        assert properties[name]["enum"] == list(choices), name


def test_methods_and_their_descriptions_are_the_registrys(properties):
    method = properties["method"]
    described = dict(zip(method["enum"], method["enumDescriptions"], strict=True))
    assert described == {**{s.name: s.summary for s in list_methods()}, AUTO: AUTO_SUMMARY}
    assert method["default"] == Settings().method


def test_every_setting_is_documented(properties):
    docs = (PACKAGE.parents[1] / "docs" / "editor.md").read_text()
    missing = [
        name for name in properties if f"`{name}`" not in docs and f"promptxray.{name}" not in docs
    ]
    assert not missing, f"docs/editor.md does not describe {missing}"


def test_the_clients_status_stages_are_the_servers():
    from promptxray.server.progress import STATUS_STAGES

    source = (PACKAGE.parent / "src" / "common" / "status.ts").read_text()
    block = source.split("export const STAGES = [", 1)[1].split("]", 1)[0]
    assert re.findall(r"'([^']+)'", block) == list(STATUS_STAGES)
