"""A real LSP client (pygls's LanguageClient) driving the real server as a subprocess."""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

TIMEOUT = 300.0


class Harness:
    """Starts `python -m promptxray.server`, records what it publishes, drains its stderr."""

    def __init__(
        self, init_options: dict[str, Any] | None = None, server_args: Sequence[str] = ()
    ) -> None:
        self.client = LanguageClient("promptxray-tests", "1")
        self.server_args = list(server_args)
        self.init_options = init_options or {}
        self.diagnostics: dict[str, list[list[types.Diagnostic]]] = defaultdict(list)
        self.messages: list[str] = []
        self.progress: list[Any] = []
        self.statuses: list[dict[str, Any]] = []  # promptxray/status notifications
        self.stderr: list[bytes] = []
        self.returncode: int | None = None
        self._changed = asyncio.Event()
        self.versions: dict[str, int] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri].append(list(params.diagnostics))
            self._changed.set()

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)
            self._changed.set()

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @self.client.feature(types.PROGRESS)
        def on_progress(params: types.ProgressParams) -> None:
            self.progress.append(params.value)

        @self.client.feature("promptxray/status")
        def on_status(params: Any) -> None:
            self.statuses.append(to_plain(params))
            self._changed.set()

        @self.client.feature(types.WORKSPACE_SEMANTIC_TOKENS_REFRESH)
        def on_refresh(params: Any) -> None:
            return None

        @self.client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def on_lens_refresh(params: Any) -> None:
            return None

    async def __aenter__(self) -> Harness:
        await self.client.start_io(sys.executable, "-m", "promptxray.server", *self.server_args)
        proc = self.client._server
        assert proc is not None and proc.stderr is not None
        self._drain = asyncio.create_task(self._drain_stderr(proc.stderr))
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True),
                    workspace=types.WorkspaceClientCapabilities(
                        semantic_tokens=types.SemanticTokensWorkspaceClientCapabilities(
                            refresh_support=True
                        ),
                        code_lens=types.CodeLensWorkspaceClientCapabilities(refresh_support=True),
                    ),
                ),
                initialization_options=self.init_options,
            )
        )
        self.client.initialized(types.InitializedParams())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        finally:
            proc = self.client._server
            await self.client.stop()
            self._drain.cancel()
            if proc is not None:
                self.returncode = await asyncio.wait_for(proc.wait(), 30)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line)

    def open(self, path: Path | str, text: str, language: str = "prompt") -> str:
        uri = Path(path).resolve().as_uri() if not str(path).startswith("file:") else str(path)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language, version=1, text=text
                )
            )
        )
        return uri

    def replace(self, uri: str, text: str) -> None:
        """Send the whole new text as one change."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def wait_for(self, predicate: Any, timeout: float = TIMEOUT) -> Any:
        """Wait until predicate() returns something truthy (checked on every notification)."""

        async def loop() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def diagnostics_after(self, uri: str, count: int) -> list[types.Diagnostic]:
        """The diagnostics of the final result once `count` publications have arrived for uri
        (anytime explanations publish earlier stages first; "ready" or "error" ends a job)."""
        await self.wait_for(lambda: len(self.diagnostics[uri]) > count and self.settled(uri))
        return self.diagnostics[uri][-1]

    def settled(self, uri: str) -> bool:
        """The latest status of uri says its job ended (its final result is shown)."""
        mine = [s for s in self.statuses if s.get("uri") == uri]
        return bool(mine) and mine[-1]["stage"] in ("ready", "error")

    async def hover(self, uri: str, line: int, character: int) -> types.Hover | None:
        return await self.client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        )

    async def semantic_tokens(self, uri: str) -> types.SemanticTokens | None:
        return await self.client.text_document_semantic_tokens_full_async(
            types.SemanticTokensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    async def command(self, name: str, *args: Any) -> Any:
        return to_plain(
            await self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(args))
            )
        )

    async def explanation(self, uri: str) -> dict[str, Any]:
        """The server's custom promptxray/explanation request, as plain JSON data."""
        return to_plain(
            await self.client.protocol.send_request_async("promptxray/explanation", {"uri": uri})
        )


def to_plain(obj: Any) -> Any:
    """pygls hands custom results back as named tuples; turn them into dicts and lists."""
    if hasattr(obj, "_asdict"):
        return {k: to_plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def decode_semantic_tokens(data: Sequence[int]) -> list[tuple[int, int, int, int, int]]:
    """(line, start char, length, type, modifiers) from LSP's relative encoding."""
    out = []
    line = col = 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, mods = data[i : i + 5]
        line += dl
        col = col + dc if dl == 0 else dc
        out.append((line, col, length, kind, mods))
    return out
