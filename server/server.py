"""The promptxray language server (pygls 2): attributions on prompt files as hovers,
diagnostics, semantic-token heatmaps, inlay hints, code lenses, commands and a custom request.

Handlers stay short: documents and settings live in `state.py`, explanation jobs run in the
worker of `scheduler.py`, and `convert.py` turns results into LSP objects.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from promptxray.server import convert
from promptxray.server.state import ServerState

server = LanguageServer("promptxray", "0.1.0")
STATE = ServerState(server)
EXPLANATION_REQUEST = "promptxray/explanation"


@server.feature(types.INITIALIZE)
def initialize(ls: LanguageServer, params: types.InitializeParams) -> None:
    """Read settings from initializationOptions."""
    STATE.apply_settings(params.initialization_options, initial=True)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: LanguageServer, params: types.DidChangeConfigurationParams):
    STATE.apply_settings(params.settings)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    STATE.on_event(params.text_document.uri, "open")


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    STATE.on_event(params.text_document.uri, "change")


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    STATE.on_event(params.text_document.uri, "save")


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    STATE.close(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
    found = STATE.span_at(params.text_document.uri, params.position)
    if found is None:
        return None
    expl, index, span, pmap = found
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=convert.hover_markdown(expl, index, span, STATE.settings.language),
        ),
        range=pmap.range(span.start, span.end),
    )


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, convert.LEGEND)
def semantic_tokens_full(ls: LanguageServer, params: types.SemanticTokensParams):
    return types.SemanticTokens(data=STATE.semantic_tokens(params.text_document.uri))


@server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE, convert.LEGEND)
def semantic_tokens_range(ls: LanguageServer, params: types.SemanticTokensRangeParams):
    return types.SemanticTokens(data=STATE.semantic_tokens(params.text_document.uri, params.range))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
def inlay_hint(ls: LanguageServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    return STATE.inlay_hints(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def code_lens(ls: LanguageServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    return STATE.code_lenses(params.text_document.uri)


@server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def cancel_progress(ls: LanguageServer, params: types.WorkDoneProgressCancelParams) -> None:
    STATE.cancel_token(params.token)


@server.command("promptxray.explain")
async def cmd_explain(ls: LanguageServer, *args: Any) -> dict[str, Any]:
    """Args: uri, then optional method, target, granularity (or one object with those keys)."""
    return await STATE.explain_command(args)


@server.command("promptxray.explainWith")
async def cmd_explain_with(ls: LanguageServer, *args: Any) -> dict[str, Any]:
    """Args: uri, optional method; without a method the user picks one from a message."""
    return await STATE.explain_with_command(args)


@server.command("promptxray.setTarget")
async def cmd_set_target(ls: LanguageServer, *args: Any) -> dict[str, Any]:
    """Args: uri, target text (null or "" clears it and explains the model's own answer)."""
    return await STATE.set_target_command(args)


@server.command("promptxray.compareMethods")
async def cmd_compare(ls: LanguageServer, *args: Any) -> dict[str, Any]:
    """Args: uri, optional list of two or more methods; returns their rank agreement."""
    return await STATE.compare_command(args)


@server.feature(EXPLANATION_REQUEST)
async def explanation_request(ls: LanguageServer, params: Any) -> dict[str, Any]:
    """The full Explanation JSON of a document (explaining it first if needed)."""
    return await STATE.explanation_json(params)
