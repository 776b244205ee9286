"""The promptxray language server (pygls 2): attributions on prompt files as hovers,
diagnostics, semantic-token heatmaps, inlay hints, code lenses, commands, a custom request
(`promptxray/explanation`) and a custom notification (`promptxray/status`, see progress.py).

`PromptXrayServer` owns all state; the handlers below only delegate: `documents.py` (open
documents, debounce, jobs), `publish.py` (what is shown), `commands.py` (commands and the
custom request), `progress.py` (progress and status), `scheduler.py` (the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from promptxray.server import convert
from promptxray.server.commands import Commands
from promptxray.server.documents import Documents
from promptxray.server.progress import ProgressReporter
from promptxray.server.publish import Publisher
from promptxray.server.scheduler import Engine
from promptxray.server.settings import Settings, parse_settings

EXPLANATION_REQUEST = "promptxray/explanation"
_FEATURES: list[tuple[str, Any, Callable[..., Any]]] = []
_COMMANDS: list[tuple[str, Callable[..., Any]]] = []


class PromptXrayServer(LanguageServer):
    """The language server and everything its handlers share."""

    def __init__(self) -> None:
        super().__init__("promptxray", "0.1.0")
        self.settings = Settings()
        self.engine = Engine()
        self.reporter = ProgressReporter(self)
        self.documents = Documents(self)
        self.publisher = Publisher(self)
        self.commands = Commands(self)
        for name, options, handler in _FEATURES:
            self.feature(name, options)(handler)
        for name, handler in _COMMANDS:
            self.command(name)(handler)

    def apply_settings(self, raw: Any, initial: bool = False) -> None:
        """New settings: warn about bad values, re-explain or re-show what they change."""
        before = self.settings
        self.settings, warnings = parse_settings(raw, before)
        for warning in warnings:
            self.message(warning, types.MessageType.Warning)
        if initial:
            return
        if self.settings.explain_key() != before.explain_key():
            self.engine.forget_failures()
            self.publisher.reported.clear()
            self.documents.schedule_all()
        elif self.settings.show_key() != before.show_key():
            self.publisher.republish()

    def message(self, text: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=text))


def feature(name: str, options: Any = None) -> Callable[[Any], Any]:
    """Register a handler on every server made (the table holds functions, not state)."""

    def add(handler: Callable[..., Any]) -> Callable[..., Any]:
        _FEATURES.append((name, options, handler))
        return handler

    return add


def command(name: str) -> Callable[[Any], Any]:
    def add(handler: Callable[..., Any]) -> Callable[..., Any]:
        _COMMANDS.append((name, handler))
        return handler

    return add


@feature(types.INITIALIZE)
def initialize(ls: PromptXrayServer, params: types.InitializeParams) -> None:
    """Read settings from initializationOptions."""
    ls.apply_settings(params.initialization_options, initial=True)


@feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(
    ls: PromptXrayServer, params: types.DidChangeConfigurationParams
) -> None:
    ls.apply_settings(params.settings)


@feature(types.SHUTDOWN)
def shutdown(ls: PromptXrayServer, params: Any) -> None:
    """Stop every job and the worker before the client's exit notification."""
    ls.documents.close_all()
    ls.engine.shutdown()


@feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: PromptXrayServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.documents.on_event(params.text_document.uri, "open")


@feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: PromptXrayServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.documents.on_event(params.text_document.uri, "change")


@feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: PromptXrayServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.documents.on_event(params.text_document.uri, "save")


@feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: PromptXrayServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.documents.close(params.text_document.uri)
    ls.publisher.diagnostics(params.text_document.uri, [])


@feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: PromptXrayServer, params: types.HoverParams) -> types.Hover | None:
    return ls.publisher.hover(params.text_document.uri, params.position)


@feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, convert.LEGEND)
def semantic_tokens_full(
    ls: PromptXrayServer, params: types.SemanticTokensParams
) -> types.SemanticTokens:
    return types.SemanticTokens(data=ls.publisher.semantic_tokens(params.text_document.uri))


@feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE, convert.LEGEND)
def semantic_tokens_range(
    ls: PromptXrayServer, params: types.SemanticTokensRangeParams
) -> types.SemanticTokens:
    data = ls.publisher.semantic_tokens(params.text_document.uri, params.range)
    return types.SemanticTokens(data=data)


@feature(types.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hint(ls: PromptXrayServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    return ls.publisher.inlay_hints(params.text_document.uri)


@feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: PromptXrayServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return ls.publisher.code_lenses(params.text_document.uri)


@feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def cancel_progress(ls: PromptXrayServer, params: types.WorkDoneProgressCancelParams) -> None:
    ls.reporter.cancel(params.token)


@command("promptxray.explain")
async def cmd_explain(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri, then optional method, target, granularity (or one object with those keys)."""
    return await ls.commands.explain(args)


@command("promptxray.explainWith")
async def cmd_explain_with(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri, optional method; without a method the user picks one from a message."""
    return await ls.commands.explain_with(args)


@command("promptxray.setTarget")
async def cmd_set_target(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri, target text (null or "" clears it and explains the model's own answer)."""
    return await ls.commands.set_target(args)


@command("promptxray.whyNot")
async def cmd_why_not(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri, foil text: why the answer rather than it (null or "" drops the foil)."""
    return await ls.commands.why_not(args)


@command("promptxray.compareMethods")
async def cmd_compare(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri, optional list of two or more methods; returns their rank agreement."""
    return await ls.commands.compare(args)


@command(convert.SHOW_REPORT)
async def cmd_show_report(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri; the full report of the document's explanation (the hover's link)."""
    return await ls.commands.show_report(args)


@command("promptxray.diffWithSaved")
async def cmd_diff_with_saved(ls: PromptXrayServer, *args: Any) -> dict[str, Any]:
    """Args: uri; what the edits since the last save changed (Markdown, text and JSON)."""
    return await ls.commands.diff_with_saved(args)


@feature(EXPLANATION_REQUEST)
async def explanation_request(ls: PromptXrayServer, params: Any) -> dict[str, Any]:
    """The full Explanation JSON of a document (explaining it first if needed)."""
    return await ls.commands.explanation(params)
