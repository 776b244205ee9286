"""The Gradio page: layout and event wiring only (the handlers live in `handlers.py`).

`build_app(engine)` makes the Blocks; it never loads the model itself, so a model that fails
to load leaves a working page that says why. Under each reply the chat shows one short
explanation (the library's summary); the coloured conversation, the sentence choice and the
run's footer line sit below the chat, and the full report one click away in an accordion.
Under them "why not …?": the model's own top alternatives to the reply's first token (or any
text typed) to explain the reply against, until the foil is cleared.

Chat events and explanation events run in separate queues (`concurrency_id` "chat" and
"explain"), so a long explanation for one user does not hold up another user's reply; the
engine's model lock lets replies stream side by side and runs explanations one at a time.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from promptxray.chat_ui.engine import ChatEngine
from promptxray.chat_ui.handlers import Handlers
from promptxray.chat_ui.session import WHOLE, Session
from promptxray.explainers.nl import LANGUAGES

EXPLAIN_NOTE = (
    "Red: the part raised the probability of the reply; purple: it lowered it (scores scaled to "
    "the largest). Choosing a sentence explains the reply **up to and including** that "
    "sentence (the model reads a reply left to right, so a later sentence is scored together "
    "with the text before it). After “Why not?”, every score is about log P(reply) − "
    "log P(alternative): red favours the reply over the alternative, purple the alternative."
)
WHY_NOT_NOTE = (
    "**Why not …?** Explain the reply against an alternative answer: why the model said this "
    "rather than that. The choices are whole answers the model could have given instead "
    "(it branches where the reply was least certain and completes each branch), with the "
    "probability that its answer begins with each; the reply is explained again as it was "
    "generated (nothing is regenerated), and stays contrasted with the alternative until you "
    "clear it."
)


def build_app(
    engine: ChatEngine, chat_concurrency: int = 4, explain_concurrency: int = 2
) -> gr.Blocks:
    """The Blocks app over `engine` (the model loads on first use, not here)."""
    h = Handlers(engine)
    with gr.Blocks(title="promptxray chat") as demo:
        gr.Markdown(
            "# promptxray chat\nEvery reply is explained once it is finished: a short summary "
            "appears under the reply, the details below the chat. Click a reply to show its "
            "explanation."
        )
        model_status = gr.Markdown("Model: not loaded yet (it loads with the first message).")
        state = gr.State(Session())
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
                default = engine.default_method
                method = gr.Dropdown(
                    methods,
                    value=default if default in methods else (methods[0] if methods else None),
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
            footer_md = gr.Markdown(elem_id="footer")
            with gr.Group(elem_id="why-not-box"):
                gr.Markdown(WHY_NOT_NOTE)
                foil_choice = gr.Radio(
                    [],
                    label="Why not… (the model's own alternative answers; P: their probability)",
                    elem_id="foil-choices",
                )
                foil_text = gr.Textbox(
                    label="…or type another alternative (used instead of the choice above)",
                    elem_id="foil-text",
                    lines=1,
                )
                with gr.Row():
                    why_not_btn = gr.Button("Why not?", elem_id="why-not")
                    clear_foil_btn = gr.Button("Clear why-not", elem_id="clear-foil")
            with gr.Row():
                reexplain = gr.Button("Explain again")
                stop_explain = gr.Button("Stop explanation", variant="stop")
                why_btn = gr.Button("Ask the model why", elem_id="why")
            why_md = gr.Markdown(elem_id="self-explanation")
            with gr.Accordion("Full report", open=False, elem_id="report-box"):
                report_md = gr.Markdown(elem_id="report")
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
        explain_outputs = [status, conv_hl, sentence, report_md, footer_md, raw, chatbot]
        chat_kw: dict[str, Any] = {"concurrency_id": "chat", "concurrency_limit": chat_concurrency}
        explain_kw: dict[str, Any] = {
            "concurrency_id": "explain",
            "concurrency_limit": explain_concurrency,
            "api_visibility": "private",
        }

        def whole() -> str:
            return WHOLE

        def with_foils(event: Any) -> Any:
            """`event` (an explanation), then the "why not" choices of its reply."""
            event.then(h.foils, [reply_sel, state], foil_choice, **explain_kw)
            return event

        def then_explain(event: Any) -> Any:
            """After `event`: back to the whole reply, then explain it."""
            reset = event.then(whole, None, sentence, api_visibility="private")
            return with_foils(reset.then(h.explain, explain_inputs, explain_outputs, **explain_kw))

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

        # the public "explain" endpoint first: private events reuse the function's name
        public = {**explain_kw, "api_visibility": "public"}
        explains: list[Any] = [
            with_foils(
                reexplain.click(
                    h.explain, explain_inputs, explain_outputs, api_name="explain", **public
                )
            )
        ]
        explains += [then_explain(ev) for ev in (submit, click, again)]
        why_not_inputs = [reply_sel, method, sentence, foil_choice, foil_text, state]
        explains += [
            with_foils(ev)
            for ev in (
                sentence.input(h.explain, explain_inputs, explain_outputs, **explain_kw),
                method.input(h.explain, explain_inputs, explain_outputs, **explain_kw),
                reply_sel.input(whole, None, sentence, api_visibility="private").then(
                    h.explain, explain_inputs, explain_outputs, **explain_kw
                ),
                why_not_btn.click(
                    h.why_not, why_not_inputs, explain_outputs, api_name="why_not", **public
                ),
                foil_text.submit(h.why_not, why_not_inputs, explain_outputs, **explain_kw),
                clear_foil_btn.click(
                    h.clear_foil,
                    explain_inputs,
                    [*explain_outputs, foil_text],
                    api_name="clear_why_not",
                    **public,
                ),
            )
        ]
        explains.append(
            then_explain(chatbot.select(h.pick, [state], reply_sel, api_visibility="private"))
        )
        stop.click(None, None, None, cancels=[submit, click, again, *explains])
        stop_explain.click(None, None, None, cancels=explains)
        what = what_if_btn.click(
            h.what_if,
            [word, replacement, max_new, temperature, state],
            what_if_md,
            api_name="what_if",
            **public,
        )
        stop.click(None, None, None, cancels=[what])
        language.input(
            h.set_language,
            [language, reply_sel, state],
            [state, chatbot, report_md],
            api_visibility="private",
        )
        why_btn.click(h.why, [reply_sel, state], why_md, api_name="why", **public)
        json_btn.click(h.export_json, [state], export_file, api_name="export_json")
        html_btn.click(h.export_html, [state], export_file, api_name="export_html")
        demo.load(engine.status, None, model_status, api_visibility="private")
    demo.queue(default_concurrency_limit=chat_concurrency)
    return demo
