"""What a method receives: the backend, the prompt's ids and user tokens, the units to score,
the target and its log-probabilities under the unmodified prompt, and the method's options.

With a foil (a contrastive explanation, "why the target rather than the foil?") the quantity
every method explains, f, is log P(target) − log P(foil), each teacher-forced after the prompt
variant: `base_score`, `score_variants` and `score_masks` (hence the faithfulness figures)
compute that difference, and the gradient objective (gradients.py) subtracts the foil's term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    foil_ids: list[int] | None = None  # contrastive: explain log P(target) − log P(foil)
    foil_logprobs: np.ndarray | None = None  # the foil's log-probs under the unmodified prompt
    _memo: dict[bytes, float] = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self) -> None:
        self._memo[np.ones(len(self.units), dtype=bool).tobytes()] = self.base_score

    @property
    def base_score(self) -> float:
        """f(x): the target's summed log-probability under the unmodified prompt, minus the
        foil's when there is one."""
        if self.foil_logprobs is None:
            return self.target_logprob
        return self.target_logprob - float(self.foil_logprobs.sum())

    @property
    def target_logprob(self) -> float:
        """The target's own summed log-probability under the unmodified prompt."""
        return float(self.base_logprobs.sum())

    def score_variants(self, variants: Sequence[Sequence[int]]) -> np.ndarray:
        """f of each prompt variant (ids), in batched forwards that reuse the prompt's prefix:
        the target's summed log-probability, minus the foil's when there is one (target and
        foil each teacher-forced after the variant; they may differ in length)."""
        if not variants:
            return np.zeros(0)
        ref = self.input.ids
        if not self.foil_ids:
            return self.backend.target_logprobs(
                variants, self.target_ids, self.progress, reference=ref
            ).sum(axis=1)
        report = self.progress
        first = (lambda d, t: report(d, 2 * t)) if report else None
        second = (lambda d, t: report(t + d, 2 * t)) if report else None
        target = self.backend.target_logprobs(variants, self.target_ids, first, reference=ref)
        foil = self.backend.target_logprobs(variants, self.foil_ids, second, reference=ref)
        return np.asarray(target.sum(axis=1) - foil.sum(axis=1), dtype=np.float64)

    @property
    def lead_spaces(self) -> bool:
        """The tokens are characters (no tokenizer known): spaces go with the next word."""
        return not self.backend.capabilities.tokenizer

    @property
    def n_tokens(self) -> int:
        return len(self.input.tokens)

    def ids_without(self, token_indices: list[int]) -> list[int]:
        """The prompt ids with the given user tokens removed (leave-one-out variants)."""
        drop = {self.input.positions[i] for i in token_indices}
        return [t for p, t in enumerate(self.input.ids) if p not in drop]

    def ids_keeping(self, keep: Sequence[bool]) -> list[int]:
        """The prompt ids with only the kept units' tokens (template tokens always stay).

        `keep` has one flag per unit; a variant that would be empty keeps the pad token so
        the model still has a position to predict from."""
        drop = {
            self.input.positions[i]
            for unit, kept in zip(self.units, keep, strict=True)
            if not kept
            for i in unit
        }
        ids = [t for p, t in enumerate(self.input.ids) if p not in drop]
        return ids or [self.backend.pad_id]

    def score_masks(self, masks: np.ndarray | Sequence[Sequence[bool]]) -> np.ndarray:
        """f(mask): `score_variants` of the prompt with only the kept units, per row of a
        [M, n_units] keep-mask. Rows already scored in this context are not rerun; the rest
        run in batched forwards (shapley, surrogate and the faithfulness metrics share this)."""
        rows = np.asarray(masks, dtype=bool).reshape(-1, len(self.units))
        keys = [row.tobytes() for row in rows]
        todo: dict[bytes, np.ndarray] = {}
        for key, row in zip(keys, rows, strict=True):
            if key not in self._memo and key not in todo:
                todo[key] = row
        if todo:
            variants = [self.ids_keeping(list(row)) for row in todo.values()]
            scores = self.score_variants(variants)
            for key, score in zip(todo, scores, strict=True):
                self._memo[key] = float(score)
        return np.array([self._memo[key] for key in keys], dtype=np.float64)

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
