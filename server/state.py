"""The server's state: settings, open prompt documents, their latest results, and the glue
between LSP events and explanation jobs (debounce, supersede, drop stale, publish, progress).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from promptxray.explainers.documents import parse_document
from promptxray.explainers.errors import ContextLengthError, ModelLoadError, PromptXrayError
from promptxray.explainers.types import ExplainRequest, Explanation, Span
from promptxray.server import convert
from promptxray.server.compare import rank_agreement
from promptxray.server.positions import PositionMap
from promptxray.server.scheduler import Engine, Job, JobCancelled, JobResult
from promptxray.server.settings import Settings, parse_settings

log = logging.getLogger(__name__)
STAGES = {
    "start": "starting",
    "load": "loading the model",
    "target": "finding the answer",
    "attribute": "attributing",
    "self-explain": "asking the model why",
}


@dataclass
class DocState:
    """One open prompt document: per-document overrides, the running job, the latest result."""

    uri: str
    overrides: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None
    timer: asyncio.Task[Any] | None = None
    result: JobResult | None = None
    text: str = ""
    pmap: PositionMap | None = None
    body_start: int = 0
    status: str = "waiting"


class ServerState:
    """Everything the handlers share."""

    def __init__(self, ls: LanguageServer) -> None:
        self.ls = ls
        self.settings = Settings()
        self.engine = Engine()
        self.docs: dict[str, DocState] = {}
        self.progress_jobs: dict[str, Job] = {}
        self.reported: set[str] = set()

    # --- settings ------------------------------------------------------------------------------
    def apply_settings(self, raw: Any, initial: bool = False) -> None:
        before = self.settings
        self.settings, warnings = parse_settings(raw, before)
        for warning in warnings:
            self.message(warning, types.MessageType.Warning)
        if not initial and self.settings.explain_key() != before.explain_key():
            self.engine.forget_failures()
            self.reported.clear()
            for uri in list(self.docs):
                if self.settings.trigger != "manual":
                    self.schedule(uri, 0)

    def message(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=text))

    # --- documents -----------------------------------------------------------------------------
    def is_prompt(self, uri: str) -> bool:
        name = unquote(urlparse(uri).path).rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, glob) for glob in self.settings.globs)

    def on_event(self, uri: str, kind: str) -> None:
        """didOpen / didChange / didSave: explain now, later (debounced) or not at all."""
        if not self.is_prompt(uri):
            return
        self.docs.setdefault(uri, DocState(uri))
        trigger = self.settings.trigger
        if kind == "change" and trigger == "onChange":
            self.schedule(uri, self.settings.debounceMs)
        elif kind in ("open", "save") and trigger != "manual":
            self.schedule(uri, 0)

    def close(self, uri: str) -> None:
        state = self.docs.pop(uri, None)
        if state is not None:
            if state.timer:
                state.timer.cancel()
            if state.job:
                state.job.cancelled.set()
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def schedule(self, uri: str, delay_ms: int) -> None:
        state = self.docs.get(uri)
        if state is None:
            return
        if state.timer and not state.timer.done():
            state.timer.cancel()
        state.timer = asyncio.get_running_loop().create_task(self._later(uri, delay_ms))

    async def _later(self, uri: str, delay_ms: int) -> None:
        await asyncio.sleep(delay_ms / 1000)
        await self.run(uri)

    def document(self, uri: str) -> Any:
        """The open document, or a JSON-RPC error naming the problem."""
        if uri not in self.ls.workspace.text_documents or uri not in self.docs:
            raise JsonRpcInvalidParams.of(ValueError(f"{uri} is not an open prompt document"))
        return self.ls.workspace.get_text_document(uri)

    def request_for(self, uri: str, text: str, overrides: dict[str, Any]) -> ExplainRequest:
        s = self.settings
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
        )

    # --- running jobs --------------------------------------------------------------------------
    async def run(self, uri: str, overrides: dict[str, Any] | None = None) -> JobResult | None:
        """Explain the document's current text; publish unless a newer version superseded it."""
        doc = self.document(uri)
        state = self.docs[uri]
        text, version = doc.source, doc.version
        if overrides is not None:
            state.overrides.update(overrides)
        job = Job(
            uri,
            version,
            self.request_for(uri, text, state.overrides),
            self_explain=self.settings.selfExplain,
        )
        result = self.engine.cached(job)
        if result is None:
            if state.job is not None:
                state.job.cancelled.set()
            state.job = job
            state.status = "explaining"
            log.info("explaining %s (version %s)", uri, version)
            try:
                result = await self._run_with_progress(job)
            except JobCancelled:
                log.info("superseded: %s (version %s)", uri, version)
                return None
            finally:
                if state.job is job:
                    state.job = None
            log.info("explained %s (version %s) in %.2f s", uri, version, result.seconds)
        current = self.ls.workspace.text_documents.get(uri)
        if uri not in self.docs or current is None or current.source != text:
            return result  # stale: never shown on newer text
        self.store(state, text, result)
        return result

    async def _run_with_progress(self, job: Job) -> JobResult:
        token = await self._begin_progress(job)
        try:
            return await asyncio.wrap_future(self.engine.submit(job))
        finally:
            if token is not None:
                self.progress_jobs.pop(token, None)
                self.ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))

    async def _begin_progress(self, job: Job) -> str | None:
        caps = self.ls.client_capabilities.window
        if caps is None or not caps.work_done_progress:
            return None
        token = f"promptxray-{uuid.uuid4()}"
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception:
            return None
        self.progress_jobs[token] = job
        name = job.uri.rsplit("/", 1)[-1]
        self.ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=f"promptxray: {name}", message="queued", cancellable=True, percentage=0
            ),
        )
        loop = asyncio.get_running_loop()
        last: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            percent = int(100 * done / total) if total else 0
            if last.get("stage") == stage and percent - last.get("percent", 0) < 10:
                return
            last.update(stage=stage, percent=percent)
            value = types.WorkDoneProgressReport(
                message=STAGES.get(stage, stage), percentage=percent, cancellable=True
            )
            loop.call_soon_threadsafe(self.ls.work_done_progress.report, token, value)

        job.progress = report
        return token

    def cancel_token(self, token: Any) -> None:
        job = self.progress_jobs.get(str(token))
        if job is not None:
            job.cancelled.set()

    # --- results -> LSP ------------------------------------------------------------------------
    def store(self, state: DocState, text: str, result: JobResult) -> None:
        state.result, state.text, state.pmap = result, text, PositionMap(text)
        try:
            state.body_start = parse_document(text, state.uri).body_start
        except PromptXrayError:
            state.body_start = 0
        state.status = "error" if result.error else "ready"
        self.publish(state)

    def publish(self, state: DocState) -> None:
        result, pmap = state.result, state.pmap
        assert result is not None and pmap is not None
        if result.error is not None:
            error = result.error
            severity = (
                types.DiagnosticSeverity.Error
                if isinstance(error, ContextLengthError)
                else types.DiagnosticSeverity.Warning
            )
            prefix = (
                ""
                if isinstance(error, ContextLengthError)
                else "promptxray could not explain this prompt: "
            )
            diagnostics = [
                convert.message_diagnostic(pmap, prefix + str(error), severity, state.body_start)
            ]
            if isinstance(error, ModelLoadError) and str(error) not in self.reported:
                self.reported.add(str(error))
                self.message(f"promptxray: {error}", types.MessageType.Error)
        else:
            assert result.explanation is not None
            diagnostics = convert.driver_diagnostics(result.explanation, pmap)
            if result.lines is not None:
                diagnostics += convert.unnecessary_diagnostics(
                    result.lines, pmap, self.settings.unnecessaryThreshold
                )
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=state.uri, diagnostics=diagnostics)
        )
        self.refresh()

    def refresh(self) -> None:
        """Ask the client to re-request semantic tokens, code lenses and inlay hints."""
        ws = self.ls.client_capabilities.workspace
        if ws is None:
            return
        if ws.semantic_tokens and ws.semantic_tokens.refresh_support:
            self.ls.workspace_semantic_tokens_refresh(None)
        if ws.code_lens and ws.code_lens.refresh_support:
            self.ls.workspace_code_lens_refresh(None)
        if self.settings.inlayHints and ws.inlay_hint and ws.inlay_hint.refresh_support:
            self.ls.workspace_inlay_hint_refresh(None)

    def current(self, uri: str) -> tuple[Explanation, DocState, PositionMap] | None:
        """The explanation of exactly the document's current text, if there is one."""
        state = self.docs.get(uri)
        doc = self.ls.workspace.text_documents.get(uri)
        if state is None or doc is None or state.result is None or state.pmap is None:
            return None
        if state.text != doc.source or state.result.explanation is None:
            return None
        return state.result.explanation, state, state.pmap

    def span_at(
        self, uri: str, position: types.Position
    ) -> tuple[Explanation, int, Span, PositionMap] | None:
        found = self.current(uri)
        if found is None:
            return None
        expl, _, pmap = found
        hit = convert.span_at(expl, pmap.offset(position))
        return None if hit is None else (expl, hit[0], hit[1], pmap)

    def semantic_tokens(self, uri: str, within: types.Range | None = None) -> list[int]:
        found = self.current(uri)
        if found is None:
            return []
        expl, _, pmap = found
        if within is None:
            return convert.semantic_tokens(expl, pmap)
        return convert.semantic_tokens(
            expl, pmap, pmap.offset(within.start), pmap.offset(within.end)
        )

    def inlay_hints(self, uri: str) -> list[types.InlayHint]:
        found = self.current(uri)
        if found is None or not self.settings.inlayHints:
            return []
        return convert.inlay_hints(found[0], found[2])

    def code_lenses(self, uri: str) -> list[types.CodeLens]:
        state = self.docs.get(uri)
        doc = self.ls.workspace.text_documents.get(uri)
        if state is None or doc is None:
            return []
        found = self.current(uri)
        pmap = found[2] if found else PositionMap(doc.source)
        return convert.code_lenses(
            uri, found[0] if found else None, pmap, state.body_start, state.status
        )

    # --- commands ------------------------------------------------------------------------------
    async def explain_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        names = ("method", "target", "granularity")
        if rest and isinstance(rest[0], dict):
            overrides = {k: rest[0][k] for k in names if k in rest[0]}
        else:
            overrides = {k: v for k, v in zip(names, rest, strict=False) if v is not None}
        return self.summary(await self.run(uri, overrides))

    async def explain_with_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        from promptxray.explainers.registry import list_methods

        uri, rest = self._uri_args(args)
        method = rest[0] if rest else None
        if method is None:
            actions = [types.MessageActionItem(title=m.name) for m in list_methods()]
            choice = await self.ls.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Info,
                    message="Explain with which method?",
                    actions=actions,
                )
            )
            if choice is None:
                return {"cancelled": True}
            method = choice.title
        return self.summary(await self.run(uri, {"method": method}))

    async def set_target_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        target = rest[0] if rest else None
        if target is not None and not isinstance(target, str):
            raise JsonRpcInvalidParams.of(ValueError("the target must be a string or null"))
        return self.summary(await self.run(uri, {"target": target or None}))

    async def compare_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        methods = rest[0] if rest else ["occlusion", "gradient_x_input"]
        if not isinstance(methods, list) or len(methods) < 2:
            raise JsonRpcInvalidParams.of(ValueError("compareMethods takes a list of 2+ methods"))
        results = {}
        # rankings compare only over the same units: mixed "auto" units differ per method
        doc_state = self.docs[uri]
        granularity = doc_state.overrides.get("granularity", self.settings.granularity)
        override = {"granularity": "word"} if granularity == "auto" else {}
        for method in methods:
            result = await self.run(uri, {"method": method, **override})
            if result is None or result.explanation is None:
                raise JsonRpcInvalidParams.of(ValueError(f"{method} failed: {self._why(result)}"))
            results[method] = result.explanation
        if override:
            doc_state.overrides["granularity"] = granularity
        report = rank_agreement(results)
        self.message(report["summary"])
        return report

    async def explanation_json(self, params: Any) -> dict[str, Any]:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams.of(ValueError("promptxray/explanation takes {uri}"))
        self.document(uri)
        found = self.current(uri)
        if found is not None:
            return found[0].to_dict()
        result = await self.run(uri)
        if result is None or result.explanation is None:
            raise JsonRpcInvalidParams.of(ValueError(self._why(result)))
        return result.explanation.to_dict()

    def _uri_args(self, args: tuple[Any, ...]) -> tuple[str, list[Any]]:
        if not args or not isinstance(args[0], str):
            raise JsonRpcInvalidParams.of(ValueError("the first argument must be a document uri"))
        self.document(args[0])
        return args[0], list(args[1:])

    @staticmethod
    def _why(result: JobResult | None) -> str:
        if result is None:
            return "superseded by a newer edit"
        return str(result.error) if result.error else "no explanation"

    @staticmethod
    def summary(result: JobResult | None) -> dict[str, Any]:
        if result is None:
            return {"superseded": True}
        if result.error is not None:
            return {"error": str(result.error)}
        expl = result.explanation
        assert expl is not None
        return {
            "target": expl.target.text,
            "prob": expl.target.prob,
            "method": expl.method,
            "granularity": expl.granularity,
            "wall_time_s": expl.wall_time_s,
            "top": [s.text for s in expl.ranked_spans()[:5]],
        }
