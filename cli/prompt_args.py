"""The flags that say which prompt to read and what its variables hold: `FILE` or `FILE:LINE`
(a prompt in a code file) and `--sample NAME=VALUE`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.prompt.document import parse_document, read_prompt_file
from promptxray.explainers.prompt.samples import parse_assignments

_AT_LINE = re.compile(r"(.+):(\d+)")


def add_sample_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value for a template variable (over the file's own and its "
        "<file>.samples.yaml sidecar's; repeatable)",
    )


def split_location(arg: str) -> tuple[str, int | None]:
    """`file.py:12` -> ("file.py", 12) when no file is named that whole string."""
    m = _AT_LINE.fullmatch(arg)
    if m is None or arg == "-" or Path(arg).exists():
        return arg, None
    return m.group(1), int(m.group(2))


def read_prompt(arg: str, args: argparse.Namespace) -> tuple[str, str | None, dict[str, Any]]:
    """(source, path, request fields) for a FILE or FILE:LINE argument; the prompt is parsed
    here so a template error stops the command before a model is loaded."""
    name, line = split_location(arg)
    source = read_prompt_file(name)
    path = None if name == "-" else name
    try:
        samples = parse_assignments(getattr(args, "sample", []) or [])
    except ValueError as e:
        raise InvalidRequestError(str(e)) from None
    parse_document(source, path, samples=samples, line=line)
    return source, path, {"samples": samples, "prompt_line": line}
