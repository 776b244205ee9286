"""Open prompt documents and their explanation jobs: which files count, debouncing, one job per
document at a time (a newer version supersedes the older), stale results dropped, and typed
lookups of the explanation of exactly the text the client shows.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument

from promptxray.explainers.prompt.document import document_kind
from promptxray.explainers.types import ExplainRequest, Explanation, Span
from promptxray.server.positions import PositionMap
from promptxray.server.scheduler import Job, JobCancelled, JobResult

if TYPE_CHECKING:
    from promptxray.server.server import PromptXrayServer

log = logging.getLogger(__name__)
# what a document may set for itself (foil: "why the answer rather than this?")
OVERRIDABLE = ("method", "target", "granularity", "foil", "prompt_line")


@dataclass
class Doc:
    """One open prompt document: its own overrides, the running job, the latest result."""

    uri: str
    overrides: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None  # the job running for it
    latest: Job | None = None  # the job asked for last: only its result is shown
    timer: asyncio.Task[Any] | None = None
    result: JobResult | None = None
    text: str = ""  # the text `result` explains
    pmap: PositionMap | None = None
    body_start: int = 0  # from the latest explanation (where code lenses and errors go)
    status: str = "waiting"  # waiting, explaining, ready, error
    saved_text: str | None = None  # the text when last opened or saved (diffWithSaved)
    saved: Explanation | None = None  # the final explanation of `saved_text`, once shown

    def cancel(self) -> None:
        if self.timer and not self.timer.done():
            self.timer.cancel()
        if self.job is not None:
            self.job.cancelled.set()


@dataclass(frozen=True)
class Shown:
    """The explanation of exactly the document's current text."""

    doc: Doc
    expl: Explanation
    pmap: PositionMap
    lines: Explanation | None


@dataclass(frozen=True)
class SpanHit:
    """A span under the cursor: which explanation, which span."""

    shown: Shown
    index: int

    @property
    def span(self) -> Span:
        return self.shown.expl.spans[self.index]


class Documents:
    """The open prompt documents of one server, and the jobs that explain them."""

    def __init__(self, ls: PromptXrayServer) -> None:
        self.ls = ls
        self.docs: dict[str, Doc] = {}

    # --- lifecycle -----------------------------------------------------------------------------
    def is_prompt(self, uri: str) -> bool:
        name = unquote(urlparse(uri).path).rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, glob) for glob in self.ls.settings.globs)

    def is_code(self, uri: str) -> bool:
        """A code file: explained only once the user picks one of its prompts (a lens)."""
        return document_kind(unquote(urlparse(uri).path)) == "python"

    def on_event(self, uri: str, kind: str) -> None:
        """didOpen / didChange / didSave: explain now, later (debounced) or not at all."""
        if not self.is_prompt(uri):
            return
        doc = self.docs.setdefault(uri, Doc(uri))
        if kind in ("open", "save"):
            current = self.ls.workspace.text_documents.get(uri)
            if current is not None and current.source != doc.saved_text:
                doc.saved_text, doc.saved = current.source, None
                if doc.text == current.source and doc.status == "ready" and doc.result:
                    doc.saved = doc.result.explanation  # already explained (final)
        trigger = self.ls.settings.trigger
        if self.is_code(uri) and "prompt_line" not in doc.overrides:
            if kind in ("open", "save", "change"):
                self.ls.publisher.refresh()  # its prompts' lenses
            return
        if kind == "change" and trigger == "onChange":
            self.schedule(uri, self.ls.settings.debounceMs)
        elif kind in ("open", "save") and trigger != "manual":
            self.schedule(uri, 0)

    def close(self, uri: str) -> None:
        doc = self.docs.pop(uri, None)
        if doc is not None:
            doc.cancel()

    def close_all(self) -> None:
        for uri in list(self.docs):
            self.close(uri)

    def schedule(self, uri: str, delay_ms: int) -> None:
        doc = self.docs.get(uri)
        if doc is None:
            return
        if doc.timer and not doc.timer.done():
            doc.timer.cancel()
        doc.timer = asyncio.get_running_loop().create_task(self._later(uri, delay_ms))

    def schedule_all(self) -> None:
        if self.ls.settings.trigger != "manual":
            for uri in list(self.docs):
                self.schedule(uri, 0)

    async def _later(self, uri: str, delay_ms: int) -> None:
        await asyncio.sleep(delay_ms / 1000)
        await self.run(uri)

    def require(self, uri: str) -> TextDocument:
        """The open prompt document, or a JSON-RPC error naming the problem."""
        if uri not in self.ls.workspace.text_documents or uri not in self.docs:
            raise JsonRpcInvalidParams.of(ValueError(f"{uri} is not an open prompt document"))
        return self.ls.workspace.get_text_document(uri)

    # --- jobs ----------------------------------------------------------------------------------
    def request_for(self, uri: str, text: str, overrides: dict[str, Any]) -> ExplainRequest:
        s = self.ls.settings
        merged = {"method": s.method, "target": s.target, "granularity": s.granularity, **overrides}
        return ExplainRequest(
            text=text,
            path=unquote(urlparse(uri).path),
            method=merged["method"],
            target=merged["target"],
            granularity=merged["granularity"],
            model=s.model,
            backend=s.backend,
            max_new_tokens=s.maxNewTokens,
            faithfulness=s.faithfulness,
            options={"budget_s": s.autoBudgetSeconds} if merged["method"] == "auto" else {},
            self_explain=s.selfExplain,
            lang=s.language,
            backend_options=s.backend_options(),
            foil=merged.get("foil"),
            samples=dict(s.samples),
            prompt_line=merged.get("prompt_line"),
        )

    async def run(self, uri: str, overrides: dict[str, Any] | None = None) -> JobResult | None:
        """Explain the document's current text (after updating its own overrides) and show the
        result, unless a newer version superseded it (then None) or the text changed since."""
        current, doc = self.require(uri), self.docs[uri]
        text = current.source
        doc.overrides.update(overrides or {})
        job = Job(uri, current.version, self.request_for(uri, text, doc.overrides))
        if doc.job is not None:
            doc.job.cancelled.set()  # superseded, even by a cached result
        doc.latest = job
        result = self.ls.engine.cached(job)
        if result is None:
            doc.job, doc.status = job, "explaining"
            loop = asyncio.get_running_loop()
            job.on_stage = lambda stage: loop.call_soon_threadsafe(
                self._show_stage, doc, job, text, stage
            )
            try:
                result = await self.ls.reporter.run(job, self.ls.engine.submit)
            except JobCancelled:
                log.info("superseded or cancelled: %s (version %s)", uri, job.version)
                if doc.latest is job:  # cancelled by the user, no newer job: restate the state
                    if doc.result is not None:
                        self.ls.reporter.finished(uri, doc.result)
                    else:
                        self.ls.reporter.status(uri, "ready", 0, 0)
                return None
            finally:
                if doc.job is job:
                    doc.job = None
            log.info("explained %s (version %s) in %.2f s", uri, job.version, result.seconds)
        if doc.latest is not job:  # a newer request came while this one finished
            return result
        now = self.ls.workspace.text_documents.get(uri)
        if self.docs.get(uri) is doc and now is not None and now.source == text:
            self._store(doc, text, result)
        self.ls.reporter.finished(uri, result)  # after the diagnostics: "ready" means shown
        return result  # stale results are returned to the caller but never shown

    async def run_aside(
        self, uri: str, overrides: dict[str, Any], text: str | None = None
    ) -> JobResult | None:
        """Explain the current text (or `text`) with `overrides` on top of the document's own,
        without changing what the document shows or its overrides (compareMethods)."""
        doc = self.docs[uri]
        current = self.require(uri).source
        text = current if text is None else text
        job = Job(uri, None, self.request_for(uri, text, {**doc.overrides, **overrides}))
        result = self.ls.engine.cached(job)
        if result is None:
            try:
                result = await self.ls.reporter.run(job, self.ls.engine.submit)
            except JobCancelled:
                return None
        if doc.job is None:  # the document's own job is not running: restate its state
            self.ls.reporter.finished(uri, doc.result or result)
        return result

    def _show_stage(self, doc: Doc, job: Job, text: str, result: JobResult) -> None:
        """An earlier stage of the document's running job: shown at once, unless the job was
        superseded or the text changed since (a stale stage is never published)."""
        if job.cancelled.is_set() or doc.latest is not job or self.docs.get(doc.uri) is not doc:
            return
        now = self.ls.workspace.text_documents.get(doc.uri)
        if now is None or now.source != text:
            return
        stage = result.explanation.stage if result.explanation else None
        self._store(doc, text, result, status=f"explaining ({stage.name})" if stage else None)

    def _store(self, doc: Doc, text: str, result: JobResult, status: str | None = None) -> None:
        doc.result, doc.text, doc.pmap = result, text, PositionMap(text)
        if result.explanation is not None:
            doc.body_start = result.explanation.body_start
            if status is None and text == doc.saved_text:  # final: the saved version's
                doc.saved = result.explanation
        doc.status = status or ("error" if result.error else "ready")
        self.ls.publisher.publish(doc)

    # --- typed lookups -------------------------------------------------------------------------
    def shown(self, uri: str) -> Shown | None:
        """The explanation of exactly the document's current text, if there is one."""
        doc = self.docs.get(uri)
        current = self.ls.workspace.text_documents.get(uri)
        if doc is None or current is None or doc.result is None or doc.pmap is None:
            return None
        if doc.text != current.source or doc.result.explanation is None:
            return None
        return Shown(doc, doc.result.explanation, doc.pmap, doc.result.lines)

    def span_at(self, uri: str, position: types.Position) -> SpanHit | None:
        shown = self.shown(uri)
        if shown is None:
            return None
        index = shown.expl.span_at(shown.pmap.offset(position))
        return None if index is None else SpanHit(shown, index)
