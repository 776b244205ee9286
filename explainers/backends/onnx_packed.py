"""Runs the fused explain graph (`models/onnx_fused.py`): rows packed into one sequence after a
shared past, logits read only where they are needed, keys/values returned whole.

A left-padded batch (what the Backend batching produces) is unpadded here: each row's real
tokens are packed one after the other, each continuing the past at position p, so no padding
token is ever computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from promptxray.explainers.backends.base import PaddedBatch
from promptxray.explainers.errors import ModelLoadError
from promptxray.explainers.models.onnx_fused import io_names

KV = list[tuple[np.ndarray, np.ndarray]]  # per layer, keys and values [1, kv_heads, L, d]


def real_rows(batch: PaddedBatch) -> list[np.ndarray]:
    """The rows of a left-padded batch without their padding."""
    return [
        row[mask.astype(bool)]
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    ]


class PackedRunner:
    """The fused graph in an InferenceSession, with the OnnxRunner interface."""

    graph = "fused"

    def __init__(self, path: Path, threads: int | None = None, spinning: bool = False) -> None:
        from promptxray.explainers.backends.onnx_backend import make_session

        self.session = make_session(path, threads, spinning)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.layers = sum(1 for name in inputs if name.startswith("past_key_"))
        names, self.outputs = io_names(self.layers)
        if self.layers == 0 or set(inputs) != set(names):
            raise ModelLoadError(
                f"{path} takes {sorted(inputs)}, not the fused explain graph's inputs: export "
                "it again with `promptxray export-onnx`"
            )
        kv_heads, head_dim = inputs["past_key_0"].shape[1], inputs["past_key_0"].shape[3]
        empty = np.zeros((1, int(kv_heads), 0, int(head_dim)), dtype=np.float32)
        self.empty: KV = [(empty, empty)] * self.layers

    def run(
        self,
        rows: Sequence[Sequence[int] | np.ndarray],
        reads: Sequence[Sequence[int] | np.ndarray],
        past: KV | None,
        p: int | Sequence[int],
        outputs: Sequence[str],
    ) -> list[np.ndarray]:
        """Run `rows` packed, row i continuing the first `p` (or `p[i]`) positions of `past`
        (whole: a row sees only its own prefix of it); `reads[i]` are the indices within row i
        whose next-token logits are read, in order."""
        lengths = [len(r) for r in rows]
        starts = np.cumsum([0, *lengths[:-1]])
        seen = [p] * len(rows) if isinstance(p, int) else list(p)
        feeds: dict[str, np.ndarray] = {
            "input_ids": np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])[None],
            "position_ids": np.concatenate(
                [np.arange(s, s + n) for s, n in zip(seen, lengths, strict=True)]
            )[None],
            "row_ids": np.repeat(np.arange(len(rows)), lengths),
            "past_seen": np.repeat(np.asarray(seen, dtype=np.int64), lengths),
            "read_index": np.concatenate(
                [s + np.asarray(r, dtype=np.int64) for s, r in zip(starts, reads, strict=True)]
            ),
        }
        layers = self.empty if past is None or max(seen) == 0 else past
        for i, (k, v) in enumerate(layers):
            feeds[f"past_key_{i}"] = k
            feeds[f"past_value_{i}"] = v
        return list(self.session.run(list(outputs), feeds))

    def logprobs(
        self, batch: PaddedBatch, target: list[int], past: KV | None = None, p: int = 0
    ) -> np.ndarray:
        """log p(target) [B, T] read at the last T real positions of each row, the rows
        continuing the first `p` positions of `past`."""
        rows = real_rows(batch)
        return self.logprobs_rows(rows, [p] * len(rows), target, past or self.empty)

    def logprobs_rows(
        self,
        rows: Sequence[Sequence[int] | np.ndarray],
        seen: Sequence[int],
        target: list[int],
        past: KV,
    ) -> np.ndarray:
        """log p(target) [B, T] of rows (each ending with target[:-1]) continuing their own
        prefix `seen[i]` of `past`."""
        t = len(target)
        reads = [range(len(r) - t, len(r)) for r in rows]
        logits, logz = self.run(rows, reads, past, seen, ["logits", "log_normalizer"])
        picked = logits.reshape(len(rows), t, -1)[:, np.arange(t), target]
        return picked.astype(np.float64) - logz.reshape(len(rows), t).astype(np.float64)

    def logits_at(self, batch: PaddedBatch, keep: int | Sequence[int]) -> np.ndarray:
        """Logits [B, K, V] at the kept positions of a left-padded batch (an int: the last K;
        a sequence: those positions of the padded width). A kept position inside a row's
        padding reads that row's first token (callers do not use it)."""
        width = batch.input_ids.shape[1]
        wanted = np.arange(width - keep, width) if isinstance(keep, int) else np.asarray(list(keep))
        rows = real_rows(batch)
        reads = [np.clip(wanted - (width - len(r)), 0, len(r) - 1) for r in rows]
        (logits,) = self.run(rows, reads, None, 0, ["logits"])
        return np.asarray(logits.reshape(len(rows), len(wanted), -1))

    def logits(self, batch: PaddedBatch) -> np.ndarray:
        """Logits [B, S, V] at every position of a left-padded batch (verification)."""
        return self.logits_at(batch, batch.input_ids.shape[1])

    def keys_values(self, ids: Sequence[int], past: KV | None = None, p: int = 0) -> KV:
        """Keys/values [1, kv_heads, p + len(ids), d] of `ids` after the first `p` positions
        of `past`."""
        if past is not None and 0 < p < past[0][0].shape[2]:  # only its first p positions
            past = [(k[:, :, :p].copy(), v[:, :, :p].copy()) for k, v in past]
        out = self.run([list(ids)], [[len(ids) - 1]], past, p, self.outputs[2:])
        return list(zip(out[0::2], out[1::2], strict=True))

    def generate(self, ids: Sequence[int], max_new_tokens: int, eos: set[int]) -> list[int]:
        """Greedy continuation, one token a step after the keys/values of the ones before."""
        new: list[int] = []
        step, kv, p = [int(t) for t in ids], None, 0
        for _ in range(max_new_tokens):
            out = self.run([step], [[len(step) - 1]], kv, p, ["logits", *self.outputs[2:]])
            token = int(out[0][-1].argmax())
            kv = list(zip(out[1::2], out[2::2], strict=True))
            p = kv[0][0].shape[2]
            new.append(token)
            if token in eos:
                break
            step = [token]
        return new
