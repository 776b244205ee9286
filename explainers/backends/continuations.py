"""Continuations of one prompt, as the "why not …?" alternatives need them: the logits that
predict each token of a given continuation, the greedy completion of several branches at once,
and the exact teacher-forced log-probabilities of several continuations.

These are the plain versions, built on every backend's own primitives (`logits_at`,
`generate`, `target_logprobs`), so any backend that offers those offers these; the torch
backend runs all three after the prompt's cached keys and values, the branches in one batch
(torch_continuations.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# stop(ids) -> True once a branch's tokens so far (its prefix and what was generated) are done
StopFn = Callable[[list[int]], bool]


class Continuations:
    """The continuation methods of `Backend` (a mixin: it needs `logits_at`, `generate` and
    `target_logprobs`)."""

    logits_at: Any
    generate: Any
    target_logprobs: Any

    def continuation_logits(self, prompt: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
        """Logits [len(continuation), V]: row j predicts continuation[j] after the prompt and
        continuation[:j] (one forward; needs `capabilities.logits`)."""
        ids = list(prompt) + list(continuation[:-1])
        start = len(prompt) - 1
        return np.asarray(self.logits_at(ids, list(range(start, start + len(continuation)))))

    def complete(
        self,
        prompt: Sequence[int],
        branches: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        stop: StopFn | None = None,
    ) -> list[list[int]]:
        """The greedy continuation of each branch after the prompt (new tokens only): at most
        `max_new_tokens[i]` tokens for branch i, ending after an end-of-sequence token or as
        soon as `stop(branch + new)` holds. Here one greedy generation per branch."""
        out: list[list[int]] = []
        for branch, limit in zip(branches, max_new_tokens, strict=True):
            new = (
                [int(t) for t in self.generate(list(prompt) + list(branch), limit)] if limit else []
            )
            if stop is not None:
                for i in range(len(new)):
                    if stop(list(branch) + new[: i + 1]):
                        new = new[: i + 1]
                        break
            out.append(new)
        return out

    def continuation_logprobs(
        self, prompt: Sequence[int], continuations: Sequence[Sequence[int]]
    ) -> list[np.ndarray]:
        """Teacher-forced log p(c_t | prompt, c_<t) of each continuation (each non-empty):
        here one scoring of each, as `explain` scores a target or a foil."""
        ref = list(prompt)
        return [
            np.asarray(self.target_logprobs([ref], list(c), reference=ref)[0])
            for c in continuations
        ]
