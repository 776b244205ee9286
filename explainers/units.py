"""Group user tokens into attribution units: tokens, words or lines of the file, or the
structure-level parts of the prompt (sentences, sections, messages, few-shot examples,
variables; see structure.py).

A token belongs to the word, line or part holding its first non-space character; tokens of
whitespace alone form units of their own at word granularity (and wherever no part holds them).
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.prompt import structure
from promptxray.explainers.types import FIXED_GRANULARITIES, Token

if TYPE_CHECKING:
    from promptxray.explainers.prompt.document import PromptDocument

WORD = re.compile(r"\w+(?:['’]\w+)*|\{\{.*?\}\}|[^\w\s]+")


def _anchor(source: str, token: Token, lead_spaces: bool = False) -> int:
    """First non-whitespace character of the token (its start when it is all whitespace;
    with `lead_spaces`, the next non-space character of its line: characters as tokens,
    where a space goes with the word after it as a model tokenizer's leading space does)."""
    for i in range(token.start, token.end):
        if not source[i].isspace():
            return i
    if lead_spaces and source[token.start] in " \t":
        i = token.end
        while i < len(source) and source[i] in " \t":
            i += 1
        if i < len(source) and not source[i].isspace():
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


def group_units(
    source: str,
    tokens: list[Token],
    granularity: str,
    *,
    doc: PromptDocument | None = None,
    lead_spaces: bool = False,
) -> list[list[int]]:
    """Lists of token indices, one per unit, in order of first appearance.

    `doc`: the parsed document, required for the structure kinds (`structure.STRUCTURE_KINDS`:
    messages and variables exist only in the parsed document); token, word and line units
    need only `source`. A structure kind the document lacks raises InvalidRequestError.
    `lead_spaces`: the tokens are characters (a server whose tokenizer is not known), and
    spaces go with the word after them."""
    if granularity not in FIXED_GRANULARITIES:
        raise InvalidRequestError(
            f"unknown granularity {granularity!r}; use one of {', '.join(FIXED_GRANULARITIES)}"
        )
    if granularity == "token":
        return [[t.index] for t in tokens]
    keyed: list[tuple[int, int, object]]
    if granularity in structure.STRUCTURE_KINDS:
        if doc is None:
            raise ValueError(f"granularity {granularity!r} needs the parsed document (doc=)")
        found = structure.parts(doc, granularity)
        keyed = sorted((s, e, i) for i, part in enumerate(found) for s, e in part.ranges)
    else:
        keyed = [(s, e, (s, e)) for s, e in _spans_of(source, granularity)]
    starts = [s for s, _, _ in keyed]
    units: dict[object, list[int]] = {}
    for token in tokens:
        at = _anchor(source, token, lead_spaces)
        k = bisect.bisect_right(starts, at) - 1
        key: object = ("token", token.index)
        if k >= 0 and keyed[k][0] <= at < keyed[k][1]:
            key = keyed[k][2]
        units.setdefault(key, []).append(token.index)
    return list(units.values())
