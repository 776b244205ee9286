"""The chat's "What if…": remove or replace one word of the last message, generate a new reply
and score the old reply under the edited prompt (the words are `nl.front_text`'s)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from promptxray.chat_ui import views
from promptxray.chat_ui.conversation import clean
from promptxray.chat_ui.engine import ChatEngine
from promptxray.chat_ui.session import Session
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl.front_text import what_if_action, what_if_text


def run_what_if(
    engine: ChatEngine,
    session: Session,
    word: str | None,
    replacement: str,
    max_new_tokens: float,
    temperature: float,
) -> Iterator[str]:
    """Stream the what-if's progress, then its result in the session's language: the edited
    message, the new reply and the old reply's probability before and after the edit."""
    if not session.turns or not clean(session.turns[-1].reply):
        yield "Send a message first."
        return
    w = session.word(word)
    if w is None:
        yield "Choose a word of your last message first."
        return
    turn = session.turns[-1]
    repl = clean(replacement or "")
    edited = turn.user[: w.start()] + repl + turn.user[w.end() :]
    edited = clean(re.sub(r"[ \t]{2,}", " ", edited) if not repl else edited)
    action = what_if_action(w.group(0), repl)  # the status lines are English, like the page
    if not clean(edited):
        yield f"After {action} the message is empty: nothing to run."
        return
    msgs = [dict(x) for x in turn.conversation.messages]
    msgs[-1]["content"] = edited
    try:
        prompt = engine.prompt_for(msgs, int(max_new_tokens))
        yield f"⏳ Running the edited message ({action})…"
        new_reply = ""
        for event in engine.stream(prompt, float(temperature)):
            new_reply = clean(event.text)
        old_ids = turn.ids or engine.backend().encode_target(turn.reply)
        before = engine.reply_logprob(turn.prompt, old_ids)
        after = engine.reply_logprob(prompt, old_ids)
    except PromptXrayError as exc:
        yield f"⚠️ {exc}"
        return
    esc = views.markdown_lines
    yield what_if_text(
        what_if_action(w.group(0), repl, session.lang),
        esc(edited),
        esc(new_reply),
        new_reply == clean(turn.reply),
        before,
        after,
        session.lang,
    )
