"""Resolve what is being explained: the model's greedy continuation, or a text the user gives."""

from __future__ import annotations

from collections.abc import Sequence

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import ContextLengthError, InvalidRequestError
from promptxray.explainers.types import TargetToken


def check_context(backend: Backend, prompt_len: int, extra: int) -> None:
    """Raise ContextLengthError when prompt + target cannot fit the model's context (a server
    whose tokens are not known here checks that itself: its refusal is the same error)."""
    if not backend.capabilities.tokenizer:
        return
    if prompt_len + extra > backend.context_length:
        raise ContextLengthError(prompt_len, extra, backend.context_length, backend.model_id)


def resolve_target(
    backend: Backend,
    prompt_ids: list[int],
    target_text: str | None,
    max_new_tokens: int,
    target_ids: list[int] | None = None,
) -> tuple[list[int], bool]:
    """Target token ids and whether they were generated.

    A generated target stops at end of sequence and leaves that token out, unless the model
    answers with nothing else, in which case the end-of-sequence token is the target."""
    if target_ids:
        check_context(backend, len(prompt_ids), len(target_ids))
        return list(target_ids), False
    if target_text is not None:
        if not target_text:
            raise InvalidRequestError("the target text is empty")
        ids = backend.encode_target(target_text)
        check_context(backend, len(prompt_ids), len(ids))
        return ids, False
    if max_new_tokens < 1:
        raise InvalidRequestError("max_new_tokens must be at least 1")
    check_context(backend, len(prompt_ids), max_new_tokens)
    new = backend.generate(prompt_ids, max_new_tokens)
    if not new:
        raise InvalidRequestError("the model generated nothing to explain; give a target text")
    eos = backend.eos_ids()
    if len(new) > 1 and new[-1] in eos:
        new = new[:-1]
    return new, True


def resolve_foil(
    backend: Backend, prompt_ids: list[int], foil_text: str | None, target_ids: list[int]
) -> list[int] | None:
    """Token ids of a contrastive explanation's foil (tokenised like a given target), or None
    without one. A foil that is empty, or the same tokens as the target, is a request error."""
    if foil_text is None:
        return None
    if not foil_text:
        raise InvalidRequestError("the foil text is empty")
    ids = backend.encode_target(foil_text)
    if not ids:
        raise InvalidRequestError(f"the foil {foil_text!r} has no tokens")
    if ids == list(target_ids):
        raise InvalidRequestError(
            f"the foil {foil_text!r} is the same as the target {backend.decode(target_ids)!r}: "
            "a contrastive explanation needs a different alternative"
        )
    check_context(backend, len(prompt_ids), len(ids))
    return ids


def scored_tokens(
    backend: Backend, ids: Sequence[int], logprobs: Sequence[float]
) -> list[TargetToken]:
    """The tokens of a teacher-forced continuation (a target or a foil) with their
    log-probabilities, as an Explanation records them."""
    return [
        TargetToken(backend.piece(t), int(t), float(lp))
        for t, lp in zip(ids, logprobs, strict=True)
    ]
