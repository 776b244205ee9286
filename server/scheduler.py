"""Explanation jobs off the event loop: one worker thread, cancellation, and a bounded cache.

The language server submits a `Job` per document version; the worker loads the model on first
use, runs the configured method (which also asks the model why when `request.self_explain` is
set) plus line-level removal effects (the "no measurable effect" hints: from the main run when
it is a leave-one-out method, else by occlusion), and returns a `JobResult`. A leave-one-out
method at granularity "auto" runs as an anytime explanation
(explainers/anytime.py): each earlier stage (exact blocks, then exact lines) is handed
to `Job.on_stage` as soon as it is done, and the job's result is the final stage. A newer job
for the same document cancels the older one at its next progress step, between stages or
inside one; `Engine.shutdown` stops the worker. Nothing here knows about LSP.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.errors import EngineError, ModelLoadError, PromptXrayError
from promptxray.explainers.types import STRUCTURE_GRANULARITIES, ExplainRequest, Explanation, Span

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative

CACHE_SIZE = 64
Progress = Callable[[str, int, int], None]
# a model that cannot load, an engine that cannot be reached or answered with an error: never
# cached as a result (the next edit tries again, so it works once the engine is back)
TRANSIENT = (ModelLoadError, EngineError)
LoadKey = tuple[str, str | None, BackendOptions]


def backend_options(request: ExplainRequest) -> BackendOptions:
    """The request's backend options that change what its backend loads or connects to (as
    `get_backend` keys them)."""
    from promptxray.explainers.backends import relevant_options

    return relevant_options(request.backend, request.backend_options)


def load_key(request: ExplainRequest) -> LoadKey:
    """Which backend instance a request runs on: a changed endpoint is another instance."""
    return (request.backend, request.model, backend_options(request))


class JobCancelled(Exception):
    """Raised inside the worker when a newer job superseded this one (or the server stops)."""


class Asked:
    """File offsets the user hovered while a job ran (thread-safe): the anytime stages score
    the lines there next (`explain_stages(wanted=...)`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offsets: list[int] = []

    def ask(self, offset: int) -> None:
        with self._lock:
            self._offsets.append(offset)

    def take(self) -> list[int]:
        """The offsets asked since the last call."""
        with self._lock:
            taken, self._offsets = self._offsets, []
        return taken


@dataclass
class Job:
    """One explanation to compute for one version of one document."""

    uri: str
    version: int | None
    request: ExplainRequest
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress: Progress | None = None
    # called (in the worker thread) with each earlier stage of an anytime explanation
    on_stage: Callable[[JobResult], None] | None = None
    # where the user hovered while it ran: an anytime explanation scores those lines next
    asked: Asked = field(default_factory=Asked)

    def key(self) -> tuple[Any, ...]:
        r = self.request
        return (
            r.text,
            r.path,
            r.method,
            r.target,
            r.foil,
            r.granularity,
            r.model,
            r.backend,
            r.max_new_tokens,
            r.faithfulness,
            r.self_explain,
            r.lang if r.self_explain else None,  # the language only words the question
            tuple(sorted((k, repr(v)) for k, v in r.options.items())),
            backend_options(r),
        )


@dataclass
class JobResult:
    """What a job produced: explanations, or the error to show."""

    explanation: Explanation | None = None
    lines: Explanation | None = None  # line-level removal effects, for the no-effect hints
    error: PromptXrayError | None = None
    seconds: float = 0.0
    # the model's own alternative answers, best first ("why not …?" foils)
    foils: list[Alternative] = field(default_factory=list)


class Engine:
    """Runs jobs one at a time in a worker thread and caches results by (text, settings)."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptxray-worker")
        self.cache: OrderedDict[tuple[Any, ...], JobResult] = OrderedDict()
        self.cache_size = cache_size
        self.failed_models: dict[LoadKey, str] = {}
        self.loaded: set[LoadKey] = set()
        self.closed = False

    def cached(self, job: Job) -> JobResult | None:
        result = self.cache.get(job.key())
        if result is not None:
            self.cache.move_to_end(job.key())
        return result

    def submit(self, job: Job) -> Future[JobResult]:
        """Queue a job; after `shutdown` this raises RuntimeError."""
        return self.executor.submit(self.run, job)

    def forget_failures(self) -> None:
        """Settings changed: a model that failed to load may load now."""
        self.failed_models.clear()

    def run(self, job: Job) -> JobResult:
        """Compute a job in the worker (or return the cached result)."""
        hit = self.cached(job)
        if hit is not None:
            return hit
        started = time.perf_counter()
        try:
            result = self._compute(job)
        except JobCancelled:
            raise
        except PromptXrayError as exc:
            result = JobResult(error=exc)
        result.seconds = time.perf_counter() - started
        if not isinstance(result.error, TRANSIENT):
            self.cache[job.key()] = result
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return result

    def _progress(self, job: Job) -> Progress:
        def report(stage: str, done: int, total: int) -> None:
            if job.cancelled.is_set():
                raise JobCancelled(job.uri)
            if job.progress:
                job.progress(stage, done, total)

        return report

    def _backend(self, job: Job, progress: Progress) -> Any:
        from promptxray.explainers.backends import get_backend

        model_key = load_key(job.request)
        if model_key in self.failed_models:
            raise ModelLoadError(self.failed_models[model_key])
        if model_key not in self.loaded:
            progress("load", 0, 1)
        try:
            backend = get_backend(
                job.request.backend,
                job.request.model,
                progress=lambda _msg: progress("load", 0, 1),
                options=job.request.backend_options,
            )
        except ModelLoadError as exc:
            # a model that cannot load fails the same way until the settings change; an
            # engine that cannot be reached (EngineError) is tried again by the next job
            self.failed_models[model_key] = str(exc)
            raise
        backend.enable_score_cache()  # re-explaining an edit reruns only what changed
        self.loaded.add(model_key)
        progress("load", 1, 1)
        return backend

    def _compute(self, job: Job) -> JobResult:
        from promptxray.explainers.anytime import run_stages
        from promptxray.explainers.explain import explain
        from promptxray.explainers.registry import get_method, leave_one_out_method

        if job.cancelled.is_set():
            raise JobCancelled(job.uri)
        progress = self._progress(job)
        backend = self._backend(job, progress)
        on_stage = None if job.on_stage is None else self._stage_handler(job)
        wanted = job.asked.take if on_stage is not None else None
        main = run_stages(job.request, backend, progress, on_stage=on_stage, wanted=wanted)
        foils = _foils(job.request, backend, main)
        whole_parts = main.granularity in ("line", *STRUCTURE_GRANULARITIES)
        if whole_parts and get_method(main.method).leave_one_out:
            # removal effects of lines or whole parts: those with no effect are the hints, so
            # no second (line-level) run; on a 1.3k-token prompt that run took 44 s
            return JobResult(explanation=main, lines=main, foils=foils)
        if main.hierarchy is not None:
            return JobResult(explanation=main, lines=line_level(main), foils=foils)
        lines_request = replace(
            job.request,
            method=leave_one_out_method(main.method),
            granularity="line",
            target=None,
            target_ids=[t.token_id for t in main.target.tokens],
            options={},  # the main method's options are not the hint method's
            faithfulness=False,  # only for the "no measurable effect" hints
            self_explain=False,
        )  # the same text, model, backend and foil as the main explanation
        lines = explain(lines_request, backend=backend, progress=progress)
        return JobResult(explanation=main, lines=lines, foils=foils)

    def _stage_handler(self, job: Job) -> Callable[[Explanation], None]:
        """Hands an anytime explanation's earlier stages to `job.on_stage`, unless cancelled."""
        from promptxray.explainers.registry import get_method

        assert job.on_stage is not None
        show = job.on_stage

        def on_stage(stage: Explanation) -> None:
            if job.cancelled.is_set():
                raise JobCancelled(job.uri)
            # the exact lines stage's scores are removal effects: the hints come from it
            lines = stage if get_method(stage.method).leave_one_out else None
            show(JobResult(explanation=stage, lines=lines))

        return on_stage

    def shutdown(self) -> None:
        """Stop the worker: queued jobs are dropped, a running one stops at its next step
        (callers set its `cancelled` event), and later `submit` calls raise."""
        self.closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)


def _foils(request: ExplainRequest, backend: Any, expl: Explanation) -> list[Alternative]:
    """The "why not …?" foils offered for an explanation: the model's own alternative answers
    (none where the backend cannot rank next tokens or score them exactly)."""
    from promptxray.explainers.alternatives import request_alternatives

    try:
        return request_alternatives(backend, request, [t.token_id for t in expl.target.tokens])
    except (PromptXrayError, NotImplementedError):
        return []


def line_level(expl: Explanation) -> Explanation:
    """The line pass of a hierarchical (granularity "auto") explanation as a line-level
    removal explanation, for the "no measurable effect" hints, without a second run."""
    hierarchy = expl.hierarchy
    assert hierarchy is not None
    spans = []
    for unit, score in zip(hierarchy.line_token_indices, hierarchy.line_scores, strict=True):
        start = min(expl.tokens[i].start for i in unit)
        end = max(expl.tokens[i].end for i in unit)
        text = "".join(expl.tokens[i].text for i in unit)  # the line's tokens (for hints)
        spans.append(Span(text, start, end, float(score), list(unit)))
    return replace(
        expl,
        granularity="line",
        spans=spans,
        score_kind=ScoreKind.REMOVAL,
        ablated_logprob=None if expl.foil else [expl.target.logprob - s.score for s in spans],
        hierarchy=None,
        faithfulness=None,
        metrics={},
        self_explanation=None,
    )
