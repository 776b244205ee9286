"""Chat messages as Prompty text with offsets, and the prompt a reply is generated from.

A conversation is written as a chat transcript (`system:` / `user:` / `assistant:` lines, no
template syntax) with path `conversation.chat`, so every token and span offset of an
explanation indexes into that text. The
prompt of a reply (`Prompt`) keeps the conversation, its parsed document and the `ModelInput`
(ids and user tokens) made of it once: generation reads those ids and the explanation reuses
them, so a reply is explained under the very prompt it was generated from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.inputs import ModelInput, build_input
from promptxray.explainers.prompt.document import CHAT_ROLE_LINE, PromptDocument, parse_document

CHAT_PATH = "conversation.chat"
ROLES = ("system", "user", "assistant")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


@dataclass
class Conversation:
    """Chat messages as a transcript; `spans[i]` is (start, end) of message i's content."""

    text: str
    messages: list[dict[str, str]]
    spans: list[tuple[int, int]]
    body_start: int
    doc: PromptDocument  # the parse of `text` (checked to give back `messages`)


@dataclass
class Prompt:
    """The prompt a reply is generated from: the messages kept, their ids, and the note on
    what was left out to fit the model's context."""

    conversation: Conversation
    model_input: ModelInput
    note: str | None = None
    dropped_turns: int = 0
    max_new_tokens: int = 128

    @property
    def ids(self) -> list[int]:
        return self.model_input.ids


def clean(text: str) -> str:
    """Message text as the transcript keeps it (surrounding whitespace dropped, LF only)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def build_conversation(messages: list[dict[str, str]]) -> Conversation:
    """Transcript text of `messages` whose parse gives back exactly these messages.

    A line that is only `user:` (or another role) would start a new message: refused.
    """
    msgs = [{"role": m["role"], "content": clean(m["content"])} for m in messages]
    msgs = [m for m in msgs if m["content"]]
    if not msgs:
        raise InvalidRequestError("the conversation is empty")
    for m in msgs:
        if m["role"] not in ROLES:
            raise InvalidRequestError(f"unknown role {m['role']!r}")
        if any(CHAT_ROLE_LINE.fullmatch(line) for line in m["content"].split("\n")):
            raise InvalidRequestError(
                f"a {m['role']} message has a line that is only a role name "
                "(like 'user:'); it cannot be explained as written — reword that line"
            )
    head = ""
    parts: list[str] = [head]
    spans: list[tuple[int, int]] = []
    pos = len(head)
    for i, m in enumerate(msgs):
        prefix = ("\n" if i else "") + f"{m['role']}:\n"
        pos += len(prefix)
        parts += [prefix, m["content"], "\n"]
        spans.append((pos, pos + len(m["content"])))
        pos += len(m["content"]) + 1
    text = "".join(parts)
    doc = parse_document(text, CHAT_PATH)
    got = [(m.role, m.content) for m in doc.messages]
    if got != [(m["role"], m["content"]) for m in msgs]:
        raise InvalidRequestError("the conversation cannot be written as a prompt unchanged")
    return Conversation(text, msgs, spans, doc.body_start, doc)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence (or line) of `text`, whitespace trimmed, none empty."""
    out = []
    for m in _SENTENCE.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def tokenise(conversation: Conversation, backend: Backend) -> ModelInput:
    """The model's ids for `conversation` (its chat template when it has one)."""
    return build_input(conversation.doc, backend)


def chat_messages(
    system_prompt: str, turns: list[tuple[str, str]], message: str
) -> list[dict[str, str]]:
    """System prompt (if any), past (user, reply) turns and the new message, as messages."""
    msgs: list[dict[str, str]] = []
    if clean(system_prompt):
        msgs.append({"role": "system", "content": system_prompt})
    for user, reply in turns:
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    msgs.append({"role": "user", "content": message})
    return msgs


def fit_prompt(
    backend: Backend,
    history: list[tuple[str, str]],
    message: str,
    system_prompt: str = "",
    max_new_tokens: int = 128,
) -> Prompt:
    """The prompt for a new reply: system + past (user, reply) turns + `message`, dropping
    the oldest turns (then the start of the message) until it and the reply fit the context.
    The conversation is written and tokenised once when it fits (the usual case)."""
    message = clean(message)
    if not message:
        raise InvalidRequestError("the message is empty")
    limit = backend.context_length
    max_new = max(1, min(int(max_new_tokens), limit - 1))
    turns = list(history)

    def build(turns: list[tuple[str, str]], msg: str) -> tuple[Conversation, ModelInput]:
        conv = build_conversation(chat_messages(system_prompt, turns, msg))
        return conv, tokenise(conv, backend)

    conv, model_input = build(turns, message)
    dropped = 0
    notes: list[str] = []
    while backend.token_count(model_input.ids) + max_new > limit and turns:
        turns.pop(0)
        dropped += 1
        conv, model_input = build(turns, message)
    if dropped:
        notes.append(
            f"the conversation was longer than the model's context ({limit} tokens): "
            f"the oldest {dropped} turn(s) were left out of this reply's prompt"
        )
    if backend.token_count(model_input.ids) + max_new > limit:
        # Even alone the message is too long: keep its end (binary search on characters).
        lo, hi = 1, len(message)
        best: tuple[Conversation, ModelInput, str] | None = None
        while lo <= hi:
            keep = (lo + hi) // 2
            cut = clean(message[-keep:]) or message[-1]
            c, mi = build([], cut)
            if backend.token_count(mi.ids) + max_new <= limit:
                best, lo = (c, mi, cut), keep + 1
            else:
                hi = keep - 1
        if best is None:
            raise InvalidRequestError(
                f"the system prompt alone does not leave room for a reply in {limit} tokens"
            )
        conv, model_input, cut = best
        notes.append(
            f"the message is longer than the model's context ({limit} tokens): only its "
            f"last {len(cut)} of {len(message)} characters were sent"
        )
    note = ("Note: " + "; ".join(notes) + ".") if notes else None
    return Prompt(conv, model_input, note, dropped, max_new)
