"""Sample values for template variables from outside the template: a sidecar file next to it
(`<file>.samples.yaml`) and the caller's own (the editor setting `promptxray.samples`, the CLI's
`--sample NAME=VALUE`). The file's own samples come first, the sidecar's over them, the
caller's over both."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from promptxray.explainers.errors import FrontMatterError

SUFFIX = ".samples.yaml"


def sidecar_path(path: str | None) -> Path | None:
    """The sidecar of the prompt file at `path`, if that file has one."""
    if not path or path == "-":
        return None
    side = Path(path + SUFFIX)
    return side if side.is_file() else None


def sidecar_samples(path: str | None) -> dict[str, Any]:
    """The sidecar's mapping (empty when there is none); a broken sidecar is a clear error."""
    side = sidecar_path(path)
    if side is None:
        return {}
    try:
        data = yaml.safe_load(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FrontMatterError(f"{side}: cannot read the sample values: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError(f"{side}: sample values must be a YAML mapping of name: value")
    return {str(k): v for k, v in data.items()}


def layered(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers over earlier ones."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer or {})
    return out


def for_prompt(samples: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A code file's samples for one of its prompts: the flat values, with the entries of a
    mapping under the prompt's own name (`SYSTEM_PROMPT: {city: Paris}`) over them."""
    own = samples.get(name)
    flat = {k: v for k, v in samples.items() if not isinstance(v, dict)}
    return layered(flat, own if isinstance(own, dict) else None)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (the CLI's `--sample`) as a mapping; a bad one is a ValueError."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--sample takes NAME=VALUE, not {item!r}")
        out[name.strip()] = value
    return out
