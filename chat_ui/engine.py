"""The chat engine: lazy model loading, the model's locks, and generation and explanation of
chat replies. No Gradio here: the UI handlers, the tests and the benchmark drive this class.

How a reply is explained: `prepare` writes the conversation as Prompty text and tokenises it
once (`conversation.Prompt`); the reply is generated from those ids, and `explain` hands the
same `ModelInput` to the library, so the reply is explained under the very prompt it was
generated from, and the target is the generated token ids themselves.

Threading: the Backend is shared by every user. Forwards under `torch.inference_mode`
(generation) and the explainers' forwards and input-embedding gradients do not change the model,
so they may run side by side: a reply streams while another user's explanation runs. Two things
are per-backend state, though: every explanation resets and reads the backend's counters (so
explanations run one at a time, under `explain_lock`), and the attention methods switch the
model's attention implementation while they run (so they take `lock` exclusively, waiting for
replies in progress and holding new ones back until they finish; generation takes it shared).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from promptxray.chat_ui.conversation import (
    CHAT_PATH,
    Conversation,
    Prompt,
    build_conversation,
    clean,
    fit_prompt,
    tokenise,
)
from promptxray.chat_ui.generation import (
    Cancelled,
    GenSettings,
    StreamEvent,
    decode,
    stream_reply,
)
from promptxray.chat_ui.locks import RWLock
from promptxray.explainers.backends.base import Backend
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.errors import InvalidRequestError, PromptXrayError
from promptxray.explainers.nl import NO_EFFECT_NATS, SelfExplanation
from promptxray.explainers.types import ExplainRequest, Explanation

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative

__all__ = ["Cancelled", "ChatEngine", "ExplainResult", "GenSettings", "RWLock", "StreamEvent"]


@dataclass
class ExplainResult:
    explanation: Explanation
    conversation: Conversation
    target_text: str
    whole_reply: bool
    seconds: float


class ChatEngine:
    """One model for every user of the app, loaded on first use (a load error is kept and
    reported, never raised at start-up; a served engine that cannot be reached is tried again
    at the next use, so the chat works again once it is back). `no_effect_threshold` (nats)
    is the one rule for "no measurable effect" in every sentence the chat shows about an
    explanation."""

    def __init__(
        self,
        model: str | None = None,
        backend: str = "torch",
        method: str = "occlusion",
        granularity: str = "token",
        no_effect_threshold: float = NO_EFFECT_NATS,
        options: BackendOptions | None = None,
    ) -> None:
        self.model_name = model
        self.backend_name = backend
        # how the backend is reached and run (the openai server; torch's device and dtype):
        # given to get_backend and to every explanation request
        self.options = options or BackendOptions()
        self.default_method = method
        self.granularity = granularity
        self.no_effect_threshold = float(no_effect_threshold)
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
            from promptxray.explainers.errors import EngineError

            try:
                self._backend = get_backend(
                    self.backend_name, self.model_name, options=self.options
                )
            except EngineError as exc:  # not kept: the engine may be back at the next use
                raise EngineError(
                    f"{exc}. The chat tries again with the next message.",
                    exc.retry,
                    exc.status,
                    exc.detail,
                ) from exc
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
        from promptxray.explainers.registry import AUTO, list_methods

        target: Any = self._backend
        if target is None:
            target = _backend_class(self.backend_name)
        specs = list_methods()
        if target is None:
            return [*(s.name for s in specs), AUTO]
        return [*(s.name for s in specs if s.runs_on(target)), AUTO]

    def check_method(self, method: str) -> None:
        """Raise a PromptXrayError unless `method` is known and runs on this backend (checked
        without loading the model); the message names the methods that do run on it."""
        from promptxray.explainers.registry import (
            AUTO,
            check_supported,
            get_method,
            validate_method,
        )

        validate_method(method)
        if method == AUTO:
            return
        target: Any = self._backend
        if target is None:
            target = _backend_class(self.backend_name)
        if target is not None:
            check_supported(get_method(method), target)

    # --- generation ----------------------------------------------------------------------------
    def prepare(
        self, history: list[tuple[str, str]], message: str, settings: GenSettings
    ) -> Prompt:
        """The prompt for a new reply, fitted to the context (see `conversation.fit_prompt`)."""
        return fit_prompt(
            self.backend(), history, message, settings.system_prompt, settings.max_new_tokens
        )

    def prompt_for(self, messages: list[dict[str, str]], max_new_tokens: int) -> Prompt:
        """The prompt of exactly these messages (no fitting; the reply gets the room left)."""
        backend = self.backend()
        conv = build_conversation(messages)
        model_input = tokenise(conv, backend)
        room = backend.context_length - backend.token_count(model_input.ids)
        return Prompt(conv, model_input, max_new_tokens=max(1, min(int(max_new_tokens), room)))

    def stream(
        self, prompt: Prompt, temperature: float = 0.0, stop: threading.Event | None = None
    ) -> Iterator[StreamEvent]:
        """Stream the reply token by token (greedy at temperature 0; a served engine's reply is
        always greedy). Closing the iterator (or setting `stop`) stops the model at its next
        token (a served engine: the request is dropped)."""
        return stream_reply(self.backend(), prompt, self.lock, temperature, stop)

    def decode(self, ids: list[int]) -> str:
        return decode(self.backend(), ids)

    def generate(
        self, history: list[tuple[str, str]], message: str, settings: GenSettings
    ) -> tuple[Prompt, StreamEvent]:
        """Generate a whole reply (no streaming): the prompt used and the final event."""
        prompt = self.prepare(history, message, settings)
        last: StreamEvent | None = None
        for event in self.stream(prompt, settings.temperature):
            last = event
        assert last is not None
        return prompt, last

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
        prompt: Prompt,
        reply: str,
        reply_ids: list[int] | None,
        method: str | None = None,
        upto: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        stop: threading.Event | None = None,
        on_stage: Callable[[ExplainResult], None] | None = None,
        foil: str | None = None,
    ) -> ExplainResult:
        """Explain `reply` (or its prefix ending at character `upto`) under `prompt`, reusing
        the prompt's ids (nothing is parsed or tokenised again). With `on_stage`, an anytime
        explanation (occlusion at granularity "auto") hands it each earlier stage first. With
        `foil`, a contrastive explanation: why the reply rather than `foil` (every score is
        about log P(reply) − log P(foil)); a method that cannot score that, an empty foil or
        one that is the reply itself raise a PromptXrayError before any model work."""
        from promptxray.explainers.anytime import run_stages
        from promptxray.explainers.registry import AUTO, get_method

        backend = self.backend()
        reply = clean(reply)
        if not reply:
            raise InvalidRequestError("the reply is empty: there is nothing to explain")
        whole = upto is None or upto >= len(reply)
        target_text = reply if whole else reply[:upto]
        target_ids = None
        if reply_ids and self.decode(reply_ids).strip() == reply:
            target_ids = self.target_ids_for(reply_ids, reply, upto)
        request = ExplainRequest(
            text=prompt.conversation.text,
            path=CHAT_PATH,
            method=method or self.default_method,
            target=None if target_ids else target_text,
            target_ids=target_ids or None,
            granularity=granularity_for(backend, self.granularity),
            backend=self.backend_name,
            backend_options=self.options,
            foil=foil,
        )
        if foil is not None:
            self.check_foil(foil, target_text, request.method)

        def report(stage: str, done: int, total: int) -> None:
            if stop is not None and stop.is_set():
                raise Cancelled("the explanation was stopped")
            if progress:
                progress(stage, done, total)

        # a method that alters the model while it runs (and auto, which may run one) must not
        # share the model with a generation
        exclusive = request.method == AUTO or get_method(request.method).alters_model
        # the library writes scores onto the input's tokens: each explanation gets its own
        # copies of them (the ids are reused as they are)
        mi = prompt.model_input
        model_input = replace(mi, tokens=[replace(t) for t in mi.tokens])
        started = time.perf_counter()
        with self.explain_lock, self.lock.exclusive() if exclusive else self.lock.shared():
            if stop is not None and stop.is_set():
                raise Cancelled("the explanation was stopped")
            show = None
            if on_stage is not None:

                def show(stage: Explanation) -> None:
                    seconds = time.perf_counter() - started
                    on_stage(ExplainResult(stage, prompt.conversation, target_text, whole, seconds))

            expl = run_stages(request, backend, report, model_input, on_stage=show)
        seconds = time.perf_counter() - started
        return ExplainResult(expl, prompt.conversation, target_text, whole, seconds)

    def check_foil(self, foil: str, target_text: str, method: str | None = None) -> None:
        """Raise an InvalidRequestError for a foil that cannot be asked about (empty, or the
        explained text itself) and an UnsupportedMethodError for a method that cannot explain
        one (its message names those that can); "auto" picks among those that can."""
        from promptxray.explainers.registry import AUTO, check_contrastive, get_method

        if not foil.strip():
            raise InvalidRequestError(
                "the alternative is empty: choose one of the model's alternatives or type one"
            )
        if foil.strip() == clean(target_text):
            raise InvalidRequestError(
                "the alternative is the reply itself: ask why not a different answer"
            )
        method = method or self.default_method
        if method != AUTO:
            check_contrastive(get_method(method))

    def foil_candidates(
        self, prompt: Prompt, reply: str, reply_ids: list[int] | None
    ) -> list[Alternative]:
        """The model's own alternative answers to the reply (best first, with their exact
        probabilities), each a valid foil for a "why not …?" explanation."""
        from promptxray.explainers.alternatives import alternatives

        backend = self.backend()
        ids = list(reply_ids or []) or backend.encode_target(clean(reply))
        with self.explain_lock, self.lock.shared():  # the backend's counters are shared
            return alternatives(backend, prompt.ids, ids)

    def reply_logprob(self, prompt: Prompt, reply_ids: list[int]) -> float:
        """log P(reply | prompt) under teacher forcing: the same figure `explain` reports as
        `target.logprob`, without running an attribution method."""
        backend = self.backend()
        with self.explain_lock, self.lock.shared():  # the backend's counters are shared
            # scored as `explain` scores f(x): as a variant of the prompt itself (same path)
            scores = backend.target_logprobs([prompt.ids], reply_ids, reference=prompt.ids)
            return float(scores[0].sum())

    def self_explain(self, result: ExplainResult, lang: str = "en") -> SelfExplanation:
        """Ask the model why it gave the explained reply, and check what it names against the
        explanation's scores (a greedy generation; on demand, never automatic). The answer is
        kept on the explanation, so its report and the exports include it."""
        from promptxray.explainers.nl import self_explain

        backend = self.backend()
        contents = [str(m["content"]) for m in result.conversation.messages]
        with self.explain_lock, self.lock.shared():
            found = self_explain(backend, result.explanation, contents, lang=lang)
        result.explanation.self_explanation = found
        return found


def granularity_for(backend: Backend, wanted: str) -> str:
    """The chat's granularity on this backend: a server whose tokenizer is not known has no
    tokens (words instead), and one that returns text only is sampled by lines."""
    from promptxray.explainers.backends.capabilities import Scoring

    caps = backend.capabilities
    if caps.scoring is Scoring.TEXT and wanted in ("token", "word"):
        return "line"
    if wanted == "token" and not caps.tokenizer:
        return "word"
    return wanted


def _backend_class(name: str) -> Any:
    """A stand-in with the best capabilities backend `name` may have (for checking methods
    before the model loads or the server is reached), or None for an unknown name."""
    from types import SimpleNamespace

    from promptxray.explainers.backends import best_capabilities

    caps = best_capabilities(name)
    return None if caps is None else SimpleNamespace(name=name, capabilities=caps)
