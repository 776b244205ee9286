"""What a method does when its smallest piece of work does not fit in memory: line-level
occlusion instead (forward-only, in batches the backend sizes to the memory it has), with the
reason in `MethodResult.degraded` (shown first in every summary).

Each line's score is spread evenly over its tokens, so line units get exactly the line's
occlusion score and finer units a share of it. Option `memory_fallback=false` makes the
method raise `MemoryLimitError` instead (for callers with their own fallback).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from promptxray.explainers.context import MethodContext
from promptxray.explainers.errors import MemoryLimitError, size
from promptxray.explainers.registry import (
    DEFAULT_LEAVE_ONE_OUT,
    MethodFn,
    MethodResult,
    get_method,
)
from promptxray.explainers.units import group_units

DEGRADED_TO = DEFAULT_LEAVE_ONE_OUT


def source_of(ctx: MethodContext) -> str:
    """The user's text as far as its tokens cover it (each token's text at its offsets;
    characters no token covers read as spaces), enough to find the lines."""
    tokens = ctx.input.tokens
    canvas = [" "] * max((t.end for t in tokens), default=0)
    for t in tokens:
        canvas[t.start : t.end] = list(t.text)
    return "".join(canvas)


def line_occlusion(ctx: MethodContext, error: MemoryLimitError, method: str) -> MethodResult:
    """Leave-one-out over the prompt's lines, spread over their tokens, with the reason."""
    lines = group_units(source_of(ctx), ctx.input.tokens, "line", lead_spaces=ctx.lead_spaces)
    fallback = get_method(DEGRADED_TO)
    line_scores = fallback.fn(replace(ctx, units=lines)).scores_per_unit(lines)
    token_scores = np.zeros(ctx.n_tokens)
    for unit, score in zip(lines, line_scores, strict=True):
        token_scores[unit] = score / len(unit)
    return MethodResult(
        token_scores=token_scores,
        degraded=f"{method} did not fit in memory: {error.what} needs about "
        f"{size(error.needed)} at {error.tokens} tokens and {size(error.available)} are "
        f"available; showing line-level {DEGRADED_TO} instead",
        details={
            "degraded_to": DEGRADED_TO,
            "degraded_granularity": "line",
            "memory_needed_bytes": error.needed,
            "memory_available_bytes": error.available,
        },
    )


def degrades_to_lines(name: str) -> Any:
    """Decorator: run the method; on MemoryLimitError, line-level occlusion (see above)."""

    def decorate(fn: MethodFn) -> MethodFn:
        @functools.wraps(fn)
        def run(ctx: MethodContext) -> MethodResult:
            try:
                return fn(ctx)
            except MemoryLimitError as error:
                if not _flag(ctx.options.get("memory_fallback", True)):
                    raise
                return line_occlusion(ctx, error, name)

        return run

    return decorate


def _flag(raw: Any) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() not in ("0", "false", "no", "off")
    return bool(raw)
