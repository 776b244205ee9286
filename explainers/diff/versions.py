"""Running both versions of a prompt for a diff, and the one "same target" policy that the
CLI's `explain_versions` and the language server's diffWithSaved both follow: the new version
is scored against the old version's answer, and its own answer is reported beside it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from promptxray.explainers.diff.align import diff_explanations
from promptxray.explainers.diff.types import ExplanationDiff
from promptxray.explainers.types import Explanation, Target

if TYPE_CHECKING:
    from promptxray.explainers.backends.base import Backend
    from promptxray.explainers.types import ExplainRequest


def rescore_target(old: Explanation, new_own: Target) -> Target | None:
    """The "same target" policy: the answer the new version must be explained against so its
    part scores compare with the old version's (the old answer), or None when the new
    version's own answer is that answer already (its own explanation then serves as is).
    `new_own` is what the diff reports as the new version's own answer."""
    return None if new_own.text == old.target.text else old.target


def own_answer(request: ExplainRequest, backend: Backend) -> Target:
    """The model's own (greedy) answer to `request.text` and its probability: one generation
    and one scoring pass, no attribution."""
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import request_document
    from promptxray.explainers.targets import resolve_target, scored_tokens

    doc = request_document(request)
    model_input = build_input(doc, backend, request.chat_template)
    ids, generated = resolve_target(
        backend, model_input.ids, request.target, request.max_new_tokens, request.target_ids
    )
    row = backend.target_logprobs([model_input.ids], ids, reference=model_input.ids)[0]
    tokens = scored_tokens(backend, ids, row)
    return Target(backend.decode(ids), tokens, float(sum(row)), generated)


def explain_versions(
    old_request: ExplainRequest,
    new_request: ExplainRequest,
    backend: Backend,
    same_target: bool = True,
    threshold: float | None = None,
) -> tuple[ExplanationDiff, Explanation, Explanation]:
    """Explain two versions of a prompt on one backend and diff them.

    With `same_target` (the default) and no target in `new_request`, the new version's own
    answer is generated once and reported, and the new version is explained against the
    answer `rescore_target` picks (its own token ids when it is the old answer, so nothing is
    generated twice). The backend's score cache is on for both runs (inputs scored for the
    old version are not rerun for the new) and left as it was found."""
    from promptxray.explainers.explain import explain

    had_cache = backend.score_cache is not None
    backend.enable_score_cache()
    try:
        old = explain(old_request, backend=backend)
        fixed = new_request.target is None and not new_request.target_ids
        own: Target | None = None
        passes = 0
        if same_target and fixed:
            backend.counters.reset()
            own = own_answer(new_request, backend)
            passes = backend.counters.forward_passes
            target = rescore_target(old, own) or own
            new_request = replace(new_request, target_ids=[t.token_id for t in target.tokens])
        new = explain(new_request, backend=backend)
    finally:
        if not had_cache:
            backend.score_cache = None
    diff = diff_explanations(
        old, new, old_request.text, new_request.text, new_own=own, threshold=threshold
    )
    if own is not None:
        diff.forward_passes["new_own_answer"] = passes
    return diff, old, new
