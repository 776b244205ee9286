"""The Gradio app: chat with streamed replies, each reply explained once it is finished.

`build_app(engine)` makes the Blocks; it never loads the model itself, so a model that fails
to load leaves a working page that says why. Event handlers live in `Handlers` so tests can
call them without a browser. Each session's conversation is a `gr.State` dict:

    {"turns": [Turn, ...]}   Turn = {"user", "reply", "ids", "conv", "note", "stopped",
                                     "explanations": {(method, upto): ExplainResult},
                                     "shown": (method, upto) | None}

Chat events and explanation events run in separate queues (`concurrency_id` "chat" and
"explain"), so a long explanation for one user does not hold up another user's reply; the
engine's model lock lets replies stream side by side and runs explanations one at a time.
"""

from __future__ import annotations

import html
import json
import queue
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from promptxray.chat_ui.engine import (
    Cancelled,
    ChatEngine,
    Conversation,
    ExplainResult,
    GenSettings,
    build_conversation,
    clean,
    footer,
    highlighted,
    sentences,
    summary,
)
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import LANGUAGES, describe, describe_self_explanation
from promptxray.explainers.render import format_prob

WHOLE = "Whole reply"
_REPLY_RE = re.compile(r"^Reply (\d+)")
_WORD_RE = re.compile(r"\S+")
EXPLAIN_NOTE = (
    "Red: the part raised the probability of the reply; purple: it lowered it (scores scaled to "
    "the largest). Choosing a sentence explains the reply **up to and including** that "
    "sentence (the model reads a reply left to right, so a later sentence is scored together "
    "with the text before it)."
)

Turn = dict[str, Any]
State = dict[str, Any]


def new_state() -> State:
    return {"turns": []}


def _turns(state: State | None) -> list[Turn]:
    if state is None:
        return []
    return state.setdefault("turns", [])


def chat_history(state: State) -> list[dict[str, Any]]:
    """Chatbot messages for the conversation: notes appear as titled assistant messages."""
    out: list[dict[str, Any]] = []
    for turn in _turns(state):
        out.append({"role": "user", "content": turn["user"]})
        if turn.get("note"):
            out.append(
                {"role": "assistant", "content": turn["note"], "metadata": {"title": "Note"}}
            )
        reply = turn["reply"]
        if turn.get("stopped"):
            reply = (reply + " …" if reply else "…") + "\n\n*(stopped)*"
        out.append({"role": "assistant", "content": reply})
        shown = turn.get("shown")
        result = turn.get("explanations", {}).get(shown) if shown else None
        if result is not None:
            out.append(
                {
                    "role": "assistant",
                    "content": summary(result) + "\n\n" + footer(result),
                    "metadata": {"title": f"Explanation ({result.explanation.method})"},
                }
            )
    return out


def message_turns(state: State) -> list[int]:
    """For each Chatbot message of `chat_history(state)`, the index of its turn."""
    out: list[int] = []
    for i, turn in enumerate(_turns(state)):
        shown = turn.get("shown")
        extra = bool(turn.get("note")) + bool(shown and shown in turn.get("explanations", {}))
        out += [i] * (2 + extra)
    return out


def reply_label(i: int, turn: Turn) -> str:
    text = " ".join(turn["reply"].split())
    return f"Reply {i + 1}: {text[:40] + ('…' if len(text) > 40 else '')}"


def reply_choices(state: State) -> list[str]:
    return [reply_label(i, t) for i, t in enumerate(_turns(state)) if clean(t["reply"])]


def word_choices(state: State) -> list[str]:
    turns = _turns(state)
    if not turns:
        return []
    return [f"{i + 1}: {m.group(0)}" for i, m in enumerate(_WORD_RE.finditer(turns[-1]["user"]))]


def sentence_choices(turn: Turn) -> list[str]:
    reply = clean(turn["reply"])
    return [WHOLE] + [f"{n + 1}. {reply[s:e]}" for n, (s, e) in enumerate(sentences(reply))]


def _index(choice: str | None, state: State) -> int | None:
    """Turn index from a reply label (None or no match: the latest reply)."""
    turns = _turns(state)
    m = _REPLY_RE.match(choice or "")
    if m and 1 <= int(m.group(1)) <= len(turns):
        return int(m.group(1)) - 1
    for i in range(len(turns) - 1, -1, -1):
        if clean(turns[i]["reply"]):
            return i
    return None


def _upto(turn: Turn, sentence: str | None) -> int | None:
    """End character of the chosen sentence in the reply (None: the whole reply)."""
    if not sentence or sentence == WHOLE:
        return None
    m = re.match(r"^(\d+)\. ", sentence)
    spans = sentences(clean(turn["reply"]))
    if not m or not (1 <= int(m.group(1)) <= len(spans)):
        return None
    end = spans[int(m.group(1)) - 1][1]
    return None if end >= len(clean(turn["reply"])) else end


def result_json(result: ExplainResult, index: int) -> dict[str, Any]:
    """The explanation as JSON for the UI and exports. Its "path" key is renamed "prompt_path":
    Gradio clients take any dict with a "path" string for a file to download."""
    conv = result.conversation
    expl = result.explanation.to_dict()
    expl["prompt_path"] = expl.pop("path", None)
    return {
        "reply_index": index,
        "source": conv.text,
        "messages": conv.messages,
        "message_spans": [list(s) for s in conv.spans],
        "target_text": result.target_text,
        "whole_reply": result.whole_reply,
        "seconds": result.seconds,
        "explanation": expl,
    }


class Handlers:
    """Every event handler of the app, bound to one engine."""

    def __init__(self, engine: ChatEngine, export_dir: str | None = None) -> None:
        self.engine = engine
        self.export_dir = Path(export_dir or tempfile.mkdtemp(prefix="promptxray-chat-"))

    # --- chat -----------------------------------------------------------------------------------
    def _updates(self, state: State, select_latest: bool = True) -> tuple[Any, Any, Any]:
        choices = reply_choices(state)
        value = choices[-1] if (choices and select_latest) else None
        words = word_choices(state)
        return (
            chat_history(state),
            gr.update(choices=choices, value=value),
            gr.update(choices=words, value=None),
        )

    def chat(
        self,
        message: str,
        system_prompt: str,
        max_new_tokens: float,
        temperature: float,
        state: State | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Send `message` and stream the reply. Outputs: chatbot, textbox, state, reply
        selector, word selector."""
        state = state if state is not None else new_state()
        if not clean(message or ""):
            gr.Warning("The message is empty: nothing was sent.")
            views = self._updates(state)
            yield (views[0], message, state, *views[1:])
            return
        turns = _turns(state)
        settings = GenSettings(int(max_new_tokens), float(temperature), system_prompt or "")
        history = [(t["user"], t["reply"]) for t in turns if clean(t["reply"])]
        try:
            prepared = self.engine.prepare(history, message, settings)
        except PromptXrayError as exc:
            gr.Warning(str(exc))
            views = self._updates(state)
            yield (views[0], message, state, *views[1:])
            return
        turn: Turn = {
            "user": clean(message),
            "reply": "",
            "ids": [],
            "conv": prepared.conversation,
            "note": prepared.note,
            "stopped": False,
            "explanations": {},
            "shown": None,
        }
        turns.append(turn)
        if prepared.note:
            gr.Info(prepared.note)
        stop = threading.Event()
        done = False
        try:
            views = self._updates(state, select_latest=False)
            yield (views[0], "", state, *views[1:])
            for event in self.engine.stream(prepared, settings.temperature, stop):
                turn["reply"], turn["ids"] = clean(event.text), event.ids
                if event.done:
                    turn["stopped"] = event.stopped
                    done = True
                    break
                yield (chat_history(state), "", state, gr.update(), gr.update())
        except PromptXrayError as exc:
            turn["note"] = ((turn["note"] or "") + f" Error: {exc}").strip()
            done = True
        finally:
            if not done:  # cancelled by the stop button: keep what was streamed
                stop.set()
                turn["stopped"] = True
        views = self._updates(state)
        yield (views[0], "", state, *views[1:])

    def retry(
        self, system_prompt: str, max_new_tokens: float, temperature: float, state: State | None
    ) -> Iterator[tuple[Any, ...]]:
        """Drop the last reply and generate it again from the same message."""
        state = state if state is not None else new_state()
        turns = _turns(state)
        if not turns:
            gr.Warning("There is no message to retry.")
            views = self._updates(state)
            yield (views[0], gr.update(), state, *views[1:])
            return
        last = turns.pop()
        count = len(turns)
        yield from self.chat(last["user"], system_prompt, max_new_tokens, temperature, state)
        if len(turns) == count:  # the retry could not run: keep the old reply
            turns.append(last)
            views = self._updates(state)
            yield (views[0], "", state, *views[1:])

    def undo(self, state: State | None) -> tuple[Any, ...]:
        """Remove the last turn and put its message back into the textbox."""
        state = state if state is not None else new_state()
        turns = _turns(state)
        text = turns.pop()["user"] if turns else gr.update()
        views = self._updates(state)
        return (views[0], text, state, *views[1:])

    # --- explanation ----------------------------------------------------------------------------
    def _show(self, state: State, index: int, result: ExplainResult, status: str) -> tuple:
        turn = _turns(state)[index]
        upto = None if result.whole_reply else len(result.target_text)
        choice = WHOLE
        for c in sentence_choices(turn)[1:]:
            if upto is not None and _upto(turn, c) == upto:
                choice = c
        return (
            status,
            highlighted(result),
            gr.update(choices=sentence_choices(turn), value=choice),
            summary(result) + "\n\n" + describe(result.explanation, lang=state.get("lang", "en")),
            footer(result),
            result_json(result, index),
            chat_history(state),
        )

    def explain(
        self,
        reply_choice: str | None,
        method: str | None,
        sentence: str | None,
        state: State | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Explain the chosen reply (default: the latest) with `method`, targeting the whole
        reply or its part up to the chosen sentence. Outputs: status, highlighted conversation,
        sentence selector, summary, footer, JSON, chatbot (the summary under the reply)."""
        keep = (gr.update(),) * 6
        state = state if state is not None else new_state()
        index = _index(reply_choice, state)
        if index is None:
            yield ("Nothing to explain yet: send a message first.", *keep)
            return
        turn = _turns(state)[index]
        method = method or self.engine.default_method
        upto = _upto(turn, sentence)
        key = (method, upto)
        if key in turn["explanations"]:
            turn["shown"] = key
            yield self._show(state, index, turn["explanations"][key], "Explanation (cached).")
            return
        label = f"reply {index + 1}"
        yield (f"⏳ Explaining {label} with **{method}**…", *keep)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def progress(stage: str, done: int, total: int) -> None:
            events.put(("progress", (stage, done, total)))

        def work() -> None:
            try:
                result = self.engine.explain(
                    turn["conv"], turn["reply"], turn["ids"], method, upto, progress, stop
                )
                events.put(("done", result))
            except BaseException as exc:
                events.put(("error", exc))

        thread = threading.Thread(target=work, daemon=True, name="promptxray-explain")
        thread.start()
        finished = False
        try:
            while True:
                kind, payload = events.get()
                if kind == "progress":
                    stage, done, total = payload
                    what = {"target": "scoring the reply", "attribute": "scoring variants"}.get(
                        stage, stage
                    )
                    yield (
                        f"⏳ Explaining {label} with **{method}**: {what} {done}/{total}…",
                        *keep,
                    )
                    continue
                finished = True
                if kind == "error":
                    if isinstance(payload, Cancelled):
                        yield ("Explanation stopped; the conversation is unchanged.", *keep)
                    elif isinstance(payload, PromptXrayError):
                        yield (f"⚠️ Cannot explain {label}: {payload}", *keep)
                    else:
                        yield (
                            f"⚠️ Explaining {label} failed: {type(payload).__name__}: {payload}",
                            *keep,
                        )
                    return
                result: ExplainResult = payload
                turn["explanations"][key] = result
                turn["shown"] = key
                yield self._show(state, index, result, f"Explained {label}.")
                return
        finally:
            if not finished:  # stopped from the UI: the worker quits at its next batch
                stop.set()

    def set_language(self, lang: str | None, state: State | None) -> State:
        """The language of plain-language explanations for this session."""
        state = state if state is not None else new_state()
        state["lang"] = lang if lang in LANGUAGES else "en"
        return state

    def why(self, reply_choice: str | None, state: State | None) -> str:
        """Ask the model why it gave the shown explanation's reply, and check its answer
        against the measured attributions (on demand: it costs a generation)."""
        state = state if state is not None else new_state()
        index = _index(reply_choice, state)
        if index is None:
            return "Nothing to ask about yet: send a message first."
        turn = _turns(state)[index]
        result = turn["explanations"].get(turn.get("shown"))
        if result is None:
            return "Explain this reply first: the model's answer is checked against it."
        lang = state.get("lang", "en")
        try:
            found = self.engine.self_explain(result, lang)
        except PromptXrayError as exc:
            return f"⚠️ Cannot ask the model: {exc}"
        return html.escape(describe_self_explanation(found, lang)).replace("\n", "  \n")

    # --- what if --------------------------------------------------------------------------------
    def what_if(
        self,
        word: str | None,
        replacement: str,
        max_new_tokens: float,
        temperature: float,
        state: State | None,
    ) -> Iterator[str]:
        """Remove (empty replacement) or replace one word of the last message, then generate a
        new reply and score the old reply under the edited prompt."""
        state = state if state is not None else new_state()
        turns = _turns(state)
        if not turns or not clean(turns[-1]["reply"]):
            yield "Send a message first."
            return
        m = re.match(r"^(\d+): ", word or "")
        spans = list(_WORD_RE.finditer(turns[-1]["user"]))
        if not m or not (1 <= int(m.group(1)) <= len(spans)):
            yield "Choose a word of your last message first."
            return
        turn = turns[-1]
        w = spans[int(m.group(1)) - 1]
        user = turn["user"]
        repl = clean(replacement or "")
        edited = user[: w.start()] + repl + user[w.end() :]
        edited = clean(re.sub(r"[ \t]{2,}", " ", edited) if not repl else edited)
        action = f"replacing {w.group(0)!r} by {repl!r}" if repl else f"removing {w.group(0)!r}"
        if not clean(edited):
            yield f"After {action} the message is empty: nothing to run."
            return
        conv: Conversation = turn["conv"]
        msgs = [dict(x) for x in conv.messages]
        msgs[-1]["content"] = edited
        try:
            new_conv = build_conversation(msgs)
            yield f"⏳ Running the edited message ({action})…"
            from promptxray.chat_ui.engine import Prepared

            backend = self.engine.backend()
            from promptxray.explainers.documents import parse_document
            from promptxray.explainers.inputs import build_input

            ids = build_input(parse_document(new_conv.text, "chat.prompty"), backend).ids
            max_new = max(1, min(int(max_new_tokens), backend.context_length - len(ids)))
            prepared = Prepared(new_conv, ids, None, 0, max_new)
            new_reply = ""
            for event in self.engine.stream(prepared, float(temperature)):
                new_reply = clean(event.text)
            old_ids = turn["ids"] or self.engine.backend().encode_target(turn["reply"])
            before = self.engine.reply_logprob(conv, old_ids)
            after = self.engine.reply_logprob(new_conv, old_ids)
        except PromptXrayError as exc:
            yield f"⚠️ {exc}"
            return
        import math

        def fmt(lp: float) -> str:
            return format_prob(math.exp(lp))

        same = "the same reply" if new_reply == clean(turn["reply"]) else "a different reply"
        yield (
            f"**What if** ({action}): the edited message is “{html.escape(edited)}”.\n\n"
            f"The model now gives {same}: “{html.escape(new_reply)}”.\n\n"
            f"The probability of the old reply went from {fmt(before)} to {fmt(after)} "
            f"(log P {before:.2f} → {after:.2f})."
        )

    # --- export ---------------------------------------------------------------------------------
    def _explained(self, state: State) -> list[tuple[int, Turn, ExplainResult | None]]:
        out = []
        for i, t in enumerate(_turns(state)):
            key = t.get("shown")
            out.append((i, t, t["explanations"].get(key) if key else None))
        return out

    def export_json(self, state: State | None) -> str | None:
        state = state if state is not None else new_state()
        if not _turns(state):
            gr.Warning("Nothing to export yet.")
            return None
        data = {
            "model": self.engine.model_name or "default",
            "turns": [
                {
                    "user": t["user"],
                    "reply": t["reply"],
                    "note": t.get("note"),
                    "stopped": t.get("stopped", False),
                    "prompt": t["conv"].text,
                    "explanations": [
                        result_json(r, i) | {"method": k[0], "upto": k[1]}
                        for k, r in t["explanations"].items()
                    ],
                }
                for i, t, _ in self._explained(state)
            ],
        }
        path = self.export_dir / "promptxray-chat.json"
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        return str(path)

    def export_html(self, state: State | None) -> str | None:
        from promptxray.explainers.render import render_html

        state = state if state is not None else new_state()
        if not _turns(state):
            gr.Warning("Nothing to export yet.")
            return None
        head, sections = "", []
        for i, t, r in self._explained(state):
            esc = html.escape
            body = f"<p><b>User:</b> {esc(t['user'])}</p><p><b>Assistant:</b> {esc(t['reply'])}</p>"
            if r is None:
                body += "<p><i>Not explained.</i></p>"
            else:
                page = render_html(r.explanation, r.conversation.text, f"Reply {i + 1}")
                if not head:
                    head = page[page.index("<head>") + 6 : page.index("</head>")]
                body += f"<p>{esc(summary(r))}</p>"
                body += page[page.index("<body>") + 6 : page.index("</body>")]
            sections.append(f'<section id="turn-{i + 1}"><h2>Turn {i + 1}</h2>{body}</section>')
        head = head or '<meta charset="utf-8"><title>promptxray chat</title>'
        page = (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>\n'
            "<h1>promptxray chat export</h1>\n" + "\n<hr>\n".join(sections) + "\n</body>\n</html>\n"
        )
        path = self.export_dir / "promptxray-chat.html"
        path.write_text(page, encoding="utf-8")
        return str(path)


def build_app(engine: ChatEngine, chat_concurrency: int = 4, explain_concurrency: int = 2):
    """The Blocks app over `engine` (the model loads on first use, not here)."""
    h = Handlers(engine)
    with gr.Blocks(title="promptxray chat") as demo:
        gr.Markdown(
            "# promptxray chat\nEvery reply is explained once it is finished: a summary appears "
            "under the reply and the details below the chat. Click a reply to show its "
            "explanation."
        )
        model_status = gr.Markdown("Model: not loaded yet (it loads with the first message).")
        state = gr.State(new_state())
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="chatbot")
                msg = gr.Textbox(
                    label="Message",
                    placeholder="Type a message and press Enter",
                    elem_id="message",
                    lines=1,
                )
                with gr.Row():
                    send = gr.Button("Send", variant="primary")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    retry = gr.Button("Retry")
                    undo = gr.Button("Undo")
            with gr.Column(scale=1):
                system = gr.Textbox(label="System prompt", lines=3)
                max_new = gr.Slider(1, 512, value=64, step=1, label="Max new tokens")
                temperature = gr.Slider(
                    0.0, 2.0, value=0.0, step=0.05, label="Temperature (0 = greedy)"
                )
                methods = engine.methods()
                method = gr.Dropdown(
                    methods,
                    value=engine.default_method
                    if engine.default_method in methods
                    else (methods[0] if methods else None),
                    label="Explanation method",
                    allow_custom_value=True,
                )
                language = gr.Dropdown(
                    list(LANGUAGES), value="en", label="Explanation language", elem_id="language"
                )
        with gr.Group():
            gr.Markdown("## Explanation of a reply")
            reply_sel = gr.Dropdown([], label="Reply", elem_id="reply-select")
            status = gr.Markdown(
                "Send a message: its reply is explained here.", elem_id="explain-status"
            )
            conv_hl = gr.HighlightedText(
                label="Conversation coloured by influence on the reply",
                show_legend=False,
                combine_adjacent=False,
                elem_id="explanation",
            )
            gr.Markdown(EXPLAIN_NOTE)
            sentence = gr.Radio(
                [WHOLE], value=WHOLE, label="Explain which part of the reply", elem_id="sentence"
            )
            summary_md = gr.Markdown(elem_id="summary")
            footer_md = gr.Markdown(elem_id="footer")
            with gr.Row():
                reexplain = gr.Button("Explain again")
                stop_explain = gr.Button("Stop explanation", variant="stop")
                why_btn = gr.Button("Ask the model why", elem_id="why")
            why_md = gr.Markdown(elem_id="self-explanation")
            with gr.Accordion("Raw explanation (JSON)", open=False):
                raw = gr.JSON()
        with gr.Accordion("What if…", open=False):
            gr.Markdown(
                "Remove one word of your last message (leave the replacement empty) or "
                "replace it, and run the model again for real."
            )
            word = gr.Dropdown([], label="Word of the last message")
            replacement = gr.Textbox(label="Replacement (empty: remove)")
            what_if_btn = gr.Button("Run what-if")
            what_if_md = gr.Markdown()
        with gr.Accordion("Export", open=False):
            with gr.Row():
                json_btn = gr.Button("Export JSON")
                html_btn = gr.Button("Export HTML")
            export_file = gr.File(label="Download")

        chat_outputs = [chatbot, msg, state, reply_sel, word]
        explain_inputs = [reply_sel, method, sentence, state]
        explain_outputs = [status, conv_hl, sentence, summary_md, footer_md, raw, chatbot]
        chat_kw: dict[str, Any] = {"concurrency_id": "chat", "concurrency_limit": chat_concurrency}
        explain_kw: dict[str, Any] = {
            "concurrency_id": "explain",
            "concurrency_limit": explain_concurrency,
        }

        gen_inputs = [msg, system, max_new, temperature, state]
        submit = msg.submit(h.chat, gen_inputs, chat_outputs, api_name="chat", **chat_kw)
        click = send.click(h.chat, gen_inputs, chat_outputs, api_visibility="private", **chat_kw)
        again = retry.click(
            h.retry,
            [system, max_new, temperature, state],
            chat_outputs,
            api_name="retry",
            **chat_kw,
        )
        undo.click(h.undo, [state], chat_outputs, api_name="undo")

        def whole() -> str:
            return WHOLE

        # the public "explain" endpoint first: private events reuse the function's name
        explains: list[Any] = [
            reexplain.click(
                h.explain, explain_inputs, explain_outputs, api_name="explain", **explain_kw
            )
        ]
        for ev in (submit, click, again):
            explains.append(
                ev.then(whole, None, sentence, api_visibility="private").then(
                    h.explain,
                    explain_inputs,
                    explain_outputs,
                    api_visibility="private",
                    **explain_kw,
                )
            )
        explains.append(
            sentence.input(
                h.explain, explain_inputs, explain_outputs, api_visibility="private", **explain_kw
            )
        )
        explains.append(
            method.input(
                h.explain, explain_inputs, explain_outputs, api_visibility="private", **explain_kw
            )
        )
        explains.append(
            reply_sel.input(whole, None, sentence, api_visibility="private").then(
                h.explain, explain_inputs, explain_outputs, api_visibility="private", **explain_kw
            )
        )

        def pick(state: State, evt: gr.SelectData) -> Any:
            owners = message_turns(state)
            index = evt.index if isinstance(evt.index, int) else None
            if index is None or not (0 <= index < len(owners)):
                return gr.update()
            turn = _turns(state)[owners[index]]
            return reply_label(owners[index], turn) if clean(turn["reply"]) else gr.update()

        explains.append(
            chatbot.select(pick, [state], reply_sel, api_visibility="private")
            .then(whole, None, sentence, api_visibility="private")
            .then(
                h.explain, explain_inputs, explain_outputs, api_visibility="private", **explain_kw
            )
        )
        stop.click(None, None, None, cancels=[submit, click, again, *explains])
        stop_explain.click(None, None, None, cancels=explains)
        what = what_if_btn.click(
            h.what_if,
            [word, replacement, max_new, temperature, state],
            what_if_md,
            api_name="what_if",
            **explain_kw,
        )
        stop.click(None, None, None, cancels=[what])
        language.input(h.set_language, [language, state], state, api_visibility="private")
        why_btn.click(h.why, [reply_sel, state], why_md, api_name="why", **explain_kw)
        json_btn.click(h.export_json, [state], export_file, api_name="export_json")
        html_btn.click(h.export_html, [state], export_file, api_name="export_html")
        demo.load(engine.status, None, model_status, api_visibility="private")
    demo.queue(default_concurrency_limit=chat_concurrency)
    return demo
