"""promptxray's explainer library: `explain(ExplainRequest(...)) -> Explanation`.

Importing this package is cheap (no torch); the model and backends load on first use.
"""

from __future__ import annotations

from typing import Any

from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.types import ExplainRequest, Explanation, Span, Target, Token

__all__ = [
    "ExplainRequest",
    "Explanation",
    "PromptXrayError",
    "Span",
    "Target",
    "Token",
    "explain",
    "list_methods",
]


def explain(request: ExplainRequest, **kwargs: Any) -> Explanation:
    """Run the requested method on the request's prompt (see `explain.explain`)."""
    from promptxray.explainers.explain import explain as run

    return run(request, **kwargs)


def list_methods() -> list[Any]:
    from promptxray.explainers.registry import list_methods as methods

    return methods()
