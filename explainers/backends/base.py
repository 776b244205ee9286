"""The small protocol every backend shares: tokenise with offsets, score many input variants'
target log-probabilities in batched forwards, and generate the greedy continuation.

Batching is done here once, in numpy (left padding + attention mask + position ids), so the
Torch and ONNX Runtime backends only run a padded batch. Torch adds gradients and attentions.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.backends.continuations import Continuations
from promptxray.explainers.details import RemoteInfo
from promptxray.explainers.errors import UnsupportedMethodError

T = TypeVar("T")

ProgressFn = Callable[[int, int], None]

MIN_SHARED = 4  # below this many shared tokens, prefix reuse is not worth a cache
MEMORY_FRACTION = 0.4  # of the memory available now, for one batch's activations


def available_bytes() -> int:
    """What the OS reports available now (MemAvailable), or 10 GiB where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 10 << 30


def memory_budget() -> int:
    """Bytes one batch may use: a fraction of what the OS reports available right now."""
    return int(available_bytes() * MEMORY_FRACTION)


@dataclass
class Counters:
    """How much model work an explanation cost: batched calls and sequences run, and for a
    served engine the requests and prompt tokens sent to it."""

    forward_passes: int = 0
    sequences: int = 0
    requests: int = 0
    tokens_sent: int = 0

    def reset(self) -> None:
        self.forward_passes = 0
        self.sequences = 0
        self.requests = 0
        self.tokens_sent = 0


@dataclass
class ScoreNote:
    """How a backend obtained one variant's figure, where it may not be exact (a server's
    chat tiers): "exact", "bound" (an upper bound on the answer's log-probability; `answer`:
    what the model answers instead) or "estimate" (text only: `samples`' similarities to the
    answer, their mean the figure, `low`..`high` its 95% interval)."""

    kind: str
    answer: str | None = None
    requests: int = 0
    low: float | None = None
    high: float | None = None
    samples: list[float] = field(default_factory=list)


@dataclass
class PaddedBatch:
    """A left-padded batch: every row ends at the last column, so target positions line up."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    position_ids: np.ndarray


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> PaddedBatch:
    """Left-pad rows to one length; position ids count only real tokens (cumsum(mask) - 1)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = row
            mask[i, width - len(row) :] = 1
    positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    return PaddedBatch(ids, mask, positions)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def closest_kept(key: Sequence[int], kept: Mapping[tuple[int, ...], T]) -> tuple[int, T | None]:
    """The kept entry whose key shares the longest prefix with `key`, and that length (at most
    len(key) - 1, so at least one token is left to run); (0, None) when none shares any."""
    best, base = 0, None
    for other, value in kept.items():
        n = min(common_prefix(key, other), len(key) - 1)
        if n > best:
            best, base = n, value
    return best, base


class Backend(Continuations, ABC):
    """A loaded model behind the operations explainers need. Subclasses run padded batches;
    continuations of a prompt (the "why not …?" alternatives) come from `Continuations`."""

    name: str = "base"
    # what this backend can do: methods and front ends ask this, never `name`
    capabilities: Capabilities = Capabilities()
    max_batch_tokens: int = 4096
    # whether variants of a reference prompt run only their suffixes after the prefix they
    # share with it (`_score_after_prefix`); False: plain padded batches
    prefix_reuse: bool = False
    # "fp32": exact scores; a backend may offer cheaper approximate ones for previews
    scoring_precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, tokenizer: Any, model_id: str, context_length: int) -> None:
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.context_length = context_length
        self.counters = Counters()
        self.score_cache: OrderedDict[bytes, np.ndarray] | None = None
        self.score_cache_size = 0
        self.scoring_precision = "fp32"

    @contextmanager
    def precision(self, name: str) -> Iterator[None]:
        """Score in `name` precision inside the block (one of `scoring_precisions`; torch on
        CPU also offers "bf16", an approximate preview: bench/README.md has its speed and
        error). Scores of different precisions never share the score cache."""
        if name not in self.scoring_precisions:
            raise ValueError(
                f"precision {name!r} is not offered by the {self.name} backend "
                f"(it offers {', '.join(self.scoring_precisions)})"
            )
        before = self.scoring_precision
        self.scoring_precision = name
        try:
            yield
        finally:
            self.scoring_precision = before

    # --- tokenizer ---------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(
        self, text: str, add_special_tokens: bool
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and (start, end) character offsets into `text`."""
        enc = self.tokenizer(
            text, add_special_tokens=add_special_tokens, return_offsets_mapping=True
        )
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def encode_target(self, text: str) -> list[int]:
        """Ids of a user-given target text, to be appended after the prompt."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The chat template applied to `messages`, ready for the assistant's answer."""
        return str(
            self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def piece(self, token_id: int) -> str:
        """The model's own text for one token (for display next to the user's text)."""
        return self.decode([token_id])

    def token_count(self, ids: Sequence[int]) -> int:
        """How many of the model's tokens `ids` are (what counts against its context)."""
        return len(ids)

    def eos_ids(self) -> set[int]:
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return ids

    # --- scoring -----------------------------------------------------------------------------
    def target_logprobs(
        self,
        inputs: Sequence[Sequence[int]],
        target: Sequence[int],
        progress: ProgressFn | None = None,
        reference: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Teacher-forced log p(target_t | input, target_<t) for each input: shape [B, T].

        `reference` (the unmodified prompt) lets a backend reuse the work its variants share
        with it (torch: the key/value cache of their common prefix). Identical inputs are
        scored once, and with `enable_score_cache` inputs scored before are not rerun."""
        if not target:
            raise ValueError("target must have at least one token")
        target = [int(t) for t in target]
        keys = [self._row_key(x, target) for x in inputs]
        out = np.zeros((len(inputs), len(target)), dtype=np.float64)
        todo: dict[bytes, int] = {}  # key -> index of its first input
        for i, key in enumerate(keys):
            if self.score_cache is not None and key in self.score_cache:
                self.score_cache.move_to_end(key)
                out[i] = self.score_cache[key]
            elif key not in todo:
                todo[key] = i
        if todo:
            firsts = list(todo.values())
            scored = self._score_rows(
                [list(inputs[i]) for i in firsts], target, progress, reference
            )
            fresh = dict(zip(todo, scored, strict=True))
            for i, key in enumerate(keys):
                if key in fresh:
                    out[i] = fresh[key]
            if self.score_cache is not None:
                for key, row in fresh.items():
                    self.score_cache[key] = row
                while len(self.score_cache) > self.score_cache_size:
                    self.score_cache.popitem(last=False)
        elif progress:
            progress(len(inputs), len(inputs))
        return out

    def enable_score_cache(self, size: int = 100_000) -> None:
        """Remember the scores of inputs already run, so that re-explaining an edited prompt
        reruns only the variants whose text changed (the language server turns this on)."""
        if self.score_cache is None:
            self.score_cache = OrderedDict()
        self.score_cache_size = size

    def _row_key(self, ids: Sequence[int], target: Sequence[int]) -> bytes:
        digest = hashlib.blake2b(np.asarray(ids, dtype=np.int64).tobytes(), digest_size=16)
        digest.update(b"|" + np.asarray(target, dtype=np.int64).tobytes())
        if self.scoring_precision != "fp32":
            digest.update(b"|" + self.scoring_precision.encode())
        return digest.digest()

    def _score_rows(
        self,
        inputs: list[list[int]],
        target: list[int],
        progress: ProgressFn | None,
        reference: Sequence[int] | None,
    ) -> np.ndarray:
        """Score distinct inputs: with `prefix_reuse`, variants of `reference` run after the
        prefix they share with it (`_score_after_prefix`: equal to plain batches within float
        rounding); without it, without a reference, or when no row shares MIN_SHARED tokens,
        in plain left-padded batches."""
        if reference is not None and self.prefix_reuse:
            plan = self._suffix_plan(inputs, reference)
            if plan is not None:
                return self._score_after_prefix(plan, inputs, target, reference, progress)
        rows = [x + target[:-1] for x in inputs]
        return self._score_batches(
            self._chunks(rows),
            len(rows),
            len(target),
            lambda chunk: self._run_logprobs(
                left_pad([rows[i] for i in chunk], self.pad_id), target
            ),
            progress,
        )

    def _score_batches(
        self,
        chunks: Iterable[list[int]],
        rows: int,
        t: int,
        run: Callable[[list[int]], np.ndarray],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """Log-probs [rows, t], one forward per batch of row indices (`run(chunk)` scores
        one): each counts as a forward pass, and `progress` hears after each."""
        out = np.zeros((rows, t), dtype=np.float64)
        done = 0
        for chunk in chunks:
            out[chunk] = run(chunk)
            self.counters.forward_passes += 1
            self.counters.sequences += len(chunk)
            done += len(chunk)
            if progress:
                progress(done, rows)
        return out

    def _score_after_prefix(
        self,
        plan: tuple[list[int], list[int]],
        inputs: list[list[int]],
        target: list[int],
        reference: Sequence[int],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """Score rows after the prefix each shares with `reference` (`plan`: `_suffix_plan`);
        backends with `prefix_reuse` implement it."""
        raise NotImplementedError(f"the {self.name} backend does not reuse prefixes")

    def _suffix_plan(
        self, inputs: list[list[int]], reference: Sequence[int]
    ) -> tuple[list[int], list[int]] | None:
        """For prefix reuse: each row's prefix shared with `reference` (keeping at least its
        last input token, whose logits predict target[0]) and the rows ordered longest shared
        first; None when no row shares MIN_SHARED tokens (plain batches are as fast)."""
        ref = [int(t) for t in reference]
        shared = [min(common_prefix(x, ref), len(x) - 1) for x in inputs]
        if max(shared, default=0) < MIN_SHARED:
            return None
        return shared, sorted(range(len(inputs)), key=lambda i: -shared[i])

    def _score_suffixes(
        self,
        plan: tuple[list[int], list[int]],
        inputs: list[list[int]],
        target: list[int],
        run: Callable[[PaddedBatch, int], np.ndarray],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """Score rows by batches of their suffixes after the prefix the batch shares with the
        reference (`run(batch, p)`: log p(target) of suffixes after its first `p` positions)."""
        shared, order = plan

        def suffixes(chunk: list[int]) -> np.ndarray:
            p = min(shared[i] for i in chunk)
            return run(left_pad([inputs[i][p:] + target[:-1] for i in chunk], self.pad_id), p)

        chunks = self._prefix_chunks(order, shared, inputs, len(target))
        return self._score_batches(chunks, len(inputs), len(target), suffixes, progress)

    def _prefix_chunks(
        self, order: list[int], shared: list[int], inputs: list[list[int]], t: int
    ) -> Iterator[list[int]]:
        """Batches of rows sorted by shared prefix, longest first: each grows while its
        padded suffix width stays within 1.25x (+16) of its first row's, so no row runs much
        more than its own suffix, and while `batch_rows` allows for memory and throughput."""
        start = 0
        while start < len(order):
            first = order[start]
            first_width = len(inputs[first]) - shared[first] + t - 1
            chunk = [first]
            p = shared[first]
            for i in order[start + 1 :]:
                p = min(p, shared[i])
                w = max(len(inputs[j]) - p + t - 1 for j in [*chunk, i])
                if w > 1.25 * first_width + 16 or len(chunk) + 1 > self.batch_rows(w, p):
                    break
                chunk.append(i)
            yield chunk
            start += len(chunk)

    def _chunks(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        """Group row indices into batches that fit both the throughput cap (`max_batch_tokens`
        padded tokens) and the memory budget (`batch_rows`)."""
        width = max(len(r) for r in rows)
        per_batch = self.batch_rows(width)
        return [
            list(range(i, min(i + per_batch, len(rows)))) for i in range(0, len(rows), per_batch)
        ]

    def batch_rows(self, width: int, cached: int = 0) -> int:
        """How many rows of `width` new tokens (attending to `cached` earlier ones) one batch
        may hold: the throughput cap, lowered when the estimated peak memory of a row times
        the rows would exceed the memory budget. Never below one."""
        by_tokens = max(1, self.max_batch_tokens // max(1, width))
        per_row = max(1, self.row_bytes(width, cached))
        by_memory = max(1, memory_budget() // per_row)
        return int(min(by_tokens, by_memory))

    def row_bytes(self, width: int, cached: int = 0) -> int:
        """Estimated peak bytes one row of a forward needs (backends refine this)."""
        return 64 * 1024 * width

    def score_note(self, ids: Sequence[int], target: Sequence[int]) -> ScoreNote | None:
        """How the figure of variant `ids` was obtained, where it may not be exact (None: an
        exact log-probability, as on every backend with `Scoring.PROMPT`)."""
        return None

    def remote_info(self) -> RemoteInfo | None:
        """For a backend behind a server: which model answered, where, the tier and the
        cost so far (None: a model run here)."""
        return None

    # --- next tokens (counterfactual edits, foil candidates) -----------------------------------
    def next_token_logits(self, batch: PaddedBatch, keep: int | Sequence[int]) -> np.ndarray:
        """Logits [B, K, vocab] of a left-padded batch at the kept positions (an int: the
        last K; a sequence: those positions). Backends with `capabilities.logits` implement
        it; the others raise UnsupportedMethodError."""
        raise UnsupportedMethodError(
            f"this needs next-token logits, which the {self.name} backend does not expose; "
            "use the torch or onnx backend, or occlusion"
        )

    def logits_at(self, ids: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """Logits [len(positions), V] of one unpadded sequence, read at the given positions."""
        out = self.next_token_logits(left_pad([list(ids)], self.pad_id), list(positions))[0]
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        return np.asarray(out)

    def top_tokens(self, ids: Sequence[int], positions: Sequence[int], k: int) -> list[list[int]]:
        """The k most likely next tokens after each of `positions` of one sequence (best
        first), from one forward (a served engine answers from its own top log-probs)."""
        logits = self.logits_at(ids, positions)
        return [[int(t) for t in np.argsort(-row, kind="stable")[:k]] for row in logits]

    def next_token_choice(
        self, rows: Sequence[Sequence[int]], token: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each row, the greedy next token and the log-probability of `token` there
        (left-padded batches, like target_logprobs; the [B, V] logits are not kept)."""
        greedy: list[np.ndarray] = []
        logp: list[np.ndarray] = []
        for chunk in self._chunks(rows):
            batch = left_pad([rows[i] for i in chunk], self.pad_id)
            last = self.next_token_logits(batch, 1)[:, -1, :]
            greedy.append(last.argmax(axis=-1))
            logp.append(log_softmax(last)[:, token])
            self.counters.forward_passes += 1
            self.counters.sequences += len(chunk)
        return np.concatenate(greedy), np.concatenate(logp)

    def stream_generate(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[list[int]]:
        """The greedy continuation in pieces of new token ids (backends with
        `capabilities.streams` yield them as the model makes them; here, in one piece)."""
        yield self.generate(ids, max_new_tokens)

    @abstractmethod
    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        """Log-probs [B, T] of `target` read from the last T positions of a padded batch."""

    @abstractmethod
    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation of `ids` (new tokens only, stopping after an end-of-sequence)."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, in float64."""
    x = logits.astype(np.float64)
    top = x.max(axis=-1, keepdims=True)
    return np.asarray(x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True)))
