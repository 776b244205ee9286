"""The one entry point every front end calls: `explain(request) -> Explanation`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from promptxray.explainers.answer_check import answer_check_into
from promptxray.explainers.auto import choose_method
from promptxray.explainers.backends import get_backend
from promptxray.explainers.backends.base import Backend
from promptxray.explainers.backends.capabilities import Scoring
from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import HierarchyInfo, ScoreKind
from promptxray.explainers.errors import EmptyPromptError, InvalidRequestError
from promptxray.explainers.hierarchy import AUTO_WORD_LIMIT, refine
from promptxray.explainers.inputs import ModelInput, build_input
from promptxray.explainers.interactions import find_pairs, wants_pairs
from promptxray.explainers.metrics import Faithfulness, faithfulness
from promptxray.explainers.prompt.document import PromptDocument, request_document
from promptxray.explainers.registry import (
    AUTO,
    MethodResult,
    MethodSpec,
    check_contrastive,
    check_supported,
    get_method,
)
from promptxray.explainers.remote_figures import remote_figures
from promptxray.explainers.targets import (
    check_context,
    resolve_foil,
    resolve_target,
    scored_tokens,
)
from promptxray.explainers.types import (
    GRANULARITIES,
    ExplainRequest,
    Explanation,
    Foil,
    Span,
    Target,
)
from promptxray.explainers.units import group_units

# progress(stage, done, total): stage is "load", "target" or "attribute".
# parts tested in pairs for redundancy and conflict (few and whole; interactions.py)
PAIR_GRANULARITIES = ("line", "sentence", "section", "message", "example", "variable")
# what a contrastive explanation's faithfulness curves hold (the curves' `units`)
CONTRAST_UNITS = "log P(target) − log P(foil) (exp: the odds of target over foil)"
StageProgress = Callable[[str, int, int], None]


@dataclass
class Prepared:
    """A request made ready for methods: its context, the file's text, and whether the target
    was generated (rather than given)."""

    ctx: MethodContext
    source: str
    generated: bool
    started: float
    body_start: int = 0
    doc: PromptDocument | None = None  # the parsed file (structure-level parts come from it)


def prepare(
    request: ExplainRequest,
    backend: Backend | None = None,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
) -> tuple[Backend, Prepared]:
    """Parse, tokenise and resolve the target once; every method then runs on the context.

    `model_input`: the request's text already tokenised by `build_input` with this backend
    (the chat passes the ids it generated from, so they are not rebuilt)."""
    if request.granularity not in GRANULARITIES:
        raise InvalidRequestError(
            f"unknown granularity {request.granularity!r}; use one of {', '.join(GRANULARITIES)}"
        )
    doc = request_document(request)
    if backend is None:
        if progress:
            progress("load", 0, 1)
        backend = get_backend(request.backend, request.model, options=request.backend_options)
        if progress:
            progress("load", 1, 1)
    check_backend_fits(request, backend)
    started = time.perf_counter()
    backend.counters.reset()

    if model_input is None:
        model_input = build_input(doc, backend, request.chat_template)
    if not model_input.tokens:
        raise EmptyPromptError("the prompt has no tokens to explain")
    check_context(backend, len(model_input.ids), 1)
    if progress:
        progress("target", 0, 1)
    target_ids, generated = resolve_target(
        backend, model_input.ids, request.target, request.max_new_tokens, request.target_ids
    )
    foil_ids = resolve_foil(backend, model_input.ids, request.foil, target_ids)
    base, foil_base = reference_logprobs(backend, model_input.ids, target_ids, foil_ids)
    if progress:
        progress("target", 1, 1)

    ctx = MethodContext(
        backend=backend,
        input=model_input,
        units=group_units(
            doc.source,
            model_input.tokens,
            "line" if request.granularity == "auto" else request.granularity,
            doc=doc,
            lead_spaces=not backend.capabilities.tokenizer,
        ),
        target_ids=target_ids,
        base_logprobs=base,
        options=dict(request.options),
        progress=(lambda d, t: progress("attribute", d, t)) if progress else None,
        foil_ids=foil_ids,
        foil_logprobs=foil_base,
    )
    return backend, Prepared(ctx, doc.source, generated, started, doc.body_start, doc)


def check_backend_fits(request: ExplainRequest, backend: Backend) -> None:
    """InvalidRequestError for what this backend's capabilities cannot give: model tokens
    without its tokenizer, a foil without exact scores, words from text-only sampling."""
    caps = backend.capabilities
    if request.granularity == "token" and not caps.tokenizer:
        raise InvalidRequestError(
            f"granularity token needs the tokenizer of {backend.model_id}, which is not known "
            "here; use word, line or a structure part (or give --model, the served model's "
            "folder, where the server returns prompt log-probabilities)"
        )
    if request.foil is not None and caps.scoring is not Scoring.PROMPT:
        raise InvalidRequestError(
            f"a foil (why the answer rather than another) needs exact log-probabilities of a "
            f"given text; {backend.model_id} offers {caps.scoring.value}"
        )
    if caps.scoring is Scoring.TEXT and request.granularity in ("word", "token"):
        raise InvalidRequestError(
            f"{backend.model_id} returns text only: each part costs a few sampled answers, "
            "so explain coarse parts (line, sentence, section, example, message, variable)"
        )


def reference_logprobs(
    backend: Backend, ids: list[int], target_ids: list[int], foil_ids: list[int] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """f(x)'s parts: the target's (and the foil's) log-probabilities under the unmodified
    prompt, in the backend's current precision. Scored as a variant of itself: the prompt's
    key/value cache (torch) is the prefix every occlusion variant then reuses."""
    base = backend.target_logprobs([ids], target_ids, reference=ids)[0]
    if foil_ids is None:
        return base, None
    # contrastive: every method explains log P(target) − log P(foil)
    return base, backend.target_logprobs([ids], foil_ids, reference=ids)[0]


def explain(
    request: ExplainRequest,
    backend: Backend | None = None,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
) -> Explanation:
    """Explain what in `request.text` drives the model's answer, with the requested method
    (or `method="auto"`: the most faithful of the cheap methods on this prompt); with
    `request.self_explain`, also ask the model why and check its answer against the scores."""
    expl, backend = _explain(request, backend, progress, model_input)
    finish(expl, request, backend, progress)
    return expl


def finish(
    expl: Explanation,
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
) -> None:
    """What every final explanation gets after its scores: on a quantized model, whether fp32
    would answer the same (answer_check.py); with `request.self_explain`, the model's account."""
    answer_check_into(expl, request, backend)
    self_explain_into(expl, request, backend, progress)


def self_explain_into(
    expl: Explanation,
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
) -> None:
    """With `request.self_explain`: ask the model why it answered so, and check its answer
    against the explanation's scores (only for explanations about the answer)."""
    if not request.self_explain or expl.faithfulness is None:
        return
    from promptxray.explainers.nl import self_explain

    if progress:
        progress("self-explain", 0, 1)
    messages = request_document(request).messages
    contents = [m.content for m in messages]
    expl.self_explanation = self_explain(backend, expl, contents, lang=request.lang)
    if progress:
        progress("self-explain", 1, 1)


def _explain(
    request: ExplainRequest,
    backend: Backend | None,
    progress: StageProgress | None,
    model_input: ModelInput | None,
) -> tuple[Explanation, Backend]:
    if request.method == AUTO:
        backend, prep = prepare(request, backend, progress, model_input)
        if request.granularity == "auto":
            prep.ctx = replace(prep.ctx, units=_auto_level_units(prep))
        auto = choose_method(prep.ctx, prep.started)
        expl = assemble(request, prep, backend, auto.spec, auto.result, auto.faithfulness)
        expl.auto = auto.report()
        return expl, backend
    spec = get_method(request.method)
    if request.foil is not None:
        check_contrastive(spec)
    if backend is not None:
        check_supported(spec, backend)
    backend, prep = prepare(request, backend, progress, model_input)
    check_supported(spec, backend)
    auto = request.granularity == "auto"
    result = _auto_granularity(spec, prep) if auto else spec.fn(prep.ctx)
    faith = None
    # faithfulness curves combine many variants' figures: only exact ones (a bound or a
    # sampled estimate per variant would make them meaningless, and cost many requests)
    exact = backend.capabilities.scoring is Scoring.PROMPT
    if request.faithfulness and spec.attributes_target and exact:
        method_s = time.perf_counter() - prep.started
        passes = backend.counters.forward_passes
        faith = faithfulness(prep.ctx.score_masks, result.scores_per_unit(prep.ctx.units))
        result.details["timing"] = {
            "method_s": method_s,
            "faithfulness_s": time.perf_counter() - prep.started - method_s,
            "faithfulness_forward_passes": backend.counters.forward_passes - passes,
        }
    expl = assemble(request, prep, backend, spec, result, faith)
    if spec.leave_one_out and exact and request.granularity in PAIR_GRANULARITIES:
        pairs_into(expl, request, prep, spec)
    elif spec.leave_one_out and exact and result.hierarchy is not None:
        line_pairs_into(expl, request, prep, spec, result.hierarchy)
    return expl, backend


def pairs_into(
    expl: Explanation, request: ExplainRequest, prep: Prepared, spec: MethodSpec
) -> None:
    """Test the explanation's parts in pairs for redundancy and conflict (interactions.py),
    unless the request's options turn it off."""
    if not wants_pairs(request.options) or len(expl.spans) < 2:
        return
    scores = [s.score for s in expl.spans]
    found = find_pairs(prep.ctx, spec, prep.ctx.units, scores)
    expl.pairs = found.part_pairs(scores, [(s.start, s.end) for s in expl.spans])
    expl.pair_test = found.test
    _count(expl, prep)


def line_pairs_into(
    expl: Explanation,
    request: ExplainRequest,
    prep: Prepared,
    spec: MethodSpec,
    hierarchy: HierarchyInfo,
) -> None:
    """Granularity "auto": the line pass's lines tested in pairs (interactions.py), added to
    the pairs `expl` already holds (anytime: the blocks'), the largest |interaction| first;
    nothing when the request turns the test off."""
    if not wants_pairs(request.options) or len(hierarchy.line_scores) < 2:
        return
    found = find_pairs(prep.ctx, spec, hierarchy.line_token_indices, hierarchy.line_scores)
    tokens = prep.ctx.input.tokens
    places = [  # each line's place in the file, as a line span shows it
        _trim(prep.source, tokens[unit[0]].start, tokens[unit[-1]].end)
        for unit in hierarchy.line_token_indices
    ]
    found_pairs = found.part_pairs(hierarchy.line_scores, places)
    expl.pairs = sorted(expl.pairs + found_pairs, key=lambda p: -abs(p.interaction))
    expl.pair_test = found.test
    _count(expl, prep)


def _count(expl: Explanation, prep: Prepared) -> None:
    """The explanation's cost figures after more work on its context (the pair test)."""
    expl.forward_passes = prep.ctx.backend.counters.forward_passes
    expl.sequences_scored = prep.ctx.backend.counters.sequences
    expl.wall_time_s = time.perf_counter() - prep.started


def _auto_granularity(spec: MethodSpec, prep: Prepared) -> MethodResult:
    """granularity="auto": a leave-one-out method refines lines → words → tokens where they
    matter (hierarchy.py); other methods use words up to AUTO_WORD_LIMIT prompt tokens, else
    lines."""
    ctx = prep.ctx
    if spec.leave_one_out:
        found = refine(ctx, prep.source, spec)
        prep.ctx = replace(ctx, units=found.units)
        return MethodResult(
            unit_scores=found.scores,
            hierarchy=found.info(),
            ablated_logprob=[float(ctx.base_score - v) for v in found.scores],
        )
    prep.ctx = replace(ctx, units=_auto_level_units(prep))
    return spec.fn(prep.ctx)


def _auto_level_units(prep: Prepared) -> list[list[int]]:
    """Without refinement: words for prompts up to AUTO_WORD_LIMIT tokens, else lines."""
    tokens = prep.ctx.input.tokens
    level = "word" if len(tokens) <= AUTO_WORD_LIMIT else "line"
    return group_units(prep.source, tokens, level, lead_spaces=prep.ctx.lead_spaces)


def assemble(
    request: ExplainRequest,
    prep: Prepared,
    backend: Backend,
    spec: MethodSpec,
    result: MethodResult,
    faith: Faithfulness | None,
) -> Explanation:
    """Put token scores, unit spans, target figures and faithfulness into one Explanation."""
    ctx, source = prep.ctx, prep.source
    # copies: a ModelInput may be explained again (the chat reuses one), scores must not mix
    tokens = [replace(t) for t in ctx.input.tokens]
    token_scores = result.token_scores
    unit_scores = result.scores_per_unit(ctx.units)
    if token_scores is None and request.granularity == "token":
        token_scores = np.array(unit_scores)
    for token in tokens:
        token.score = None if token_scores is None else float(token_scores[token.index])
    spans = [
        Span(source[start:end], start, end, float(score), list(unit))
        for unit, score, (start, end) in zip(
            ctx.units, unit_scores, unit_places(ctx, source, request.granularity), strict=True
        )
    ]
    target = Target(
        text=backend.decode(ctx.target_ids),
        tokens=scored_tokens(backend, ctx.target_ids, ctx.base_logprobs),
        logprob=ctx.target_logprob,
        generated=prep.generated,
    )
    foil = None
    ablated = result.ablated_logprob
    curves = None if faith is None else faith.curves()
    if ctx.foil_ids is not None and ctx.foil_logprobs is not None:
        foil = Foil(
            text=backend.decode(ctx.foil_ids),
            tokens=scored_tokens(backend, ctx.foil_ids, ctx.foil_logprobs),
            logprob=float(ctx.foil_logprobs.sum()),
        )
        ablated = None  # removal scores are of log P(target) − log P(foil), not of log P
        if curves is not None:
            curves.units = CONTRAST_UNITS + ";" + curves.units.partition(";")[2]
    metrics = dict(result.metrics)
    details: dict[str, Any] = {"chat_template": ctx.input.chat, **result.details}
    if faith is not None:
        metrics.update(faith.metrics())
    remote = remote_figures(ctx, backend)
    score_kind = spec.score_kind
    if backend.capabilities.scoring is Scoring.TEXT:
        score_kind = ScoreKind.AGREEMENT
        ablated = None  # not log-probabilities
    return Explanation(
        method=spec.name,
        backend=backend.name,
        model=backend.model_id,
        granularity=request.granularity,
        target=target,
        tokens=tokens,
        spans=spans,
        input_tokens=len(ctx.input.ids),
        context_length=backend.context_length,
        wall_time_s=time.perf_counter() - prep.started,
        forward_passes=backend.counters.forward_passes,
        sequences_scored=backend.counters.sequences,
        metrics=metrics,
        details=details,
        path=request.path,
        score_kind=score_kind,
        body_start=prep.body_start,
        ablated_logprob=ablated,
        hierarchy=result.hierarchy,
        faithfulness=curves,
        counterfactuals=result.counterfactuals,
        degraded=result.degraded,
        foil=foil,
        remote=remote,
    )


def unit_places(ctx: MethodContext, source: str, granularity: str) -> list[tuple[int, int]]:
    """Where each unit is shown in the file: (start, end) of its first run of tokens, narrowed
    to its non-whitespace text unless the units are tokens."""
    tokens = ctx.input.tokens
    places = []
    for unit in ctx.units:
        run = _first_run(unit)
        start = min(tokens[i].start for i in run)
        end = max(tokens[i].end for i in run)
        if granularity != "token":
            start, end = _trim(source, start, end)
        places.append((start, end))
    return places


def _first_run(unit: list[int]) -> list[int]:
    """The unit's first run of consecutive tokens: a unit whose tokens lie apart in the file
    (a variable filled in twice) is shown at its first place, so no span covers the text
    between; `Span.token_indices` still lists all its tokens."""
    run = unit[:1]
    for i in unit[1:]:
        if i != run[-1] + 1:
            break
        run.append(i)
    return run


def _trim(source: str, start: int, end: int) -> tuple[int, int]:
    """Narrow a word or line span to its non-whitespace text (unless it is all whitespace)."""
    text = source[start:end]
    if not text.strip():
        return start, end
    return start + len(text) - len(text.lstrip()), end - len(text) + len(text.rstrip())
