"""Group user tokens into attribution units: tokens, words or lines of the file.

A token belongs to the word (or line) holding its first non-space character; tokens of
whitespace alone form units of their own at word granularity.
"""

from __future__ import annotations

import bisect
import re

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.types import FIXED_GRANULARITIES, Token

WORD = re.compile(r"\w+(?:['’]\w+)*|\{\{.*?\}\}|[^\w\s]+")


def _anchor(source: str, token: Token) -> int:
    """First non-whitespace character of the token (its start when it is all whitespace)."""
    for i in range(token.start, token.end):
        if not source[i].isspace():
            return i
    return token.start


def _spans_of(source: str, granularity: str) -> list[tuple[int, int]]:
    if granularity == "word":
        return [m.span() for m in WORD.finditer(source)]
    spans, start = [], 0
    for line in source.splitlines(keepends=True):
        spans.append((start, start + len(line)))
        start += len(line)
    return spans


def group_units(source: str, tokens: list[Token], granularity: str) -> list[list[int]]:
    """Lists of token indices, one per unit, in order of first appearance."""
    if granularity not in FIXED_GRANULARITIES:
        raise InvalidRequestError(
            f"unknown granularity {granularity!r}; use one of {', '.join(FIXED_GRANULARITIES)}"
        )
    if granularity == "token":
        return [[t.index] for t in tokens]
    spans = _spans_of(source, granularity)
    starts = [s for s, _ in spans]
    units: dict[object, list[int]] = {}
    for token in tokens:
        at = _anchor(source, token)
        k = bisect.bisect_right(starts, at) - 1
        key: object = ("token", token.index)
        if k >= 0 and spans[k][0] <= at < spans[k][1]:
            key = spans[k]
        units.setdefault(key, []).append(token.index)
    return list(units.values())
