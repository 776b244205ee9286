"""What the page shows of a session: chat messages, the coloured conversation, the run's footer
line and the full report. Every sentence about an explanation comes from
`promptxray.explainers.nl` (the bubble's summary, the report); nothing here composes one.

Each view states faithfulness once: the bubble's summary carries the verdict in words, the
full report (collapsed, one click away) the figures; the footer line has neither.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

from promptxray.chat_ui.engine import ExplainResult
from promptxray.chat_ui.session import Session, foil_label
from promptxray.explainers import nl


def against(result: ExplainResult) -> str:
    """ ", rather than “foil”" for a contrastive explanation ("why not …?"), else ""."""
    foil = result.explanation.foil
    return "" if foil is None else f", rather than {foil_label(foil.text)}"


def explanation_title(result: ExplainResult) -> str:
    part = "" if result.whole_reply else ", up to the selected sentence"
    return f"Explanation ({result.explanation.method}{part}{against(result)})"


def bubble(result: ExplainResult, lang: str, threshold: float) -> dict[str, Any]:
    """The one message under a reply: the library's summary; the title line carries the
    method and (as Gradio shows a thought's duration) the time it took."""
    return {
        "role": "assistant",
        "content": nl.summary(result.explanation, lang=lang, threshold=threshold),
        "metadata": {"title": explanation_title(result), "duration": round(result.seconds, 2)},
    }


def chat_history(session: Session, threshold: float) -> list[dict[str, Any]]:
    """Chatbot messages for the conversation: notes appear as titled assistant messages,
    the shown explanation of a reply as one short message under it, and why the last message
    could not be sent (the session's notice) at the end."""
    out: list[dict[str, Any]] = []
    for turn in session.turns:
        out.append({"role": "user", "content": turn.user})
        if turn.note:
            out.append({"role": "assistant", "content": turn.note, "metadata": {"title": "Note"}})
        reply = turn.reply
        if turn.stopped:
            reply = (reply + " …" if reply else "…") + "\n\n*(stopped)*"
        out.append({"role": "assistant", "content": reply})
        result = turn.shown_result
        if result is not None:
            out.append(bubble(result, session.lang, threshold))
    if session.notice:  # after every turn's messages: `message_turns` maps none to it
        out.append({"role": "assistant", "content": session.notice, "metadata": {"title": "Error"}})
    return out


def message_turns(session: Session) -> list[int]:
    """For each Chatbot message of `chat_history(session)`, the index of its turn."""
    out: list[int] = []
    for i, turn in enumerate(session.turns):
        out += [i] * (2 + bool(turn.note) + (turn.shown_result is not None))
    return out


def highlighted(result: ExplainResult) -> list[tuple[str, float | None]]:
    """(text, score) pairs over the conversation (front matter left out), scores scaled to
    [-1, 1] by the largest |score|; unscored text (role lines, template) has None."""
    conv, expl = result.conversation, result.explanation
    source = conv.text
    spans = sorted(
        (s for s in expl.spans if 0 <= s.start < s.end <= len(source)), key=lambda s: s.start
    )
    top = max((abs(s.score) for s in spans if math.isfinite(s.score)), default=0.0) or 1.0
    out: list[tuple[str, float | None]] = []
    pos = conv.body_start
    for s in spans:
        if s.start < pos:
            continue
        if s.start > pos:
            out.append((source[pos : s.start], None))
        score = s.score if math.isfinite(s.score) else 0.0
        out.append((source[s.start : s.end], round(score / top, 4)))
        pos = s.end
    if pos < len(source):
        out.append((source[pos:], None))
    return out


def footer(result: ExplainResult) -> str:
    """One line about the run (what was explained, how, how long), no finding."""
    expl = result.explanation
    part = (
        "the whole reply"
        if result.whole_reply
        else "the reply up to and including the selected sentence"
    )
    foil = expl.foil
    if foil is not None:
        part += f" rather than {quoted(foil.text)}"
    return (
        f"Explained {part} · method **{expl.method}** · backend **{expl.backend}** · "
        f"{expl.model} · {result.seconds:.2f} s · {expl.forward_passes} forward passes"
    )


def quoted(foil: str) -> str:
    """A foil in a Markdown line: quoted, Markdown's markup characters escaped."""
    label = foil_label(foil)
    return label[0] + re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", label[1:-1]) + label[-1]


def markdown_lines(text: str) -> str:
    """Plain multi-line text for a Markdown component: escaped, line breaks kept."""
    return html.escape(text, quote=False).replace("\n", "  \n")


def report(result: ExplainResult, lang: str, threshold: float) -> str:
    """The library's full report (with the model's own account once it was asked)."""
    return markdown_lines(nl.describe(result.explanation, lang=lang, threshold=threshold))
