"""Streaming: one thread-and-queue pump, and replies streamed token by token through it.

`Pump` runs blocking work (a `generate` call, an explanation) on a daemon thread and hands
what it emits to the caller as it comes, so a Gradio generator handler can yield between
steps. Leaving the iteration early (Gradio cancelling the event, a `break`) sets the pump's
stop event, which the work checks at its next step (the next token, the next batch).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from promptxray.chat_ui.conversation import Prompt
from promptxray.chat_ui.locks import RWLock
from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import PromptXrayError

T = TypeVar("T")
R = TypeVar("R")


class Cancelled(Exception):
    """The user stopped the work (raised from inside its progress callback)."""


class Pump(Generic[T, R]):
    """Run `work(emit)` on a daemon thread; `batches()` yields what it emitted so far, in
    order, a list at a time, and ends when the work returns. Then `result` holds what it
    returned, or the work's exception is raised from `batches()`."""

    def __init__(
        self,
        work: Callable[[Callable[[T], None]], R],
        stop: threading.Event | None = None,
        name: str = "promptxray-worker",
    ) -> None:
        self.work = work
        self.stop = stop if stop is not None else threading.Event()
        self.name = name
        self._result: tuple[R] | None = None

    @property
    def result(self) -> R:
        if self._result is None:
            raise RuntimeError("the work has not finished")
        return self._result[0]

    def batches(self) -> Generator[list[T], None, None]:
        cond = threading.Condition()
        pending: list[T] = []
        outcome: list[tuple[bool, Any]] = []

        def emit(item: T) -> None:
            with cond:
                pending.append(item)
                cond.notify_all()

        def run() -> None:
            try:
                done: tuple[bool, Any] = (True, self.work(emit))
            except BaseException as exc:  # handed to the consumer
                done = (False, exc)
            with cond:
                outcome.append(done)
                cond.notify_all()

        thread = threading.Thread(target=run, daemon=True, name=self.name)
        thread.start()
        finished = False
        try:
            while True:
                with cond:
                    while not pending and not outcome:
                        cond.wait()
                    batch, pending[:] = list(pending), []
                    ended = bool(outcome)  # every item is emitted before the work returns
                if batch:
                    yield batch
                if ended:
                    break
            finished = True
        finally:
            if not finished:  # the consumer left: the work stops at its next step
                self.stop.set()
        thread.join()
        ok, value = outcome[0]
        if not ok:
            raise value
        self._result = (value,)


@dataclass
class GenSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0
    system_prompt: str = ""


@dataclass
class StreamEvent:
    """One step of a streamed reply: its text and ids so far; `done` on the last one."""

    text: str
    ids: list[int]
    done: bool = False
    stopped: bool = False
    first_token_s: float | None = None
    elapsed_s: float = 0.0


def decode(backend: Backend, ids: list[int]) -> str:
    return str(backend.tokenizer.decode(ids, skip_special_tokens=True))


def stream_reply(
    backend: Backend,
    prompt: Prompt,
    lock: RWLock,
    temperature: float = 0.0,
    stop: threading.Event | None = None,
) -> Iterator[StreamEvent]:
    """Stream the reply to `prompt.ids` token by token, holding `lock` shared. Closing the
    iterator (or setting `stop`) stops the model at its next token.

    What the backend declares decides: one that samples (a transformers model) streams
    through `generate` (greedy at temperature 0, sampled above); one that streams (a served
    engine) streams its greedy continuation (`temperature` is not used); any other backend
    replies in one piece (`whole_reply`)."""
    halt = stop if stop is not None else threading.Event()
    work: Callable[[Callable[[list[int]], None]], None]
    caps = backend.capabilities
    if caps.samples:
        model = backend.model  # a backend that samples has one
        work = _transformers_work(backend, model, prompt, lock, temperature, halt)
    elif caps.streams:
        work = _engine_work(backend, prompt, lock, halt)
    else:
        yield from whole_reply(backend, prompt, lock)
        return
    yield from _stream_events(backend, work, halt)


def _engine_work(
    backend: Backend, prompt: Prompt, lock: RWLock, halt: threading.Event
) -> Callable[[Callable[[list[int]], None]], None]:
    """Read a served engine's streamed continuation, emitting each piece of new token ids.
    Once `halt` is set the stream is closed, which closes its connection: the engine drops
    the request. A connection cut mid-reply is a PromptXrayError the chat shows."""
    stream_generate = backend.stream_generate
    # a finished stream ends with the token the engine stopped on, or at the length limit
    ends = backend.eos_ids() | {int(t) for t in getattr(backend.tokenizer, "all_special_ids", [])}

    def cut() -> PromptXrayError:
        return PromptXrayError(
            f"the {backend.name} engine stopped answering in the middle of the reply (its "
            "connection was closed); send the message again once it is back"
        )

    def work(emit: Callable[[list[int]], None]) -> None:
        with lock.shared():
            if halt.is_set():
                return
            pieces = stream_generate(prompt.ids, prompt.max_new_tokens)
            received, last = 0, None
            try:
                for piece in pieces:
                    emit([int(t) for t in piece])
                    received, last = received + len(piece), (piece[-1] if piece else last)
                    if halt.is_set():
                        break
                else:  # the stream ended by itself: early, without a stop token, it was cut
                    short = received < prompt.max_new_tokens and last not in ends
                    if short and not halt.is_set():
                        raise cut()
            except PromptXrayError:
                raise
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise cut() from exc
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:  # a generator: closes the engine's connection
                    close()

    return work


def _transformers_work(
    backend: Backend,
    model: Any,
    prompt: Prompt,
    lock: RWLock,
    temperature: float,
    halt: threading.Event,
) -> Callable[[Callable[[list[int]], None]], None]:
    """Run the transformers model's `generate` with a streamer emitting each new token and a
    stopping criterion reading `halt`."""
    import torch
    from transformers.generation.stopping_criteria import StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    eos = backend.eos_ids()

    class _Streamer(BaseStreamer):
        def __init__(self, emit: Callable[[list[int]], None]) -> None:
            self.emit, self.seen_prompt = emit, False

        def put(self, value: Any) -> None:
            if not self.seen_prompt:  # the first call carries the prompt
                self.seen_prompt = True
                return
            self.emit([int(t) for t in value.reshape(-1).tolist()])

        def end(self) -> None:
            pass

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), halt.is_set(), dtype=torch.bool)

    sample = temperature > 0
    input_ids = torch.tensor([prompt.ids], device=getattr(backend, "device", None))
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": prompt.max_new_tokens,
        "do_sample": sample,
        "temperature": float(temperature) if sample else None,
        "top_p": 1.0 if sample else None,
        "top_k": 0 if sample else None,
        "eos_token_id": sorted(eos) or None,
        "pad_token_id": backend.pad_id,
        "stopping_criteria": [_Stop()],
    }

    def work(emit: Callable[[list[int]], None]) -> None:
        with lock.shared(), torch.inference_mode():
            model.generate(**kwargs, streamer=_Streamer(emit))

    return work


def _stream_events(
    backend: Backend,
    work: Callable[[Callable[[list[int]], None]], None],
    halt: threading.Event,
) -> Iterator[StreamEvent]:
    """Run `work` through a `Pump` and turn the token ids it emits into growing StreamEvents,
    ending at the first end-of-sequence token (which sets `halt`: the work stops at its next
    step and nothing after the end is kept). The last event has `done`, and `stopped` when
    the reply was cut short by `halt` rather than ended by the model or its length limit."""
    eos = backend.eos_ids()
    started = time.perf_counter()
    first: float | None = None
    ids: list[int] = []
    hit_eos = False
    with closing(Pump(work, halt, "promptxray-generate").batches()) as batches:
        for batch in batches:
            new = [t for chunk in batch for t in chunk]
            if new and first is None:
                first = time.perf_counter() - started
            if hit_eos:
                continue  # the model stops at its next step; nothing after the end is kept
            grew = False
            for t in new:
                if t in eos:
                    hit_eos = True
                    halt.set()
                    break
                ids.append(t)
                grew = True
            if grew and not hit_eos:
                yield StreamEvent(
                    decode(backend, ids),
                    list(ids),
                    first_token_s=first,
                    elapsed_s=time.perf_counter() - started,
                )
    yield StreamEvent(
        decode(backend, ids),
        list(ids),
        done=True,
        stopped=halt.is_set() and not hit_eos,
        first_token_s=first,
        elapsed_s=time.perf_counter() - started,
    )


def whole_reply(backend: Backend, prompt: Prompt, lock: RWLock) -> Iterator[StreamEvent]:
    """A backend that cannot stream (ONNX Runtime): its greedy `generate`, in one piece (no
    streaming, no sampling)."""
    started = time.perf_counter()
    with lock.shared():
        new = backend.generate(prompt.ids, prompt.max_new_tokens)
    eos = backend.eos_ids()
    ids: list[int] = []
    for t in new:
        if t in eos:
            break
        ids.append(int(t))
    elapsed = time.perf_counter() - started
    yield StreamEvent(
        decode(backend, ids), ids, done=True, first_token_s=elapsed, elapsed_s=elapsed
    )
