"""Tokens for a model whose tokenizer is not known here (a hosted chat API): the prompt's
characters are its tokens, and the answer's tokens are the pieces the server generated.

The whole pipeline (units, variants, offsets) then works unchanged: a part of the prompt is a
set of characters of the file, and a prompt variant is text, which `messages` turns back into
the chat messages the server receives (it applies its own template). Ids below 0x110000 are
characters; ids from PIECE_BASE are answer pieces, registered as the server sends them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

ROLE = "\ufdd0"  # begins a message's role (a Unicode noncharacter: never in a user's text)
BODY = "\ufdd1"  # ends the role and begins the content
END_ID = 0x10FFFF + 1  # the end of an answer (the server stopped by itself)
PIECE_BASE = 0x200000  # the first id of an answer piece


class TextTokenizer:
    """The tokenizer interface the backends use (`__call__` with offsets, `decode`,
    `apply_chat_template`), over characters and registered answer pieces."""

    is_fast = True
    chat_template = "(the server's own)"  # truthy: messages go to the server as messages
    pad_token_id = ord(" ")
    eos_token_id = END_ID
    unk_token_id = None
    bos_token_id = None
    all_special_ids: ClassVar[list[int]] = [END_ID]

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._ids: dict[bytes, int] = {}
        self._split: set[int] = set()  # pieces that are a server's own tokens
        self._lock = threading.Lock()

    # --- the interface of a transformers tokenizer that Backend uses -------------------------
    def __call__(
        self, text: str, add_special_tokens: bool = False, return_offsets_mapping: bool = False
    ) -> dict[str, Any]:
        ids = [ord(c) for c in text]
        out: dict[str, Any] = {"input_ids": ids}
        if return_offsets_mapping:
            out["offset_mapping"] = [(i, i + 1) for i in range(len(text))]
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.piece_bytes(ids, skip_special_tokens).decode("utf-8", errors="replace")

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool = False, **_: Any
    ) -> str:
        return "".join(f"{ROLE}{m['role']}{BODY}{m['content']}" for m in messages)

    # --- pieces --------------------------------------------------------------------------------
    def piece_id(self, data: bytes, server_token: bool = True) -> int:
        """The id of an answer piece (registered on first sight); `server_token`: the piece
        is one of the server's own tokens, not a whole text the user gave."""
        with self._lock:
            found = self._ids.get(data)
            if found is None:
                found = PIECE_BASE + len(self._pieces)
                self._pieces.append(data)
                self._ids[data] = found
            if server_token:
                self._split.add(found)
            return found

    def is_server_token(self, token_id: int) -> bool:
        return token_id in self._split

    def piece_bytes(self, ids: Sequence[int], skip_special: bool = False) -> bytes:
        out = bytearray()
        for i in ids:
            i = int(i)
            if i >= PIECE_BASE:
                out += self._pieces[i - PIECE_BASE]
            elif i == END_ID:
                if not skip_special:
                    out += b"<end>"
            else:
                out += chr(i).encode("utf-8", errors="surrogatepass")
        return bytes(out)


def messages_of(text: str) -> list[dict[str, str]]:
    """The chat messages a rendered prompt (from `apply_chat_template`) holds; messages left
    empty by a variant are dropped (a server may refuse them), but at least one remains."""
    out: list[dict[str, str]] = []
    for chunk in text.split(ROLE)[1:]:
        role, _, content = chunk.partition(BODY)
        out.append({"role": role, "content": content})
    kept = [m for m in out if m["content"].strip()]
    return kept or out[-1:] or [{"role": "user", "content": text}]
