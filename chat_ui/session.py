"""One browser session's conversation: its turns (`Turn`), the explanation language, and the
choices the page offers from them (replies, sentences of a reply, words of the last message,
the alternatives a reply can be contrasted with: "why not …?").

A session lives in a `gr.State`; Gradio gives each browser tab its own deep copy of `Session()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promptxray.chat_ui.conversation import Conversation, Prompt, clean, sentences
from promptxray.chat_ui.engine import ExplainResult

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative

WHOLE = "Whole reply"
_REPLY_RE = re.compile(r"^Reply (\d+)")
_SENTENCE_RE = re.compile(r"^(\d+)\. ")
_WORD_CHOICE_RE = re.compile(r"^(\d+): ")
WORD_RE = re.compile(r"\S+")

# (method, end character of the explained part or None, foil or None): a contrastive
# explanation ("why the reply rather than the foil?") is another explanation of the reply
ExplainKey = tuple[str, int | None, str | None]


@dataclass
class Turn:
    """One message and its reply, with the prompt the reply was generated from (its ids are
    reused to explain it) and every explanation made of it so far. `foil` is the alternative
    the user asked "why not …?" about (None: plain explanations); every explanation of the
    reply is made against it until it is cleared. `foil_options` caches the model's own
    alternative answers to the reply (None: not computed yet)."""

    user: str
    prompt: Prompt
    reply: str = ""
    ids: list[int] = field(default_factory=list)
    note: str | None = None
    stopped: bool = False
    explanations: dict[ExplainKey, ExplainResult] = field(default_factory=dict)
    shown: ExplainKey | None = None
    foil: str | None = None
    foil_options: list[Alternative] | None = None

    @property
    def conversation(self) -> Conversation:
        return self.prompt.conversation

    @property
    def shown_result(self) -> ExplainResult | None:
        return self.explanations.get(self.shown) if self.shown else None

    def show(self, key: ExplainKey, result: ExplainResult) -> None:
        self.explanations[key] = result
        self.shown = key


@dataclass
class Session:
    turns: list[Turn] = field(default_factory=list)
    lang: str = "en"
    # why the last message could not be sent (no model, an engine down), shown after the
    # conversation until a message is sent
    notice: str | None = None

    def history(self) -> list[tuple[str, str]]:
        """(message, reply) of the turns with a reply: what the next prompt includes."""
        return [(t.user, t.reply) for t in self.turns if clean(t.reply)]

    def index(self, choice: str | None) -> int | None:
        """Turn index from a reply label (None or no match: the latest reply)."""
        m = _REPLY_RE.match(choice or "")
        if m and 1 <= int(m.group(1)) <= len(self.turns):
            return int(m.group(1)) - 1
        for i in range(len(self.turns) - 1, -1, -1):
            if clean(self.turns[i].reply):
                return i
        return None

    def reply_choices(self) -> list[str]:
        return [reply_label(i, t) for i, t in enumerate(self.turns) if clean(t.reply)]

    def word_choices(self) -> list[str]:
        if not self.turns:
            return []
        words = WORD_RE.finditer(self.turns[-1].user)
        return [f"{i + 1}: {m.group(0)}" for i, m in enumerate(words)]

    def word(self, choice: str | None) -> re.Match[str] | None:
        """The word of the last message a word choice names (None: no such word)."""
        m = _WORD_CHOICE_RE.match(choice or "")
        words = list(WORD_RE.finditer(self.turns[-1].user)) if self.turns else []
        if not m or not (1 <= int(m.group(1)) <= len(words)):
            return None
        return words[int(m.group(1)) - 1]


def reply_label(i: int, turn: Turn) -> str:
    text = " ".join(turn.reply.split())
    return f"Reply {i + 1}: {text[:40] + ('…' if len(text) > 40 else '')}"


def sentence_choices(turn: Turn) -> list[str]:
    reply = clean(turn.reply)
    return [WHOLE] + [f"{n + 1}. {reply[s:e]}" for n, (s, e) in enumerate(sentences(reply))]


def upto(turn: Turn, sentence: str | None) -> int | None:
    """End character of the chosen sentence in the reply (None: the whole reply)."""
    if not sentence or sentence == WHOLE:
        return None
    m = _SENTENCE_RE.match(sentence)
    reply = clean(turn.reply)
    spans = sentences(reply)
    if not m or not (1 <= int(m.group(1)) <= len(spans)):
        return None
    end = spans[int(m.group(1)) - 1][1]
    return None if end >= len(reply) else end


def sentence_choice(turn: Turn, result: ExplainResult) -> str:
    """The sentence choice an explanation was made for (WHOLE for the whole reply)."""
    if result.whole_reply:
        return WHOLE
    end = len(result.target_text)
    for choice in sentence_choices(turn)[1:]:
        if upto(turn, choice) == end:
            return choice
    return WHOLE


def foil_label(foil: str, limit: int = 40) -> str:
    """An alternative as the page shows it: in quotes, so a leading space stays visible, and
    cut after `limit` characters."""
    return f"“{foil[:limit] + ('…' if len(foil) > limit else '')}”"
