"""What the server shows of a document's explanation: diagnostics (pushed), and the semantic
tokens, inlay hints and code lenses the client pulls (after a refresh request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from promptxray.explainers.errors import (
    ContextLengthError,
    EngineError,
    ModelLoadError,
    PromptXrayError,
)
from promptxray.explainers.types import Explanation
from promptxray.server import convert
from promptxray.server.checks import check_diagnostics
from promptxray.server.documents import Doc
from promptxray.server.positions import PositionMap

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative
    from promptxray.server.server import PromptXrayServer

COULD_NOT = "promptxray could not explain this prompt: "


class Publisher:
    """Turns the documents' stored results into LSP objects for one server."""

    def __init__(self, ls: PromptXrayServer) -> None:
        self.ls = ls
        # model-load and engine errors already shown as a message (once each, until a result
        # comes through: an engine that goes down again is reported again)
        self.reported: set[str] = set()

    def publish(self, doc: Doc) -> None:
        """Replace the document's diagnostics with those of its result; refresh the rest."""
        result, pmap = doc.result, doc.pmap
        assert result is not None and pmap is not None
        if result.error is not None:
            at = getattr(result.error, "offset", None)  # a template error's own place
            diagnostics = [self._error(result.error, pmap, doc.body_start if at is None else at)]
        else:
            assert result.explanation is not None
            self.reported.clear()
            s = self.ls.settings
            diagnostics = convert.result_diagnostics(
                result.explanation, pmap, s.language, s.unnecessaryThreshold
            )
            if result.lines is not None:
                diagnostics += convert.unnecessary_diagnostics(
                    result.lines, pmap, s.unnecessaryThreshold, s.language
                )
            paired = result.explanation  # the pairs, or the line pass's (a gradient method)
            if not paired.pairs and result.lines is not None:
                paired = result.lines
            diagnostics += convert.pair_diagnostics(doc.uri, paired, pmap, s.language)
        # the prompt's own `checks:`: an Error on each invalid or failing assertion's line
        diagnostics += check_diagnostics(
            doc.uri, doc.text, result.explanation, pmap, self.ls.settings.language
        )
        self.diagnostics(doc.uri, diagnostics)
        self.refresh()

    def republish(self) -> None:
        """Settings that change only the wording or the threshold: show the results again."""
        for doc in self.ls.documents.docs.values():
            if doc.result is not None and doc.pmap is not None:
                self.publish(doc)

    def diagnostics(self, uri: str, diagnostics: list[types.Diagnostic]) -> None:
        self.ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )

    def _error(self, error: PromptXrayError, pmap: PositionMap, start: int) -> types.Diagnostic:
        if isinstance(error, (ModelLoadError, EngineError)) and str(error) not in self.reported:
            self.reported.add(str(error))
            self.ls.message(f"promptxray: {error}", types.MessageType.Error)
        if isinstance(error, ContextLengthError):
            return convert.message_diagnostic(
                pmap, str(error), types.DiagnosticSeverity.Error, start
            )
        return convert.message_diagnostic(
            pmap, COULD_NOT + str(error), types.DiagnosticSeverity.Warning, start
        )

    def refresh(self) -> None:
        """Ask the client to re-request semantic tokens, code lenses and inlay hints."""
        ws = self.ls.client_capabilities.workspace
        if ws is None:
            return
        if ws.semantic_tokens and ws.semantic_tokens.refresh_support:
            self.ls.workspace_semantic_tokens_refresh(None)
        if ws.code_lens and ws.code_lens.refresh_support:
            self.ls.workspace_code_lens_refresh(None)
        if self.ls.settings.inlayHints and ws.inlay_hint and ws.inlay_hint.refresh_support:
            self.ls.workspace_inlay_hint_refresh(None)

    # --- pulled by the client ------------------------------------------------------------------
    def semantic_tokens(self, uri: str, within: types.Range | None = None) -> list[int]:
        shown = self.ls.documents.shown(uri)
        if shown is None:
            return []
        if within is None:
            return convert.semantic_tokens(shown.expl, shown.pmap)
        lo, hi = shown.pmap.offset(within.start), shown.pmap.offset(within.end)
        return convert.semantic_tokens(shown.expl, shown.pmap, lo, hi)

    def inlay_hints(self, uri: str) -> list[types.InlayHint]:
        s = self.ls.settings
        shown = self.ls.documents.shown(uri)
        if shown is None or not s.inlayHints:
            return []
        return convert.inlay_hints(
            shown.expl, shown.pmap, lang=s.language, threshold=s.unnecessaryThreshold
        )

    def code_lenses(self, uri: str) -> list[types.CodeLens]:
        doc = self.ls.documents.docs.get(uri)
        current = self.ls.workspace.text_documents.get(uri)
        if doc is None or current is None:
            return []
        shown = self.ls.documents.shown(uri)
        pmap = shown.pmap if shown else PositionMap(current.source)
        expl = shown.expl if shown else None
        foils = shown.doc.result.foils if shown and shown.doc.result else []
        lang = self.ls.settings.language
        if self.ls.documents.is_code(uri):
            return self._code_lenses(uri, current.source, pmap, doc, expl, foils)
        return convert.code_lenses(uri, expl, pmap, doc.body_start, doc.status, foils, lang)

    def _code_lenses(
        self,
        uri: str,
        source: str,
        pmap: PositionMap,
        doc: Doc,
        expl: Explanation | None,
        foils: list[Alternative],
    ) -> list[types.CodeLens]:
        """A code file: "Explain this prompt" above each prompt found in it (parsed, never
        run); the explained one gets the prompt lenses instead."""
        from promptxray.explainers.errors import DocumentError
        from promptxray.explainers.prompt.python_prompts import find_prompts, prompt_at

        try:
            prompts = find_prompts(source)
        except DocumentError:
            return []
        line = doc.overrides.get("prompt_line")
        chosen = prompt_at(prompts, line) if isinstance(line, int) else None
        lang = self.ls.settings.language
        lenses: list[types.CodeLens] = []
        for prompt in prompts:
            start, at = prompt.start, prompt.line
            if prompt is chosen:  # the one explained: the same rule picks it (formats)
                lenses += convert.code_lenses(uri, expl, pmap, start, doc.status, foils, lang, at)
            else:
                lenses.append(convert.explain_prompt_lens(uri, pmap, start, at, lang))
        return lenses

    def hover(self, uri: str, position: types.Position) -> types.Hover | None:
        hit = self.ls.documents.span_at(uri, position)
        if hit is None:
            return None
        s, span = self.ls.settings, hit.span
        shown = hit.shown
        stage = shown.expl.stage
        job = shown.doc.job
        if stage is not None and not stage.final and job is not None:
            # an early stage: the line under the cursor is scored next, exactly
            job.asked.ask(shown.pmap.offset(position))
        text = convert.hover_markdown(
            uri, shown.expl, hit.index, s.language, s.unnecessaryThreshold, shown.pmap.text
        )
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            range=hit.shown.pmap.range(span.start, span.end),
        )
