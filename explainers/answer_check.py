"""Would fp32 have answered the same? A quantized model may give another greedy answer than the
model it came from, so an explanation on one says how sure that answer is, beside the scores.

Without running anything more: every token of the explained answer won against the runner-up by
a log-probability margin (at least log p - log(1 - p) for its probability p); the export's
verification measured how far the quantized logits stray from fp32's (`max_abs_logit_diff`, d).
A margin above 2d means fp32 picks the same token there (if the stray stays within d); where any
margin is not, the answer *may* differ, and the explanation says so. On request (option
`reference_answer`), fp32 torch is run once on the same prompt and its answer shown if it differs.
"""

from __future__ import annotations

import math

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.details import AnswerCheck, ReferenceAnswer
from promptxray.explainers.types import ExplainRequest, Explanation


def margin_bound(logprob: float) -> float:
    """A lower bound on the winner's log-probability margin over the runner-up: the rest of
    the probability, 1 - p, at most all went to the runner-up (0 when p <= 1/2)."""
    p = math.exp(logprob)
    if p <= 0.5:
        return 0.0
    return logprob - math.log1p(-p) if p < 1.0 else math.inf


def visible(text: str) -> str:
    """A whitespace-only token shown as what it is (a space, a newline), not as nothing."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def answer_check(expl: Explanation, backend: Backend) -> AnswerCheck | None:
    """The check's facts for a generated answer explained on a quantized ONNX export (None for
    other backends, fp32 exports, exports without the figures, and given targets)."""
    manifest = getattr(backend, "manifest", None)
    if not isinstance(manifest, dict) or manifest.get("quantization", "none") == "none":
        return None
    if not expl.target.generated or not expl.target.tokens:
        return None
    agreement = manifest.get("answer_agreement") or {}
    stray = (manifest.get("verification") or {}).get("max_abs_logit_diff")
    if stray is None or not agreement:
        return None
    closest = min(expl.target.tokens, key=lambda t: t.logprob)
    margin = margin_bound(closest.logprob)
    return AnswerCheck(
        quantization=manifest["quantization"],
        prompts=int(agreement.get("prompts", 0)),
        same_answer=round(float(agreement.get("same_answer", 0.0)) * agreement["prompts"]),
        max_logit_stray=float(stray),
        closest_token=closest.text if closest.text.strip() else visible(closest.text),
        closest_prob=math.exp(closest.logprob),
        margin_bound=margin,
        may_differ=margin <= 2 * float(stray),
    )


def answer_check_into(expl: Explanation, request: ExplainRequest, backend: Backend) -> None:
    """Put the check in `expl.answer_check`; with option `reference_answer`, also run fp32
    torch once and put its answer in `answer_check.reference` when it differs."""
    check = answer_check(expl, backend)
    if check is None:
        return
    expl.answer_check = check
    if not request.options.get("reference_answer"):
        return
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import request_document

    if not isinstance(backend, OnnxBackend):
        return
    doc = request_document(request)
    ids = build_input(doc, backend, request.chat_template).ids
    answer = [t.token_id for t in expl.target.tokens]
    found = backend.reference_answer(ids, answer, request.max_new_tokens)
    check.checked = True
    if found is not None:
        check.reference = ReferenceAnswer(
            text=found["text"],
            token_ids=list(found["token_ids"]),
            backend=found.get("backend", "torch"),
            precision=found.get("precision", "fp32"),
            export_answer_agreement=found.get("export_answer_agreement"),
        )
