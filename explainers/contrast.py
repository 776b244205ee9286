"""Foils the front ends offer for a contrastive explanation ("why not …?"): the model's own
most likely alternatives to the first token of the answer it is explaining.

The explanation itself is `explain()` with `ExplainRequest.foil` (explainers/context.py says
what every method then scores); this only picks foils worth asking about.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import request_document
from promptxray.explainers.types import ExplainRequest

FOILS = 3  # alternatives offered by default


def foil_candidates(
    backend: Backend, prompt_ids: Sequence[int], target_ids: Sequence[int], k: int = FOILS
) -> list[str]:
    """Up to `k` texts the model found most likely in place of the answer's first token (its
    top next tokens after the prompt, best first), each one a valid foil: special and
    end-of-sequence tokens, tokens that read as nothing, and texts that tokenise to the
    target itself are left out. One forward of the prompt."""
    if not prompt_ids or k <= 0:
        return []
    banned = set(backend.eos_ids()) | {backend.pad_id}
    banned |= {int(t) for t in getattr(backend.tokenizer, "all_special_ids", [])}
    if target_ids:
        banned.add(int(target_ids[0]))
    ranked = backend.top_tokens(list(prompt_ids), [len(prompt_ids) - 1], k + len(banned) + 8)[0]
    out: list[str] = []
    for token in ranked:
        if token in banned:
            continue
        text = backend.decode([token])
        if not text.strip() or text in out:
            continue
        ids = backend.encode_target(text)
        if not ids or ids == list(target_ids):
            continue
        out.append(text)
        if len(out) >= k:
            break
    return out


def request_foil_candidates(
    backend: Backend, request: ExplainRequest, target_ids: Sequence[int], k: int = FOILS
) -> list[str]:
    """`foil_candidates` for the prompt of a request (tokenised as `explain` does)."""
    doc = request_document(request)
    model_input = build_input(doc, backend, request.chat_template)
    return foil_candidates(backend, model_input.ids, target_ids, k)
