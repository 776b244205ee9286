"""Proxy, then verify (AttriBoT's proxy model; ContextCite's advice for large models): a local
model explains the prompt at once, then the server scores only the parts that matter by the
proxy, and the result says how well the two agree.

The first explanation yielded is the proxy's own (a stage, not final). The final one holds the
server's exact (or bounded) figures for the proxy's largest parts; every other part keeps the
proxy's figure, marked as such (`PartFigure(kind="proxy")`), never passed off as the server's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.details import PartFigure, ProxyAgreement, StageInfo
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.explain import (
    StageProgress,
    assemble,
    explain,
    prepare,
    unit_places,
)
from promptxray.explainers.registry import MethodResult, get_method
from promptxray.explainers.types import ExplainRequest, Explanation

PROXY_TOP = 8  # parts the server scores: the proxy's largest effects
TOP_SHARED = 3  # the top parts compared between proxy and server


def explain_with_proxy(
    request: ExplainRequest,
    server: Backend,
    proxy: Backend,
    top: int = PROXY_TOP,
    progress: StageProgress | None = None,
) -> Iterator[Explanation]:
    """Yield the proxy's explanation of the server's answer (stage 1 of 2, after one request
    for that answer), then the server's figures for the proxy's `top` parts with their
    agreement (stage 2, final). Occlusion at the request's granularity (`auto` and `token`
    become lines: parts must be the same characters on both models)."""
    if not server.capabilities.remote:
        raise InvalidRequestError("--proxy checks a server's model: use it with --backend openai")
    granularity = "line" if request.granularity in ("auto", "token") else request.granularity
    request = replace(request, method="occlusion", granularity=granularity, faithfulness=False)
    started = time.perf_counter()
    # the server's answer first (one request): the proxy explains that answer, not its own
    spec = get_method("occlusion")
    backend, prep = prepare(request, server, progress)
    ctx = prep.ctx
    answer = backend.decode([t for t in ctx.target_ids if t not in backend.eos_ids()])
    local = explain(replace(request, target=answer, target_ids=None), backend=proxy)
    local.stage = StageInfo("proxy", 1, 2, False, time.perf_counter() - started, granularity)
    yield local

    n = len(ctx.units)
    places = unit_places(ctx, prep.source, granularity)
    where = {place: i for i, place in enumerate(places)}
    theirs = {(s.start, s.end): s.score for s in local.spans}
    ranked = sorted(theirs, key=lambda k: -abs(theirs[k]))
    chosen = sorted({where[k] for k in ranked[:top] if k in where})
    scores = np.array([theirs.get(place, 0.0) for place in places])
    if chosen:
        ablated = ctx.score_variants([ctx.ids_without(ctx.units[i]) for i in chosen])
        scores[chosen] = ctx.base_score - ablated
    result = MethodResult(
        unit_scores=scores, ablated_logprob=[float(ctx.base_score - v) for v in scores]
    )
    final = assemble(request, prep, backend, spec, result, None)
    if final.remote is not None:
        final.remote.parts += [PartFigure(i, "proxy") for i in range(n) if i not in chosen]
        final.remote.parts.sort(key=lambda p: p.index)
        final.remote.proxy = agreement(local, final, chosen, proxy.model_id)
    final.stage = StageInfo("verified", 2, 2, True, time.perf_counter() - started, granularity)
    yield final


def agreement(
    local: Explanation, final: Explanation, chosen: list[int], model: str
) -> ProxyAgreement:
    """Spearman between the proxy's and the server's figures on the parts the server scored,
    and the share of the top TOP_SHARED parts both name."""
    theirs = {(s.start, s.end): s.score for s in local.spans}
    mine = np.array([final.spans[i].score for i in chosen])
    proxy = np.array([theirs.get((final.spans[i].start, final.spans[i].end), 0.0) for i in chosen])
    rho = None
    if len(chosen) > 2 and mine.std() > 0 and proxy.std() > 0:
        ranks = [np.argsort(np.argsort(x)) for x in (mine, proxy)]
        rho = float(np.corrcoef(ranks[0], ranks[1])[0, 1])
    k = min(TOP_SHARED, len(chosen))
    top_mine = {chosen[i] for i in np.argsort(-mine, kind="stable")[:k]}
    top_proxy = {chosen[i] for i in np.argsort(-proxy, kind="stable")[:k]}
    shared = len(top_mine & top_proxy) / k if k else 0.0
    return ProxyAgreement(model, len(chosen), len(final.spans), rho, shared)
