"""An in-memory LSP client for an in-process `PromptXrayServer`: JSON-RPC messages go through
pygls's own protocol (structuring, handlers, responses) without a subprocess or a pipe."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptxray.server.server import PromptXrayServer

TIMEOUT = 120.0
CAPABILITIES = {
    "window": {"workDoneProgress": True},
    "workspace": {
        "semanticTokens": {"refreshSupport": True},
        "codeLens": {"refreshSupport": True},
        "inlayHint": {"refreshSupport": True},
    },
    "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}},
}


class Wire:
    """Drives one server: requests, notifications, and a record of all it sent."""

    def __init__(self, ls: PromptXrayServer | None = None) -> None:
        self.ls = ls or PromptXrayServer()
        self.sent: list[dict[str, Any]] = []  # the server's notifications and requests
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = 0
        self._changed = asyncio.Event()
        self.versions: dict[str, int] = {}
        self.ls.protocol.set_writer(self, include_headers=False)

    # --- the writer pygls sends through --------------------------------------------------------
    def write(self, data: bytes) -> None:
        msg = json.loads(data)
        if "method" in msg:
            self.sent.append(msg)
            if "id" in msg:  # a request of the server's (progress/create, refresh): accept
                reply = {"jsonrpc": "2.0", "id": msg["id"], "result": None}
                asyncio.get_running_loop().call_soon(self._deliver, reply)
        else:
            future = self._pending.pop(msg["id"])
            if "error" in msg:
                future.set_exception(RuntimeError(msg["error"].get("message", msg["error"])))
            else:
                future.set_result(msg.get("result"))
        self._changed.set()

    def close(self) -> None:
        pass

    def _deliver(self, data: dict[str, Any]) -> None:
        self.ls.protocol.handle_message(self.ls.protocol.structure_message(data))

    # --- the client's side ---------------------------------------------------------------------
    async def request(self, method: str, params: Any = None) -> Any:
        self._ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        self._deliver({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})
        return await asyncio.wait_for(future, TIMEOUT)

    def notify(self, method: str, params: Any = None) -> None:
        self._deliver({"jsonrpc": "2.0", "method": method, "params": params})

    async def initialize(self, options: dict[str, Any]) -> Any:
        result = await self.request(
            "initialize",
            {"processId": None, "capabilities": CAPABILITIES, "initializationOptions": options},
        )
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str) -> str:
        uri = path.resolve().as_uri()
        self.versions[uri] = 1
        item = {"uri": uri, "languageId": "prompt", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})
        return uri

    def replace(self, uri: str, text: str) -> None:
        self.versions[uri] += 1
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": self.versions[uri]},
                "contentChanges": [{"text": text}],
            },
        )

    async def command(self, name: str, *args: Any) -> Any:
        return await self.request(
            "workspace/executeCommand", {"command": name, "arguments": list(args)}
        )

    async def hover(self, uri: str, line: int, character: int) -> Any:
        return await self.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )

    # --- what the server sent ------------------------------------------------------------------
    def params(self, method: str) -> list[Any]:
        return [m.get("params") for m in self.sent if m["method"] == method]

    def diagnostics(self, uri: str) -> list[list[dict[str, Any]]]:
        return [
            p["diagnostics"]
            for p in self.params("textDocument/publishDiagnostics")
            if p["uri"] == uri
        ]

    def statuses(self, uri: str) -> list[dict[str, Any]]:
        return [p for p in self.params("promptxray/status") if p["uri"] == uri]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        """Wait until predicate() is truthy (checked whenever the server sends something)."""

        async def loop() -> Any:
            while not (value := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return value

        return await asyncio.wait_for(loop(), timeout)

    async def published(self, uri: str, count: int = 0) -> list[dict[str, Any]]:
        """The diagnostics of the final result once more than `count` publications arrived for
        uri (anytime explanations publish earlier stages first; "ready"/"error" ends a job)."""
        await self.wait_for(lambda: len(self.diagnostics(uri)) > count and self.settled(uri))
        return self.diagnostics(uri)[-1]

    def settled(self, uri: str) -> bool:
        """The latest status of uri says its job ended (its final result is shown)."""
        mine = self.statuses(uri)
        return bool(mine) and mine[-1]["stage"] in ("ready", "error")
