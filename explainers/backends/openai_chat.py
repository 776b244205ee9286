"""The chat tiers of the `openai` backend: any server with the Chat Completions API, whose
prompt log-probabilities are not available (most hosted APIs, llama.cpp, Ollama).

Generated-token log-probabilities (`logprobs`/`top_logprobs`): each variant's answer is
generated greedily for the original answer's length. While it follows the original answer,
every token's log-probability is exact. Where it departs, the original token's log-probability
is read from the alternatives when it is among them and the rest is continued from an
assistant prefill (when the server continues one: checked on connect); otherwise the figure
is an upper bound on the answer's log-probability (the rest counted as at most 0, a token
outside the alternatives as at most the least likely one shown), so the drop is a lower
bound, and the variant's own answer is recorded. Never a silent guess.

Text only (no log-probabilities): each variant is sampled a few times; its figure is how
similar the samples stay to the original answer (0..1), with a confidence interval.

Prompts are characters (`text_tokens.py`): the server applies its own chat template.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from promptxray.explainers.backends.base import (
    Backend,
    PaddedBatch,
    ProgressFn,
    ScoreNote,
    common_prefix,
)
from promptxray.explainers.backends.capabilities import Capabilities, Scoring
from promptxray.explainers.backends.openai_client import EngineClient
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.backends.remote import RemoteAccounting, Served, rows_in_order
from promptxray.explainers.backends.text_tokens import END_ID, TextTokenizer, messages_of
from promptxray.explainers.errors import ContextLengthError, EngineError

TOP_LOGPROBS = 20  # alternatives asked for (OpenAI's and vLLM's default maximum)
SAMPLES = 8  # text-only tier: samples per variant
# ... and of the unmodified prompt, whose samples every part's interval is measured against
BASE_SAMPLES = 24
SAMPLE_TEMPERATURE = 1.0  # the model's own distribution
CHARS_PER_TOKEN = 4  # a prompt's token count estimated from its characters (budget only)
# Student-t 97.5% quantiles by degrees of freedom (two-sided 95% intervals); beyond: normal
T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
T975 |= {10: 2.23, 12: 2.18, 14: 2.14, 16: 2.12, 20: 2.09, 30: 2.04, 60: 2.00}


class ChatBackend(RemoteAccounting, Backend):
    """A model behind the Chat Completions API, with or without generated log-probabilities."""

    name = "openai"
    tier_note: str | None = None  # why the server's better tier was not used

    def __init__(
        self,
        client: EngineClient,
        served: Served,
        options: BackendOptions,
        scoring: Scoring,
        prefill: bool,
        top_logprobs: int = TOP_LOGPROBS,
        name: str = "openai",
    ) -> None:
        self._init_remote(client, served, options, name)
        self.prefill = prefill
        self.top_logprobs = top_logprobs
        self.many_samples = True  # the server takes `n` > 1 (else one request per sample)
        self.capabilities = Capabilities(
            scoring=scoring, tokenizer=False, streams=True, remote=True
        )
        super().__init__(TextTokenizer(), served.label, served.context_length)
        self.text_tokens: TextTokenizer = self.tokenizer
        self.notes: dict[bytes, ScoreNote] = {}
        self.answer_tokens: dict[tuple[int, ...], int] = {}  # answer → its completion tokens

    # --- the tokenizer's side ------------------------------------------------------------------
    def encode_target(self, text: str) -> list[int]:
        """A given target (or foil) is one piece: how the server splits it is not known."""
        return [self.text_tokens.piece_id(text.encode("utf-8"), server_token=False)]

    def token_count(self, ids: Sequence[int]) -> int:
        """An estimate (characters / 4): the server's tokenizer is not known here; a prompt
        it finds too long is refused by the server, with its own counts."""
        return estimated_tokens(len(ids))

    # --- requests ------------------------------------------------------------------------------
    def _chat(self, body: dict[str, Any], prompt_chars: int) -> dict[str, Any]:
        """POST a chat completion, counted; an over-long prompt is a ContextLengthError."""
        try:
            answer = self.client.post("/v1/chat/completions", {"model": self.served.name, **body})
        except EngineError as exc:
            if exc.status == 400 and ("context" in exc.detail or "length" in exc.detail):
                extra = int(body.get("max_tokens") or 1)
                raise self._too_long(exc.detail, prompt_chars, extra) from None
            raise
        usage = answer.get("usage") or {}
        self._count_request(int(usage.get("prompt_tokens") or estimated_tokens(prompt_chars)))
        if not answer.get("choices"):
            raise EngineError(f"the server at {self.client.base} answered with no choices")
        return dict(answer)

    def _too_long(self, detail: str, prompt_chars: int, extra: int) -> ContextLengthError:
        """The server's refusal of an over-long prompt, with its own counts where its message
        gives them (vLLM and OpenAI do), else the prompt's characters / 4 as an estimate."""
        limit = re.search(r"context length is (\d+)", detail)
        used = re.search(r"(\d+) (?:input |prompt )?tokens", detail.split("However", 1)[-1])
        return ContextLengthError(
            int(used.group(1)) if used else estimated_tokens(prompt_chars),
            extra,
            int(limit.group(1)) if limit else self.context_length,
            self.served.name,
        )

    def _logprob_body(self, max_tokens: int) -> dict[str, Any]:
        return {
            "max_tokens": max(1, max_tokens),
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }

    def _prefilled(self, messages: list[dict[str, str]], prefill: str) -> dict[str, Any]:
        """Messages ending with the assistant's answer so far, to be continued (vLLM's form;
        `openai_connect` checks on connect that the server continues it exactly)."""
        return {
            "messages": [*messages, {"role": "assistant", "content": prefill}],
            "continue_final_message": True,
            "add_generation_prompt": False,
        }

    # --- generation ----------------------------------------------------------------------------
    def _greedy_body(self, ids: Sequence[int], max_new_tokens: int) -> dict[str, Any]:
        """The request for the greedy answer to prompt `ids` (with the tokens' log-probabilities
        where the tier has them)."""
        body: dict[str, Any] = {"messages": messages_of(self.decode(ids))}
        if self.capabilities.scoring.logprobs:
            return body | self._logprob_body(max_new_tokens)
        return body | {"max_tokens": max_new_tokens, "temperature": 0}

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """The server's greedy answer as pieces (its own tokens where it returns them),
        ending with END_ID when it stopped by itself."""
        answer = self._chat(self._greedy_body(ids, max_new_tokens), len(ids))
        choice = answer["choices"][0]
        pieces = self._pieces(choice, str((choice.get("message") or {}).get("content") or ""))
        used = (answer.get("usage") or {}).get("completion_tokens")
        self.answer_tokens[tuple(pieces)] = int(used or len(pieces))
        if choice.get("finish_reason") == "stop":
            pieces.append(END_ID)
        return pieces

    def _pieces(self, choice: dict[str, Any], text: str) -> list[int]:
        """The pieces of an answer's `text` (a whole message, or a streamed delta): the
        server's tokens from its log-probabilities (without the stop token some servers list
        after the text), else the text as one piece."""
        entries = answer_entries(choice, text.encode("utf-8"))
        if entries:
            return [self.text_tokens.piece_id(token_bytes(e)) for e in entries]
        return [self.text_tokens.piece_id(text.encode("utf-8"), server_token=False)] if text else []

    def stream_generate(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[list[int]]:
        """The greedy answer as the server streams it (pieces; END_ID when it stopped)."""
        body = {"model": self.served.name, **self._greedy_body(ids, max_new_tokens)}
        self._count_request(estimated_tokens(len(ids)))
        for event in self.client.stream("/v1/chat/completions", body):
            for choice in event.get("choices", []):
                new = self._pieces(choice, str((choice.get("delta") or {}).get("content") or ""))
                if choice.get("finish_reason") == "stop":
                    new.append(END_ID)
                if new:
                    yield new

    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        raise NotImplementedError("the openai backend scores requests, not padded batches")

    # --- scoring -------------------------------------------------------------------------------
    def _score_rows(
        self,
        inputs: list[list[int]],
        target: list[int],
        progress: ProgressFn | None,
        reference: Sequence[int] | None,
    ) -> np.ndarray:
        """Each variant as its own request (or a few, where it departs from the answer),
        `concurrency` in flight, longest shared prefix with the prompt first (so a provider's
        prompt cache serves them)."""
        ref = list(reference) if reference is not None else []
        order = sorted(range(len(inputs)), key=lambda i: -common_prefix(inputs[i], ref))
        chars = sum(len(x) for x in inputs)
        per_row = 1 if self.capabilities.scoring.logprobs or self.many_samples else SAMPLES
        self.check_budget(per_row * len(inputs), estimated_tokens(chars))
        if self.capabilities.scoring is Scoring.TEXT:

            def one(i: int) -> np.ndarray:
                n = BASE_SAMPLES if inputs[i] == ref else SAMPLES
                return self._sample_row(inputs[i], target, n)
        else:

            def one(i: int) -> np.ndarray:
                return self._walk_row(inputs[i], target)

        return rows_in_order(
            order, one, len(target), self.options.concurrency, progress, self.counters
        )

    def score_note(self, ids: Sequence[int], target: Sequence[int]) -> ScoreNote | None:
        """How the figure of variant `ids` was obtained (None: not scored here)."""
        return self.notes.get(self._row_key(ids, target))

    def _walk_row(self, ids: list[int], target: list[int]) -> np.ndarray:
        lps, note = self.walk(messages_of(self.decode(ids)), target, len(ids))
        self.notes[self._row_key(ids, target)] = note
        return lps

    def walk(
        self, messages: list[dict[str, str]], target: list[int], prompt_chars: int
    ) -> tuple[np.ndarray, ScoreNote]:
        """log p(each target piece) after `messages`, from greedy generations with their
        alternatives: exact where the answer is followed, else an upper bound (module
        docstring). Returns the per-piece figures and how they were obtained."""
        # an end-of-answer id is an empty piece: it is not scored (its log-probability is not
        # shown by chat APIs)
        pieces = [self.text_tokens.piece_bytes([t], skip_special=True) for t in target]
        whole = b"".join(pieces)
        starts = np.cumsum([0] + [len(p) for p in pieces])
        known = all(self.text_tokens.is_server_token(t) for t in target)
        out = np.zeros(len(target), dtype=np.float64)
        note = ScoreNote("exact")
        got = 0  # bytes of the answer accounted for

        def piece_of(byte: int) -> int:  # the piece holding byte offset `byte`
            return int(np.searchsorted(starts, byte, side="right") - 1)

        def expected_at(at: int) -> bytes | None:
            """The server token expected at byte `at` (known tokens), or None (any prefix)."""
            if not known:
                return None
            k = piece_of(at)
            return pieces[k] if starts[k] == at else None

        def matches(data: bytes, at: int) -> bool:
            if not data:
                return False
            wanted = expected_at(at)
            return data == wanted if wanted is not None else whole.startswith(data, at)

        while got < len(whole):
            try:
                prefill = whole[:got].decode("utf-8")
            except UnicodeDecodeError:  # inside a character: a prefill cannot say it
                note.kind = "bound"
                return out, note
            left = len(target) - piece_of(got) if known else max(1, (len(whole) - got) // 2)
            body = self._logprob_body(left)
            body |= self._prefilled(messages, prefill) if got else {"messages": messages}
            choice = self._chat(body, prompt_chars + got)["choices"][0]
            note.requests += 1
            entries = ((choice.get("logprobs") or {}).get("content")) or []
            departed = False
            for n, entry in enumerate(entries):
                data = token_bytes(entry)
                if matches(data, got):
                    out[piece_of(got + len(data) - 1)] += float(entry["logprob"])
                    got += len(data)
                    continue
                departed = True
                if note.answer is None:  # the variant's own answer from here on
                    rest = b"".join(token_bytes(e) for e in entries[n:])
                    note.answer = (whole[:got] + rest).decode("utf-8", errors="replace")
                alternatives = entry.get("top_logprobs") or []
                found = next((a for a in alternatives if matches(token_bytes(a), got)), None)
                if found is None:
                    # not among the alternatives: at most as likely as the least likely shown
                    lowest = min(
                        [float(entry["logprob"])] + [float(a["logprob"]) for a in alternatives]
                    )
                    out[piece_of(got)] += lowest
                    note.kind = "bound"
                    return out, note
                out[piece_of(got + len(token_bytes(found)) - 1)] += float(found["logprob"])
                got += len(token_bytes(found))
                break
            if got >= len(whole):
                break
            if departed and not self.prefill:
                note.kind = "bound"  # the rest of the answer counted as at most 0
                return out, note
            if not departed and choice.get("finish_reason") == "stop":
                # the variant ended its answer early: the next token's log-probability is not
                # shown (at most 0); the answer it gave is recorded
                if note.answer is None:
                    note.answer = whole[:got].decode("utf-8", errors="replace")
                note.kind = "bound"
                return out, note
            if not entries:
                raise EngineError(
                    f"the server at {self.client.base} returned no log-probabilities for an "
                    "answer it said it would score; it may have changed since connecting"
                )
            if not self.prefill:  # ran out of tokens (an unknown split): nothing to continue
                note.kind = "bound"
                return out, note
        return out, note

    # --- the text-only tier ----------------------------------------------------------------------
    def _sample_row(self, ids: list[int], target: list[int], n: int) -> np.ndarray:
        """The mean similarity of a few sampled answers to the original, in the last column
        (the others 0), and its interval in the row's note."""
        answer = self.text_tokens.piece_bytes(target, skip_special=True).decode(
            "utf-8", errors="replace"
        )
        messages = messages_of(self.decode(ids))
        max_tokens = self.answer_tokens.get(tuple(target)) or max(8, len(answer) // 2)
        texts = self._samples(messages, max_tokens, len(ids), n)
        sims = [similarity(answer, t) for t in texts]
        low, high = mean_interval(sims)
        self.notes[self._row_key(ids, target)] = ScoreNote(
            "estimate", requests=1 if self.many_samples else n, low=low, high=high, samples=sims
        )
        out = np.zeros(len(target), dtype=np.float64)
        out[-1] = float(np.mean(sims))
        return out

    def _samples(
        self, messages: list[dict[str, str]], max_tokens: int, chars: int, n: int
    ) -> list[str]:
        """`n` sampled answers: in one request where the server takes `n`, else one each."""
        body = {"messages": messages, "max_tokens": max_tokens, "temperature": SAMPLE_TEMPERATURE}
        if self.many_samples:
            try:
                answer = self._chat({**body, "n": n}, chars)
                texts = [c.get("message", {}).get("content") or "" for c in answer["choices"]]
                if len(texts) == n:
                    return [str(t) for t in texts]
            except EngineError as exc:
                if exc.status != 400:
                    raise
            self.many_samples = False
        return [
            str(self._chat(body, chars)["choices"][0].get("message", {}).get("content") or "")
            for _ in range(n)
        ]


def estimated_tokens(chars: int) -> int:
    """A prompt's token count estimated from its characters (where the server does not say):
    for budgets and messages only, never a figure of an explanation."""
    return -(-chars // CHARS_PER_TOKEN)


def answer_entries(choice: dict[str, Any], content: bytes) -> list[dict[str, Any]]:
    """The log-probability entries that spell the answer's text: trailing entries beyond it
    (a stop token such as `<|im_end|>` that vLLM lists) are left out."""
    entries = list(((choice.get("logprobs") or {}).get("content")) or [])
    while entries and b"".join(token_bytes(e) for e in entries) != content:
        if not content.startswith(b"".join(token_bytes(e) for e in entries[:-1])):
            break
        entries.pop()
    return entries


def token_bytes(entry: dict[str, Any]) -> bytes:
    """A log-probability entry's token as bytes (its `bytes` field, else its text)."""
    raw = entry.get("bytes")
    if isinstance(raw, list) and raw:
        return bytes(int(b) & 0xFF for b in raw)
    return str(entry.get("token") or "").encode("utf-8")


_WORD = re.compile(r"\w+", re.UNICODE)


def similarity(answer: str, sample: str) -> float:
    """How much of the original answer a sample keeps: the matching ratio of their lower-cased
    words (1: the same words in the same order; 0: none in common)."""
    a = _WORD.findall(answer.lower())
    b = _WORD.findall(sample.lower())
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def t975(df: int) -> float:
    """The Student-t 97.5% quantile for `df` degrees of freedom (a table; 1.96 beyond it)."""
    if df <= 0:
        return math.inf
    below = [k for k in T975 if k <= df]
    return T975[max(below)] if df <= 60 else 1.96


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """A 95% confidence interval of the mean of `values` (Student t), clipped to [0, 1]."""
    n = len(values)
    mean = float(np.mean(values)) if n else 0.0
    if n < 2:
        return 0.0, 1.0
    half = t975(n - 1) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)


def difference_interval(base: Sequence[float], variant: Sequence[float]) -> tuple[float, float]:
    """A 95% interval of mean(base) − mean(variant) (Welch's t, independent samples)."""
    nb, nv = len(base), len(variant)
    diff = float(np.mean(base)) - float(np.mean(variant))
    if nb < 2 or nv < 2:
        return -1.0, 1.0
    vb = float(np.var(base, ddof=1)) / nb
    vv = float(np.var(variant, ddof=1)) / nv
    se = math.sqrt(vb + vv)
    if se == 0:
        return diff, diff
    df = (vb + vv) ** 2 / ((vb**2) / (nb - 1) + (vv**2) / (nv - 1))
    half = t975(int(df)) * se
    return max(-1.0, diff - half), min(1.0, diff + half)
