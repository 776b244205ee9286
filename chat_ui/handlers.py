"""Every event handler of the chat page, bound to one engine (tests call them without a browser).

Chat handlers output (chatbot, textbox, state, reply selector, word selector); explanation
handlers (status, highlighted conversation, sentence selector, full report, footer, JSON,
chatbot). Long work runs through `generation.Pump`, so the handlers stream progress and Gradio's
cancel (the Stop buttons) stops the model at its next step.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import gradio as gr

from promptxray.chat_ui import export, views
from promptxray.chat_ui.conversation import clean
from promptxray.chat_ui.engine import ChatEngine, ExplainResult
from promptxray.chat_ui.generation import Cancelled, GenSettings, Pump
from promptxray.chat_ui.session import (
    Session,
    Turn,
    reply_label,
    sentence_choice,
    sentence_choices,
    upto,
)
from promptxray.chat_ui.what_if import run_what_if
from promptxray.explainers import nl
from promptxray.explainers.errors import PromptXrayError, UnsupportedMethodError
from promptxray.explainers.nl import LANGUAGES, describe_self_explanation
from promptxray.explainers.nl.front_text import alternative_choice
from promptxray.explainers.nl.stage_text import STAGE_PROGRESS

STAGES = {
    "target": "scoring the reply",
    "attribute": "scoring variants",
    **STAGE_PROGRESS,
}
KEEP = (gr.update(),) * 6  # the explanation outputs after the status line, left as they are
CLEAR_HINT = "Press “Clear why-not” to explain the reply on its own with this method."


def _with_hint(exc: PromptXrayError) -> str:
    """Why an explanation cannot run; for a method that cannot explain a foil, how to go on."""
    if isinstance(exc, UnsupportedMethodError) and "foil" in str(exc):
        return f"{str(exc).rstrip('.')}. {CLEAR_HINT}"
    return str(exc)


class Handlers:
    """Every event handler of the app, bound to one engine."""

    def __init__(self, engine: ChatEngine, export_dir: str | None = None) -> None:
        self.engine = engine
        self.export_dir = Path(export_dir or tempfile.mkdtemp(prefix="promptxray-chat-"))

    def _history(self, session: Session) -> list[dict[str, Any]]:
        return views.chat_history(session, self.engine.no_effect_threshold)

    # --- chat -----------------------------------------------------------------------------------
    def _chat_views(self, session: Session, box: Any, select_latest: bool = True) -> tuple:
        choices = session.reply_choices()
        value = choices[-1] if (choices and select_latest) else None
        return (
            self._history(session),
            box,
            session,
            gr.update(choices=choices, value=value),
            gr.update(choices=session.word_choices(), value=None),
        )

    def chat(
        self,
        message: str,
        system_prompt: str,
        max_new_tokens: float,
        temperature: float,
        state: Session | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Send `message` and stream the reply."""
        session = state if state is not None else Session()
        if not clean(message or ""):
            gr.Warning("The message is empty: nothing was sent.")
            yield self._chat_views(session, message)
            return
        settings = GenSettings(int(max_new_tokens), float(temperature), system_prompt or "")
        try:
            prompt = self.engine.prepare(session.history(), message, settings)
        except PromptXrayError as exc:  # no model (a served engine may be down): said in the
            gr.Warning(str(exc))  # chat, and the message stays in the box to send again
            session.notice = f"⚠️ The message was not sent: {exc}"
            yield self._chat_views(session, message)
            return
        session.notice = None
        turn = Turn(user=clean(message), prompt=prompt, note=prompt.note)
        session.turns.append(turn)
        if prompt.note:
            gr.Info(prompt.note)
        stop = threading.Event()
        done = False
        try:
            yield self._chat_views(session, "", select_latest=False)
            for event in self.engine.stream(prompt, settings.temperature, stop):
                turn.reply, turn.ids = clean(event.text), event.ids
                if event.done:
                    turn.stopped = event.stopped
                    done = True
                    break
                yield (self._history(session), "", session, gr.update(), gr.update())
        except PromptXrayError as exc:  # e.g. the engine went away: said under the message
            turn.note = ((turn.note or "") + f" Error: {exc}").strip()
            turn.stopped = bool(clean(turn.reply))  # a reply cut short shows as stopped
            done = True
        finally:
            if not done:  # cancelled by the stop button: keep what was streamed
                stop.set()
                turn.stopped = True
        yield self._chat_views(session, "")

    def retry(
        self, system_prompt: str, max_new_tokens: float, temperature: float, state: Session | None
    ) -> Iterator[tuple[Any, ...]]:
        """Drop the last reply and generate it again from the same message."""
        session = state if state is not None else Session()
        if not session.turns:
            gr.Warning("There is no message to retry.")
            yield self._chat_views(session, gr.update())
            return
        last = session.turns.pop()
        count = len(session.turns)
        yield from self.chat(last.user, system_prompt, max_new_tokens, temperature, session)
        if len(session.turns) == count:  # the retry could not run: keep the old reply
            session.turns.append(last)
            yield self._chat_views(session, "")

    def undo(self, state: Session | None) -> tuple[Any, ...]:
        """Remove the last turn and put its message back into the textbox."""
        session = state if state is not None else Session()
        text = session.turns.pop().user if session.turns else gr.update()
        session.notice = None
        return self._chat_views(session, text)

    def pick(self, state: Session, evt: gr.SelectData) -> Any:
        """A click on a chat message selects the reply of its turn."""
        owners = views.message_turns(state)
        index = evt.index if isinstance(evt.index, int) else None
        if index is None or not (0 <= index < len(owners)):
            return gr.update()
        turn = state.turns[owners[index]]
        return reply_label(owners[index], turn) if clean(turn.reply) else gr.update()

    # --- explanation ----------------------------------------------------------------------------
    def _show(self, session: Session, index: int, result: ExplainResult, status: str) -> tuple:
        turn = session.turns[index]
        threshold = self.engine.no_effect_threshold
        return (
            status,
            views.highlighted(result),
            gr.update(choices=sentence_choices(turn), value=sentence_choice(turn, result)),
            views.report(result, session.lang, threshold),
            views.footer(result),
            export.result_json(result, index),
            self._history(session),
        )

    def explain(
        self,
        reply_choice: str | None,
        method: str | None,
        sentence: str | None,
        state: Session | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Explain the chosen reply (default: the latest) with `method`, targeting the whole
        reply or its part up to the chosen sentence; the summary appears under the reply.
        A reply asked "why not …?" about is explained against its foil until it is cleared."""
        session = state if state is not None else Session()
        index = session.index(reply_choice)
        if index is None:
            yield ("Nothing to explain yet: send a message first.", *KEEP)
            return
        yield from self._explain(session, index, method, sentence, session.turns[index].foil)

    def why_not(
        self,
        reply_choice: str | None,
        method: str | None,
        sentence: str | None,
        choice: str | None,
        text: str | None,
        state: Session | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Explain the chosen reply again (on the ids it was generated from) against a foil:
        why the reply rather than `text` (when typed) or the chosen alternative. The foil then
        stays with the reply (other methods and sentences are explained against it) until it
        is cleared; a foil that cannot be asked about changes nothing."""
        session = state if state is not None else Session()
        index = session.index(reply_choice)
        if index is None:
            yield ("Nothing to ask about yet: send a message first.", *KEEP)
            return
        foil = text if (text or "").strip() else choice
        if not (foil or "").strip():
            yield (
                "⚠️ No alternative to ask about: choose one of the model's alternatives or "
                "type one, then press “Why not?”.",
                *KEEP,
            )
            return
        assert foil is not None
        ok = yield from self._explain(session, index, method, sentence, foil)
        if ok:
            session.turns[index].foil = foil

    def clear_foil(
        self,
        reply_choice: str | None,
        method: str | None,
        sentence: str | None,
        state: Session | None,
    ) -> Iterator[tuple[Any, ...]]:
        """Forget the chosen reply's foil and show its plain explanation again (cached when it
        was made before). Outputs: the explanation outputs, then the foil textbox (emptied)."""
        session = state if state is not None else Session()
        index = session.index(reply_choice)
        if index is None:
            yield ("Nothing to explain yet: send a message first.", *KEEP, "")
            return
        session.turns[index].foil = None
        for out in self._explain(session, index, method, sentence, None):
            yield (*out, "")

    def foils(self, reply_choice: str | None, state: Session | None) -> Any:
        """The "why not …?" choices of the chosen reply once it is explained: the model's own
        alternative answers with their probabilities (computed once per reply; the choice's
        value is the answer's text), the reply's foil selected when it is one of them.
        Output: the foil radio."""
        session = state if state is not None else Session()
        index = session.index(reply_choice)
        turn = session.turns[index] if index is not None else None
        if turn is None or turn.shown_result is None:
            return gr.update(choices=[], value=None)
        if turn.foil_options is None:
            try:
                turn.foil_options = self.engine.foil_candidates(turn.prompt, turn.reply, turn.ids)
            except PromptXrayError:
                return gr.update(choices=[], value=None)  # the explanation said why
        choices = [
            (alternative_choice(f.text, f.prob, session.lang, f.sentence_start), f.text)
            for f in turn.foil_options
        ]
        texts = [f.text for f in turn.foil_options]
        value = turn.foil if turn.foil in texts else None
        return gr.update(choices=choices, value=value)

    def _explain(
        self,
        session: Session,
        index: int,
        method: str | None,
        sentence: str | None,
        foil: str | None,
    ) -> Generator[tuple[Any, ...], None, bool]:
        """Explain turn `index` (against `foil` when given), streaming the explanation
        outputs; returns whether an explanation is shown at the end."""
        turn = session.turns[index]
        method = method or self.engine.default_method
        key = (method, upto(turn, sentence), foil)
        label = f"reply {index + 1}"
        against = "" if foil is None else f", rather than {views.quoted(foil)}"
        if key in turn.explanations:
            turn.shown = key
            result = turn.explanations[key]
            yield self._show(session, index, result, f"Explanation{against} (cached).")
            return True
        if foil is not None:
            target = turn.reply if key[1] is None else clean(turn.reply)[: key[1]]
            try:
                self.engine.check_foil(foil, target, method)
            except PromptXrayError as exc:
                yield (f"⚠️ Cannot explain {label}{against}: {_with_hint(exc)}", *KEEP)
                return False
        yield (f"⏳ Explaining {label}{against} with **{method}**…", *KEEP)
        stop = threading.Event()

        def work(emit: Callable[[Any], None]) -> ExplainResult:
            def progress(stage: str, done: int, total: int) -> None:
                emit((stage, done, total))

            return self.engine.explain(
                turn.prompt, turn.reply, turn.ids, method, key[1], progress, stop, emit, foil
            )

        job = Pump(work, stop, "promptxray-explain")
        try:
            with closing(job.batches()) as batches:
                for batch in batches:
                    early = [item for item in batch if isinstance(item, ExplainResult)]
                    if early:  # an earlier stage of an anytime explanation: show it now
                        note = nl.stage_note(early[-1].explanation, session.lang)
                        shown = self._show(session, index, early[-1], f"⏳ {label}: {note}")
                        yield (*shown[:-1], gr.update())
                        continue
                    stage, done, total = batch[-1]
                    what = STAGES.get(stage, stage)
                    status = (
                        f"⏳ Explaining {label}{against} with **{method}**: {what} {done}/{total}…"
                    )
                    yield (status, *KEEP)
        except Cancelled:
            yield ("Explanation stopped; the conversation is unchanged.", *KEEP)
            return False
        except PromptXrayError as exc:
            yield (f"⚠️ Cannot explain {label}{against}: {_with_hint(exc)}", *KEEP)
            return False
        except Exception as exc:
            yield (f"⚠️ Explaining {label} failed: {type(exc).__name__}: {exc}", *KEEP)
            return False
        turn.show(key, job.result)
        yield self._show(session, index, job.result, f"Explained {label}{against}.")
        return True

    def set_language(
        self, lang: str | None, reply_choice: str | None, state: Session | None
    ) -> tuple[Session, list[dict[str, Any]], Any]:
        """The language of plain-language explanations for this session: the chat's summaries
        and the shown report are said again in it. Outputs: state, chatbot, full report."""
        session = state if state is not None else Session()
        session.lang = lang if lang in LANGUAGES else "en"
        index = session.index(reply_choice)
        result = session.turns[index].shown_result if index is not None else None
        threshold = self.engine.no_effect_threshold
        text = gr.update() if result is None else views.report(result, session.lang, threshold)
        return session, self._history(session), text

    def why(self, reply_choice: str | None, state: Session | None) -> str:
        """Ask the model why it gave the shown explanation's reply, and check its answer
        against the measured attributions (on demand: it costs a generation)."""
        session = state if state is not None else Session()
        index = session.index(reply_choice)
        if index is None:
            return "Nothing to ask about yet: send a message first."
        result = session.turns[index].shown_result
        if result is None:
            return "Explain this reply first: the model's answer is checked against it."
        try:
            found = self.engine.self_explain(result, session.lang)
        except PromptXrayError as exc:
            return f"⚠️ Cannot ask the model: {exc}"
        return views.markdown_lines(describe_self_explanation(found, session.lang))

    # --- what if ---------------------------------------------------------------------------------
    def what_if(
        self,
        word: str | None,
        replacement: str,
        max_new_tokens: float,
        temperature: float,
        state: Session | None,
    ) -> Iterator[str]:
        """Remove or replace one word of the last message and show what changes (what_if.py)."""
        session = state if state is not None else Session()
        yield from run_what_if(self.engine, session, word, replacement, max_new_tokens, temperature)

    # --- export ---------------------------------------------------------------------------------
    def export_json(self, state: Session | None) -> str | None:
        session = state if state is not None else Session()
        if not session.turns:
            gr.Warning("Nothing to export yet.")
            return None
        return str(export.write_json(session, self.engine.model_name or "default", self.export_dir))

    def export_html(self, state: Session | None) -> str | None:
        session = state if state is not None else Session()
        if not session.turns:
            gr.Warning("Nothing to export yet.")
            return None
        threshold = self.engine.no_effect_threshold
        return str(export.write_html(session, threshold, self.export_dir))
