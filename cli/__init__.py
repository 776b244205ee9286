"""The `promptxray` command, a front end like the server and the chat: it explains prompt files
in the terminal, as JSON or HTML, and starts `lsp` and `chat` lazily (their packages are extras:
`promptxray[lsp]`, `promptxray[chat]`)."""

from __future__ import annotations

from promptxray.cli.main import main

__all__ = ["main"]
