"""The chat engine: lazy model loading, streamed generation and explanations of chat replies.

No Gradio here: the UI (`app.py`), the tests and the benchmark all drive this class.

How a reply is explained: the conversation that produced it is written as Prompty text
(`system:` / `user:` / `assistant:` lines) and handed to `explain()` with path "chat.prompty",
so every token and span offset indexes into that conversation text. Generation reads exactly
the ids `build_input()` makes of the same text, so the reply is explained under the very prompt
it was generated from, and the target is the generated token ids themselves.

Threading: the Backend is shared by every user. Forwards under `torch.inference_mode`
(generation) and the explainers' forwards and input-embedding gradients do not change the model,
so they may run side by side: a reply streams while another user's explanation runs. Two things
are per-backend state, though: every explanation resets and reads the backend's counters (so
explanations run one at a time, under `explain_lock`), and the attention methods switch the
model's attention implementation while they run (so they take `lock` exclusively, waiting for
replies in progress and holding new ones back until they finish; generation takes it shared).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.documents import parse_document
from promptxray.explainers.errors import InvalidRequestError, PromptXrayError
from promptxray.explainers.nl import SelfExplanation
from promptxray.explainers.render import auto_reason, faithfulness_line, format_prob
from promptxray.explainers.types import ExplainRequest, Explanation

CHAT_PATH = "chat.prompty"
ROLES = ("system", "user", "assistant")
_ROLE_LINE = re.compile(r"^[ \t]*(system|user|assistant)[ \t]*:[ \t]*$", re.IGNORECASE | re.M)
_PLACEHOLDER = re.compile(r"\{\{\s*([^\W\d]\w*)\s*\}\}")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


class Cancelled(Exception):
    """The user stopped an explanation (raised from inside its progress callback)."""


class RWLock:
    """Many shared holders or one exclusive holder (writer-preferring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class Conversation:
    """Chat messages as Prompty text; `spans[i]` is (start, end) of message i's content."""

    text: str
    messages: list[dict[str, str]]
    spans: list[tuple[int, int]]
    body_start: int


def clean(text: str) -> str:
    """Message text as the Prompty parser keeps it (surrounding whitespace dropped, LF only)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def build_conversation(messages: list[dict[str, str]]) -> Conversation:
    """Prompty text of `messages` whose parse gives back exactly these messages.

    `{{name}}` markers in a message would be read as placeholders: front matter gives each one
    a sample value equal to its own marker text, so the model reads the message unchanged.
    A line that is only `user:` (or another role) would start a new message: refused.
    """
    msgs = [{"role": m["role"], "content": clean(m["content"])} for m in messages]
    msgs = [m for m in msgs if m["content"]]
    if not msgs:
        raise InvalidRequestError("the conversation is empty")
    samples: dict[str, str] = {}
    for m in msgs:
        if m["role"] not in ROLES:
            raise InvalidRequestError(f"unknown role {m['role']!r}")
        if _ROLE_LINE.search(m["content"]):
            raise InvalidRequestError(
                f"a {m['role']} message has a line that is only a role name "
                "(like 'user:'); it cannot be explained as written — reword that line"
            )
        for match in _PLACEHOLDER.finditer(m["content"]):
            marker, name = match.group(0), match.group(1)
            if samples.setdefault(name, marker) != marker:
                raise InvalidRequestError(
                    f"the conversation spells the placeholder-like text {{{{{name}}}}} in two "
                    "ways; write it the same way each time"
                )
    head = ""
    if samples:
        head = "---\n" + yaml.safe_dump({"sample": samples}, allow_unicode=True) + "---\n"
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
    return Conversation(text, msgs, spans, doc.body_start)


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


@dataclass
class GenSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0
    system_prompt: str = ""


@dataclass
class Prepared:
    """The prompt a reply is generated from: the messages kept and the note on dropped ones."""

    conversation: Conversation
    ids: list[int]
    note: str | None
    dropped_turns: int
    max_new_tokens: int


@dataclass
class StreamEvent:
    """One step of a streamed reply: its text and ids so far; `done` on the last one."""

    text: str
    ids: list[int]
    done: bool = False
    stopped: bool = False
    first_token_s: float | None = None
    elapsed_s: float = 0.0


@dataclass
class ExplainResult:
    explanation: Explanation
    conversation: Conversation
    target_text: str
    whole_reply: bool
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


class ChatEngine:
    """One model for every user of the app, loaded on first use (a load error is kept and
    reported, never raised at start-up)."""

    def __init__(
        self,
        model: str | None = None,
        backend: str = "torch",
        method: str = "occlusion",
        granularity: str = "token",
    ) -> None:
        self.model_name = model
        self.backend_name = backend
        self.default_method = method
        self.granularity = granularity
        self._backend: Backend | None = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self.lock = RWLock()
        self.explain_lock = threading.Lock()

    # --- model ---------------------------------------------------------------------------------
    def backend(self) -> Backend:
        """The loaded backend; raises PromptXrayError with the reason when it cannot load."""
        with self._load_lock:
            if self._backend is not None:
                return self._backend
            if self._load_error is not None:
                raise PromptXrayError(self._load_error)
            from promptxray.explainers.backends import get_backend

            try:
                self._backend = get_backend(self.backend_name, self.model_name)
            except PromptXrayError as exc:
                self._load_error = f"the model could not be loaded: {exc}"
            except Exception as exc:  # a broken model folder, a missing file...
                self._load_error = (
                    f"the model {self.model_name or 'default'!r} could not be loaded: "
                    f"{type(exc).__name__}: {exc}"
                )
            if self._load_error is not None:
                raise PromptXrayError(self._load_error)
            assert self._backend is not None
            return self._backend

    def status(self) -> str:
        try:
            b = self.backend()
        except PromptXrayError as exc:
            return f"⚠️ {exc}"
        return f"Model **{b.model_id}** on the **{b.name}** backend, context {b.context_length}."

    def methods(self) -> list[str]:
        """Methods the backend can run, without loading the model: the loaded backend when
        there is one, else the capability flags of its class."""
        from promptxray.explainers.registry import list_methods

        target: Any = self._backend
        if target is None:
            target = _backend_class(self.backend_name)
        from promptxray.explainers.registry import AUTO

        specs = list_methods()
        if target is None:
            return [*(s.name for s in specs), AUTO]
        return [*(s.name for s in specs if s.runs_on(target)), AUTO]

    def self_explain(self, result: ExplainResult, lang: str = "en") -> SelfExplanation:
        """Ask the model why it gave the explained reply, and check what it names against the
        explanation's scores (a greedy generation; on demand, never automatic)."""
        from promptxray.explainers.nl import self_explain

        backend = self.backend()
        conv = result.conversation
        prompt_text = "\n\n".join(str(m["content"]) for m in conv.messages)
        with self.explain_lock, self.lock.shared():
            return self_explain(backend, result.explanation, prompt_text, lang=lang)

    # --- generation ----------------------------------------------------------------------------
    def prepare(
        self,
        history: list[tuple[str, str]],
        message: str,
        settings: GenSettings,
    ) -> Prepared:
        """The prompt for a new reply: system + past (user, reply) turns + `message`, dropping
        the oldest turns (then the start of the message) until it fits the context."""
        from promptxray.explainers.documents import parse_document
        from promptxray.explainers.inputs import build_input

        backend = self.backend()
        message = clean(message)
        if not message:
            raise InvalidRequestError("the message is empty")
        limit = backend.context_length
        max_new = max(1, min(int(settings.max_new_tokens), limit - 1))
        turns = list(history)
        note_parts: list[str] = []
        dropped = 0

        def build(turns: list[tuple[str, str]], msg: str) -> tuple[Conversation, list[int]]:
            msgs: list[dict[str, str]] = []
            if clean(settings.system_prompt):
                msgs.append({"role": "system", "content": settings.system_prompt})
            for user, reply in turns:
                msgs += [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": reply},
                ]
            msgs.append({"role": "user", "content": msg})
            conv = build_conversation(msgs)
            ids = build_input(parse_document(conv.text, CHAT_PATH), backend).ids
            return conv, ids

        conv, ids = build(turns, message)
        while len(ids) + max_new > limit and turns:
            turns.pop(0)
            dropped += 1
            conv, ids = build(turns, message)
        if dropped:
            note_parts.append(
                f"the conversation was longer than the model's context ({limit} tokens): "
                f"the oldest {dropped} turn(s) were left out of this reply's prompt"
            )
        if len(ids) + max_new > limit:
            # Even alone the message is too long: keep its end (binary search on characters).
            lo, hi = 1, len(message)
            best: tuple[Conversation, list[int], str] | None = None
            while lo <= hi:
                keep = (lo + hi) // 2
                cut = clean(message[-keep:]) or message[-1]
                c, i = build([], cut)
                if len(i) + max_new <= limit:
                    best, lo = (c, i, cut), keep + 1
                else:
                    hi = keep - 1
            if best is None:
                raise InvalidRequestError(
                    f"the system prompt alone does not leave room for a reply in {limit} tokens"
                )
            conv, ids, cut = best
            note_parts.append(
                f"the message is longer than the model's context ({limit} tokens): only its "
                f"last {len(cut)} of {len(message)} characters were sent"
            )
        note = ("Note: " + "; ".join(note_parts) + ".") if note_parts else None
        return Prepared(conv, ids, note, dropped, max_new)

    def stream(
        self,
        prepared: Prepared,
        temperature: float = 0.0,
        stop: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream the reply token by token (greedy at temperature 0). Closing the iterator (or
        setting `stop`) stops the model at its next token."""
        import torch
        from transformers.generation.stopping_criteria import StoppingCriteria
        from transformers.generation.streamers import BaseStreamer

        backend = self.backend()
        model = getattr(backend, "model", None)
        if model is None or not hasattr(model, "generate"):
            yield from self._whole_reply(backend, prepared)
            return
        halt = stop if stop is not None else threading.Event()
        eos = sorted(backend.eos_ids())
        queue: list[Any] = []
        cond = threading.Condition()

        class _Streamer(BaseStreamer):
            seen_prompt = False

            def put(self, value: Any) -> None:
                if not self.seen_prompt:  # the first call carries the prompt
                    self.seen_prompt = True
                    return
                with cond:
                    queue.extend(int(t) for t in value.reshape(-1).tolist())
                    cond.notify_all()

            def end(self) -> None:
                with cond:
                    queue.append(None)
                    cond.notify_all()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                flag = halt.is_set()
                return torch.full((input_ids.shape[0],), flag, dtype=torch.bool)

        sample = temperature > 0
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor([prepared.ids], device=getattr(backend, "device", None)),
            "max_new_tokens": prepared.max_new_tokens,
            "do_sample": sample,
            "temperature": float(temperature) if sample else None,
            "top_p": 1.0 if sample else None,
            "top_k": 0 if sample else None,
            "eos_token_id": eos or None,
            "pad_token_id": backend.pad_id,
            "streamer": _Streamer(),
            "stopping_criteria": [_Stop()],
        }
        kwargs["attention_mask"] = torch.ones_like(kwargs["input_ids"])
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with self.lock.shared(), torch.inference_mode():
                    model.generate(**kwargs)
            except BaseException as exc:
                errors.append(exc)
                with cond:
                    queue.append(None)
                    cond.notify_all()

        started = time.perf_counter()
        first: float | None = None
        thread = threading.Thread(target=work, daemon=True, name="promptxray-generate")
        thread.start()
        ids: list[int] = []
        finished = False
        try:
            while True:
                with cond:
                    while not queue:
                        cond.wait()
                    batch, queue[:] = list(queue), []
                new = [t for t in batch if t is not None]
                end = len(new) != len(batch)
                hit_eos = False
                for t in new:
                    if t in eos:
                        hit_eos = True
                        break
                    ids.append(t)
                if new and first is None:
                    first = time.perf_counter() - started
                if hit_eos:
                    halt.set()
                if end or hit_eos:
                    break
                if new:
                    yield StreamEvent(
                        self.decode(ids),
                        list(ids),
                        first_token_s=first,
                        elapsed_s=time.perf_counter() - started,
                    )
            thread.join()
            if errors and not isinstance(errors[0], Cancelled):
                raise errors[0]
            finished = True
            yield StreamEvent(
                self.decode(ids),
                list(ids),
                done=True,
                stopped=halt.is_set() and not hit_eos,
                first_token_s=first,
                elapsed_s=time.perf_counter() - started,
            )
        finally:
            if not finished:
                halt.set()

    def _whole_reply(self, backend: Backend, prepared: Prepared) -> Iterator[StreamEvent]:
        """A backend without a transformers model (ONNX Runtime): its greedy `generate`, in
        one piece (no streaming, no sampling)."""
        started = time.perf_counter()
        with self.lock.shared():
            new = backend.generate(prepared.ids, prepared.max_new_tokens)
        eos = backend.eos_ids()
        ids: list[int] = []
        for t in new:
            if t in eos:
                break
            ids.append(int(t))
        elapsed = time.perf_counter() - started
        yield StreamEvent(
            self.decode(ids), ids, done=True, first_token_s=elapsed, elapsed_s=elapsed
        )

    def decode(self, ids: list[int]) -> str:
        return str(self.backend().tokenizer.decode(ids, skip_special_tokens=True))

    def generate(
        self, history: list[tuple[str, str]], message: str, settings: GenSettings
    ) -> tuple[Prepared, StreamEvent]:
        """Generate a whole reply (no streaming): the prompt used and the final event."""
        prepared = self.prepare(history, message, settings)
        last: StreamEvent | None = None
        for event in self.stream(prepared, settings.temperature):
            last = event
        assert last is not None
        return prepared, last

    # --- explanation ---------------------------------------------------------------------------
    def target_ids_for(self, reply_ids: list[int], reply: str, upto: int | None) -> list[int]:
        """The reply's ids up to the token that completes character `upto` (None: all)."""
        if upto is None or upto >= len(reply):
            return list(reply_ids)
        full = self.decode(reply_ids)
        lead = len(full) - len(full.lstrip())
        for k in range(1, len(reply_ids) + 1):
            if len(self.decode(reply_ids[:k])) >= upto + lead:
                return list(reply_ids[:k])
        return list(reply_ids)

    def explain(
        self,
        conversation: Conversation,
        reply: str,
        reply_ids: list[int] | None,
        method: str | None = None,
        upto: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> ExplainResult:
        """Explain `reply` (or its prefix ending at character `upto`) given `conversation`."""
        from promptxray.explainers.explain import explain

        backend = self.backend()
        reply = clean(reply)
        if not reply:
            raise InvalidRequestError("the reply is empty: there is nothing to explain")
        whole = upto is None or upto >= len(reply)
        target_text = reply if whole else reply[:upto]
        if reply_ids and self.decode(reply_ids).strip() == reply:
            target_ids: list[int] | None = self.target_ids_for(reply_ids, reply, upto)
        else:
            target_ids = None
        request = ExplainRequest(
            text=conversation.text,
            path=CHAT_PATH,
            method=method or self.default_method,
            target=None if target_ids else target_text,
            target_ids=target_ids or None,
            granularity=self.granularity,
            backend=self.backend_name,
        )

        def report(stage: str, done: int, total: int) -> None:
            if stop is not None and stop.is_set():
                raise Cancelled("the explanation was stopped")
            if progress:
                progress(stage, done, total)

        from promptxray.explainers.registry import AUTO, get_method

        # attention switches the model to eager attention, activation_max hooks its layers,
        # and auto may run either: those must not share the model with a generation.
        if request.method == AUTO:
            exclusive = True
        else:
            spec = get_method(request.method)
            exclusive = spec.needs_attentions or not spec.attributes_target
        started = time.perf_counter()
        with self.explain_lock, self.lock.exclusive() if exclusive else self.lock.shared():
            if stop is not None and stop.is_set():
                raise Cancelled("the explanation was stopped")
            expl = explain(request, backend=backend, progress=report)
        return ExplainResult(expl, conversation, target_text, whole, time.perf_counter() - started)

    def reply_logprob(self, conversation: Conversation, reply_ids: list[int]) -> float:
        """log P(reply | conversation) under teacher forcing: the same figure `explain` reports
        as `target.logprob`, without running an attribution method."""
        from promptxray.explainers.inputs import build_input

        backend = self.backend()
        ids = build_input(parse_document(conversation.text, CHAT_PATH), backend).ids
        with self.explain_lock, self.lock.shared():  # the backend's counters are shared
            return float(backend.target_logprobs([ids], reply_ids)[0].sum())


def _backend_class(name: str) -> Any:
    """The Backend subclass serving `name` (for its capability flags), or None."""
    import importlib

    try:
        module = importlib.import_module(f"promptxray.explainers.backends.{name}_backend")
    except ImportError:
        return None
    for value in vars(module).values():
        is_backend = isinstance(value, type) and issubclass(value, Backend)
        if is_backend and getattr(value, "name", None) == name:
            return value
    return None


# --- presentation helpers (pure) -----------------------------------------------------------------
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


def _q(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return "'" + (text if len(text) <= limit else text[: limit - 1] + "…") + "'"


def summary(result: ExplainResult, top_k: int = 3) -> str:
    """A plain-language summary built only from the explanation's numbers."""
    expl = result.explanation
    target = _q(result.target_text)
    what = "The reply" if result.whole_reply else "The reply up to the selected sentence,"
    p = expl.target.prob
    spans = [s for s in expl.spans if s.text.strip() and math.isfinite(s.score)]
    if not spans:
        return (
            f"{what} {target} has probability {format_prob(p)}; no part of the prompt was scored."
        )
    if expl.method == "occlusion" and len(expl.details.get("ablated_logprob", [])) == len(
        expl.spans
    ):
        ablated = dict(zip(map(id, expl.spans), expl.details["ablated_logprob"], strict=True))
        pos = sorted((s for s in spans if s.score > 0), key=lambda s: -s.score)[:top_k]
        if not pos:
            return (
                f"{what} {target} (probability {format_prob(p)}) did not rest on any single "
                "part of the prompt: removing any one of them leaves its probability as high "
                "or higher."
            )
        names = [_q(s.text, 30) for s in pos]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        after = [math.exp(ablated[id(s)]) for s in pos]
        if len(pos) == 1:
            effect = (
                f"removing it drops its probability from {format_prob(p)} "
                f"to {format_prob(after[0])}"
            )
        else:
            effect = (
                f"removing any one of them drops its probability from {format_prob(p)} to at most "
                f"{format_prob(max(after))}"
                if max(after) < p
                else "removing each changes its probability to "
                + ", ".join(format_prob(a) for a in after)
                + f" (from {format_prob(p)})"
            )
        neg = sorted((s for s in spans if s.score < 0), key=lambda s: s.score)[:1]
        tail = ""
        if neg:
            tail = (
                f" Removing {_q(neg[0].text, 30)} would raise it to "
                f"{format_prob(math.exp(ablated[id(neg[0])]))}."
            )
        return f"{what} {target} rested mainly on {listed}: {effect}.{tail}"
    ranked = sorted(spans, key=lambda s: -abs(s.score))[:top_k]
    listed = ", ".join(f"{_q(s.text, 30)} ({s.score:+.3g})" for s in ranked)
    return (
        f"{what} {target} has probability {format_prob(p)}. The {expl.method} scores are "
        f"largest for {listed}; {expl.method} gives scores only, not probabilities after a change."
    )


def footer(result: ExplainResult) -> str:
    expl = result.explanation
    part = (
        "the whole reply"
        if result.whole_reply
        else ("the reply up to and including the selected sentence")
    )
    text = (
        f"Explaining {part} · method **{expl.method}** · backend **{expl.backend}** · model "
        f"{expl.model} · {result.seconds:.2f} s · {expl.forward_passes} forward passes · "
        f"P(target) = {format_prob(expl.target.prob)} over {len(expl.target.tokens)} tokens"
    )
    for extra in (faithfulness_line(expl), auto_reason(expl)):
        if extra:
            text += f"  \n{extra}"
    return text
