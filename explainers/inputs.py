"""Turn a parsed prompt document into model token ids, keeping each token's span in the file.

The messages are rendered (through the model's chat template when it has one), tokenised once
with offsets, and every token is mapped back through a per-character map to the characters
the user wrote. Tokens made only of template scaffolding belong to no user span and are never
attributed.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.prompt.document import PromptDocument
from promptxray.explainers.types import Token

CharSpan = tuple[int, int]


@dataclass
class ModelInput:
    """Prompt ids for the model and the user tokens among them."""

    ids: list[int]
    positions: list[int]  # index into `ids` of each user token
    tokens: list[Token]
    chat: bool
    rendered: str


def render_messages(
    doc: PromptDocument, backend: Backend, chat: bool | None
) -> tuple[str, list[CharSpan | None], bool]:
    """The text the model reads and, per character, the file span it came from (None: template)."""
    use_chat = backend.has_chat_template if chat is None else chat
    if use_chat and not backend.has_chat_template:
        raise InvalidRequestError(f"{backend.model_id} has no chat template; turn chat off")
    contents = [m.content for m in doc.messages]
    if use_chat:
        try:
            rendered = backend.render_chat(
                [{"role": m.role, "content": m.content} for m in doc.messages]
            )
        except Exception as exc:  # jinja errors of the model's own template
            raise InvalidRequestError(
                f"the chat template of {backend.model_id} failed: {exc}"
            ) from exc
    else:
        rendered = "\n\n".join(contents)
    charmap: list[CharSpan | None] = [None] * len(rendered)
    cursor = 0
    for message in doc.messages:
        at = rendered.find(message.content, cursor)
        if at < 0:
            raise InvalidRequestError(
                f"the chat template of {backend.model_id} changes the message text; turn chat off"
            )
        charmap[at : at + len(message.content)] = message.char_spans()
        cursor = at + len(message.content)
    return rendered, charmap, use_chat


def build_input(doc: PromptDocument, backend: Backend, chat: bool | None = None) -> ModelInput:
    """Tokenise the rendered prompt and map each token to the user's characters."""
    rendered, charmap, use_chat = render_messages(doc, backend, chat)
    ids, offsets = backend.encode(rendered, add_special_tokens=not use_chat)
    positions: list[int] = []
    tokens: list[Token] = []
    for pos, (tid, (s, e)) in enumerate(zip(ids, offsets, strict=True)):
        spans = [span for span in charmap[s:e] if span is not None]
        if not spans:
            continue
        start = min(a for a, _ in spans)
        end = max(b for _, b in spans)
        piece = backend.piece(int(tid))
        if not piece.strip() and doc.source[start:end].strip():
            continue  # whitespace the tokenizer inserted (a SentencePiece prefix space)
        positions.append(pos)
        tokens.append(
            Token(
                index=len(tokens),
                text=doc.source[start:end],
                start=start,
                end=end,
                token_id=int(tid),
                piece=piece,
            )
        )
    return ModelInput(
        ids=list(ids), positions=positions, tokens=tokens, chat=use_chat, rendered=rendered
    )
