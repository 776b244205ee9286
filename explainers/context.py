"""What a method receives: the backend, the prompt's ids and user tokens, the units to score,
the target and its log-probabilities under the unmodified prompt, and the method's options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from promptxray.explainers.backends.base import Backend, ProgressFn
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.inputs import ModelInput

T = TypeVar("T")


@dataclass
class MethodContext:
    """Everything one method run needs; methods never re-tokenise or re-resolve the target."""

    backend: Backend
    input: ModelInput
    units: list[list[int]]
    target_ids: list[int]
    base_logprobs: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    progress: ProgressFn | None = None

    @property
    def base_score(self) -> float:
        """f(x): the target's summed log-probability under the unmodified prompt."""
        return float(self.base_logprobs.sum())

    @property
    def n_tokens(self) -> int:
        return len(self.input.tokens)

    def ids_without(self, token_indices: list[int]) -> list[int]:
        """The prompt ids with the given user tokens removed (leave-one-out variants)."""
        drop = {self.input.positions[i] for i in token_indices}
        return [t for p, t in enumerate(self.input.ids) if p not in drop]

    def option(self, name: str, default: T, kind: Callable[[Any], T], lo: float | None = None) -> T:
        """A method option converted to `kind`, with a clear error when it is invalid."""
        raw = self.options.get(name, default)
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise InvalidRequestError(
                f"option {name}={raw!r} is not a valid {kind.__name__}"
            ) from None
        if lo is not None and value < lo:  # type: ignore[operator]
            raise InvalidRequestError(f"option {name}={raw!r} must be at least {lo}")
        return value
