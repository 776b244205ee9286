"""ONNX Runtime backend: batched target log-probabilities and greedy generation on an exported
model. Forward-only: gradient and attention methods are refused by the registry's capability
check, which names the methods that do run here.

Three graph kinds, named by the manifest (`graph`): the "fused" graph of Llama-family models
(models/onnx_fused.py: ORT's fused decoder operators, rows packed without padding, logits only
where the target is read, past keys/values in and out; run by `onnx_packed.PackedRunner`); the
older "explain" graph (models/onnx_graph.py: the same interface in plain operators, for Llama
models whose head size GroupQueryAttention's CPU kernel does not take); and the plain "logits"
graph (other architectures) with logits at every position. With the first two, occlusion reuses
the reference prompt's prefix as the torch backend does (the reference is run once; each batch
of variants runs only its suffixes after the prefix its rows share with it).

A quantized model may answer differently from the fp32 model it came from: the manifest
records the greedy-answer agreement measured at export; `explainers/answer_check.py` says
beside an explanation when its answer may differ from fp32 torch's, or checks it on request.
The lossless GGUF export (`--quantize gguf`) has torch's weights exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptxray.explainers.backends.base import (
    MIN_SHARED,
    Backend,
    PaddedBatch,
    ProgressFn,
    closest_kept,
)
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.backends.onnx_packed import PackedRunner
from promptxray.explainers.backends.threads import default_threads
from promptxray.explainers.errors import ModelLoadError, first_line
from promptxray.explainers.models.onnx_cache import (
    MANIFEST,
    MODEL_FILE,
    check_checksums,
    model_fingerprint,
    read_manifest,
)
from promptxray.explainers.models.onnx_graph import io_names

EXPECTED_INPUTS = {"input_ids", "attention_mask"}
KV = list[tuple[np.ndarray, np.ndarray]]  # per layer, keys and values [1, kv_heads, L, d]


def make_session(path: Path, threads: int | None = None, spinning: bool = False) -> Any:
    """An InferenceSession on the CPU, or ModelLoadError naming the file and what to do.
    `threads`: intra-op threads (default_threads()); `spinning`: whether idle pool threads
    busy-wait for the next op (ORT's default) or sleep (ours: as fast in bench/onnx.py, and
    it leaves the cores to the editor and other work between ops)."""
    import onnxruntime as ort

    if not path.exists():
        raise ModelLoadError(f"{path} is missing: re-export with `promptxray export-onnx`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no arena: ORT's arena keeps its largest batch's buffers for the session's life; plain
    # allocations gave a lower peak at the same speed (bench/README.md, "ONNX Runtime")
    options.enable_cpu_mem_arena = False
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(
            f"{path} is not a loadable ONNX model ({first_line(exc)}); delete {path.parent} and "
            "export again with `promptxray export-onnx`"
        ) from exc


class OnnxRunner:
    """One exported graph in an InferenceSession: logits of padded batches, target
    log-probabilities (after a shared past on the explain graph), greedy generation."""

    def __init__(
        self,
        path: Path,
        graph: str = "logits",
        threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        self.session = make_session(path, threads, spinning)
        self.graph = graph
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.layers = sum(1 for name in inputs if name.startswith("past_key_"))
        expected = set(io_names(self.layers)[0]) if graph == "explain" else EXPECTED_INPUTS
        if (
            set(inputs) != expected
            or "logits" not in outputs
            or (graph == "explain" and self.layers == 0)
        ):
            raise ModelLoadError(
                f"{path} takes {sorted(inputs)} and returns {outputs}; the ONNX backend needs "
                "input_ids + attention_mask -> logits (an explain graph also takes "
                "position_ids, logits_positions and past keys/values): export it with "
                "`promptxray export-onnx`"
            )
        self.dummy: KV = []
        if graph == "explain":
            kv_heads, head_dim = inputs["past_key_0"].shape[1], inputs["past_key_0"].shape[3]
            zeros = np.zeros((1, int(kv_heads), 1, int(head_dim)), dtype=np.float32)
            self.dummy = [(zeros, zeros)] * self.layers
        self.present_names = io_names(self.layers)[1][2:]

    def _feeds(
        self,
        ids: np.ndarray,
        mask: np.ndarray,
        positions: np.ndarray,
        read: np.ndarray,
        past: KV | None,
        p: int,
    ) -> dict[str, np.ndarray]:
        """Feeds for `ids` after the first `p` positions of `past` (None: no past; a dummy
        slot of length 1 with mask 0 stands in for it)."""
        rows = ids.shape[0]
        if past is None or p == 0:
            layers = self.dummy
            head = np.zeros((rows, 1), dtype=np.int64)
        else:
            layers = [(k[:, :, :p], v[:, :, :p]) for k, v in past]
            head = np.ones((rows, p), dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.concatenate([head, mask], axis=1),
            "position_ids": positions + p,
            "logits_positions": read.astype(np.int64),
        }
        for i, (k, v) in enumerate(layers):
            feeds[f"past_key_{i}"] = np.ascontiguousarray(k)
            feeds[f"past_value_{i}"] = np.ascontiguousarray(v)
        return feeds

    def logits(self, batch: PaddedBatch) -> np.ndarray:
        """Logits [B, S, vocab] at every position of a left-padded batch."""
        if self.graph != "explain":
            feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
            return np.asarray(self.session.run(["logits"], feeds)[0])
        read = np.arange(batch.input_ids.shape[1])
        feeds = self._feeds(
            batch.input_ids, batch.attention_mask, batch.position_ids, read, None, 0
        )
        return np.asarray(self.session.run(["logits"], feeds)[0])

    def logprobs(
        self, batch: PaddedBatch, target: list[int], past: KV | None = None, p: int = 0
    ) -> np.ndarray:
        """log p(target) [B, T] read at the last T positions of `batch`, whose rows continue
        the first `p` positions of `past` (explain graph; the logits graph takes no past)."""
        t = len(target)
        picked_at = np.array(target).reshape(1, -1, 1)
        if self.graph != "explain":
            last = self.logits(batch)[:, -t:, :].astype(np.float64)
            top = last.max(axis=-1, keepdims=True)
            logz = top[..., 0] + np.log(np.exp(last - top).sum(axis=-1))
            return np.take_along_axis(last, picked_at, axis=-1)[..., 0] - logz
        width = batch.input_ids.shape[1]
        read = np.arange(width - t, width)
        feeds = self._feeds(
            batch.input_ids, batch.attention_mask, batch.position_ids, read, past, p
        )
        logits, logz = self.session.run(["logits", "log_normalizer"], feeds)
        picked = np.take_along_axis(logits, picked_at, axis=-1)[..., 0]
        return picked.astype(np.float64) - logz.astype(np.float64)

    def keys_values(self, ids: Sequence[int], past: KV | None = None, p: int = 0) -> KV:
        """Keys/values [1, kv_heads, p + len(ids), d] of `ids` after the first `p` positions
        of `past` (explain graph)."""
        row = np.array([list(ids)], dtype=np.int64)
        positions = np.arange(len(ids), dtype=np.int64)[None]
        feeds = self._feeds(row, np.ones_like(row), positions, np.array([len(ids) - 1]), past, p)
        out = self.session.run(self.present_names, feeds)
        fresh = list(zip(out[0::2], out[1::2], strict=True))
        if past is None or p == 0:
            return fresh
        return [
            (np.concatenate([k[:, :, :p], nk], axis=2), np.concatenate([v[:, :, :p], nv], axis=2))
            for (k, v), (nk, nv) in zip(past, fresh, strict=True)
        ]

    def generate(self, ids: Sequence[int], max_new_tokens: int, eos: set[int]) -> list[int]:
        """Greedy continuation: with the explain graph each step runs one token after the
        keys/values of the ones before; with the logits graph one full forward per token."""
        seq = [int(t) for t in ids]
        new: list[int] = []
        kv: KV | None = None
        for _ in range(max_new_tokens):
            if self.graph == "explain":
                step = seq if kv is None else seq[-1:]
                p = 0 if kv is None else kv[0][0].shape[2]
                row = np.array([step], dtype=np.int64)
                feeds = self._feeds(
                    row,
                    np.ones_like(row),
                    np.arange(len(step), dtype=np.int64)[None],
                    np.array([len(step) - 1]),
                    kv,
                    p,
                )
                out = self.session.run(["logits", *self.present_names], feeds)
                token = int(out[0][0, -1].argmax())
                fresh = list(zip(out[1::2], out[2::2], strict=True))
                kv = (
                    fresh
                    if kv is None
                    else [
                        (np.concatenate([k, nk], axis=2), np.concatenate([v, nv], axis=2))
                        for (k, v), (nk, nv) in zip(kv, fresh, strict=True)
                    ]
                )
            else:
                batch = PaddedBatch(
                    np.array([seq], dtype=np.int64),
                    np.ones((1, len(seq)), dtype=np.int64),
                    np.arange(len(seq), dtype=np.int64)[None],
                )
                token = int(self.logits(batch)[0, -1].argmax())
            new.append(token)
            seq.append(token)
            if token in eos:
                break
        return new


class OnnxBackend(Backend):
    """An exported model folder (model.onnx, tokenizer, manifest.json) run by ONNX Runtime."""

    name = "onnx"
    capabilities = Capabilities(logits=True)
    # the logits graph returns logits for every position: keep its padded batches small
    # ([B*L, vocab] floats); the explain graph reads them only at the target's positions
    max_batch_tokens = 1024
    explain_batch_tokens = 4096
    # the explain graph materialises each layer's attention scores (no flash kernel): keep
    # them under this per batch (on long prompts smaller batches were faster, and lighter)
    score_bytes = 32 << 20

    def __init__(self, folder: Path, threads: int | None = None, spinning: bool = False) -> None:
        from transformers import AutoTokenizer

        manifest = read_manifest(folder)
        if not manifest.get("usable", False):
            raise ModelLoadError(
                f"{folder / MANIFEST} marks this export unusable (top-1 agreement "
                f"{manifest.get('verification', {}).get('top1_agreement')}); export again with "
                "--quantize none"
            )
        source = manifest.get("source_path")
        if (
            source
            and Path(source).is_dir()
            and model_fingerprint(source) != manifest["source_fingerprint"]
        ):
            raise ModelLoadError(
                f"{folder / MANIFEST} was exported from a different version of "
                f"{source}; export again with `promptxray export-onnx`"
            )
        check_checksums(folder, manifest)
        self.graph = str(manifest.get("graph", "logits"))
        self.runner: OnnxRunner | PackedRunner
        if self.graph == "fused":
            self.runner = PackedRunner(folder / MODEL_FILE, threads, spinning)
        else:
            self.runner = OnnxRunner(folder / MODEL_FILE, self.graph, threads, spinning)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.quantization = str(manifest.get("quantization", "none"))
        model_id = f"{manifest['source_model']} ({self.quantization})"
        super().__init__(tokenizer, model_id, int(manifest.get("context_length", 2048)))
        self.folder = folder
        self.manifest = manifest
        self.shape: dict[str, int] = dict(manifest.get("shape") or {})
        # greedy answers of this export vs fp32 torch at export time (None: an older export)
        self.answer_agreement: dict[str, Any] | None = manifest.get("answer_agreement")
        # the explain and fused graphs reuse the reference prompt's keys/values
        self.prefix_reuse = self.graph in ("explain", "fused")
        if self.prefix_reuse:
            self.max_batch_tokens = self.explain_batch_tokens
        self.prefixes: OrderedDict[tuple[int, ...], KV] = OrderedDict()
        self.prefix_size = 2
        self._reference: Backend | None = None

    # --- memory ------------------------------------------------------------------------------
    def row_bytes(self, width: int, cached: int = 0) -> int:
        """Peak bytes of one row of an explain-graph forward: per-token activations, one
        layer's attention scores (biased, shifted, exponentiated: three copies), the new
        keys/values the graph returns, and the logits at the read positions. (The fused
        graph's attention depends on the whole batch: `batch_rows` bounds it.)"""
        s = self.shape
        if not s or self.graph not in ("explain", "fused"):
            return super().row_bytes(width, cached)
        keys = width + max(cached, 1)
        activations = width * (4 * s["hidden"] + 3 * s["intermediate"])
        scores = 3 * s["heads"] * width * keys if self.graph == "explain" else 0
        presents = 2 * s["layers"] * s["kv_heads"] * s["head_dim"] * width
        logits = 2 * s["vocab"] * min(width, 64)
        return 4 * (activations + scores + presents + logits)

    def batch_rows(self, width: int, cached: int = 0) -> int:
        """The base rule, and at most `score_bytes` of attention scores: on the explain graph
        heads x width x keys floats a row; on the fused graph, whose rows are packed into one
        sequence of N tokens, heads x N x (cached + N) for the batch."""
        rows = super().batch_rows(width, cached)
        if not self.shape:
            return rows
        heads = self.shape["heads"]
        if self.graph == "explain":
            per_row = 4 * heads * width * (width + max(cached, 1))
            rows = min(rows, max(1, self.score_bytes // per_row))
        elif self.graph == "fused":
            rows = min(rows, max(1, self.packed_tokens(cached) // max(1, width)))
        return rows

    def packed_tokens(self, cached: int) -> int:
        """Tokens one fused-graph batch may pack after `cached` past positions: at most
        `max_batch_tokens`, and at most `score_bytes` of attention scores (heads x N x
        (cached + N) floats, every token scored against the whole packed row)."""
        floats = self.score_bytes / (4 * max(1, self.shape.get("heads", 1)))
        tokens = (-cached + (cached * cached + 4 * floats) ** 0.5) / 2
        return max(1, min(self.max_batch_tokens, int(tokens)))

    # --- scoring -----------------------------------------------------------------------------
    def next_token_logits(self, batch: PaddedBatch, keep: int | Sequence[int]) -> np.ndarray:
        """Logits [B, K, V] at the kept positions (the fused graph computes only those; the
        others read them from every position's logits)."""
        if isinstance(self.runner, PackedRunner):
            return self.runner.logits_at(batch, keep)
        logits = np.asarray(self.runner.logits(batch))
        if isinstance(keep, int):
            return logits[:, -keep:, :]
        return logits[:, np.asarray(list(keep), dtype=np.int64), :]

    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        return self.runner.logprobs(batch, target)

    def _score_after_prefix(
        self,
        plan: tuple[list[int], list[int]],
        inputs: list[list[int]],
        target: list[int],
        reference: Sequence[int],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """As on torch: the reference's keys/values are computed once. On the fused graph each
        row runs only what follows its own shared prefix (rows packed, each seeing its prefix
        of the reference's keys/values); on the explain graph each batch runs its rows'
        suffixes after their minimum shared prefix (the prefix's keys/values passed once,
        batch 1)."""
        kv = self.prefix_kv(reference)
        runner = self.runner
        if isinstance(runner, PackedRunner):
            shared, order = plan
            t = len(target)

            def run(chunk: list[int]) -> np.ndarray:
                rows = [inputs[i][shared[i] :] + target[:-1] for i in chunk]
                return runner.logprobs_rows(rows, [shared[i] for i in chunk], target, kv)

            chunks = self._packed_chunks(order, shared, inputs, t)
            return self._score_batches(chunks, len(inputs), t, run, progress)
        return self._score_suffixes(
            plan,
            inputs,
            target,
            lambda batch, p: runner.logprobs(batch, target, kv, p),
            progress,
        )

    def _packed_chunks(
        self, order: list[int], shared: list[int], inputs: list[list[int]], t: int
    ) -> Iterator[list[int]]:
        """Batches for the fused graph, rows in `order` (longest shared prefix first): each
        takes rows while their packed suffixes fit `packed_tokens` after the prefix."""
        start = 0
        while start < len(order):
            budget = self.packed_tokens(max(shared[i] for i in order[start:]))
            chunk: list[int] = []
            tokens = 0
            for i in order[start:]:
                width = len(inputs[i]) - shared[i] + t - 1
                if chunk and tokens + width > budget:
                    break
                chunk.append(i)
                tokens += width
            yield chunk
            start += len(chunk)

    def prefix_kv(self, reference: Sequence[int]) -> KV:
        """Keys/values of a reference prompt, kept for the last `prefix_size` references; a
        new reference that shares a prefix with a kept one (the same prompt after an edit
        further down) computes only the rest."""
        key = tuple(int(t) for t in reference)
        if key in self.prefixes:
            self.prefixes.move_to_end(key)
            return self.prefixes[key]
        best, base = closest_kept(key, self.prefixes)
        if best < MIN_SHARED:
            best, base = 0, None
        kv = self.runner.keys_values(key[best:], base, best)
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        self.prefixes[key] = kv
        while len(self.prefixes) > self.prefix_size:
            self.prefixes.popitem(last=False)
        return kv

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Greedy decoding (explain graph: with a key/value cache; logits graph: one full
        forward per new token)."""
        new = self.runner.generate(ids, max_new_tokens, self.eos_ids())
        self.counters.forward_passes += len(new)
        self.counters.sequences += 1
        return new

    # --- the fp32 reference ------------------------------------------------------------------
    def reference_answer(
        self, prompt_ids: Sequence[int], answer_ids: Sequence[int], max_new_tokens: int
    ) -> dict[str, Any] | None:
        """fp32 torch's greedy answer to `prompt_ids` when it differs from `answer_ids` (this
        export's answer, its end-of-sequence token left out as explain leaves it out), else
        None. The source model is loaded once, from the manifest's `source_path`."""
        if self._reference is None:
            from promptxray.explainers.backends import get_backend

            source = self.manifest.get("source_path")
            if not source or not Path(source).is_dir():
                raise ModelLoadError(
                    f"cannot check the answer against fp32 torch: the source model {source} "
                    f"of {self.folder} is not there"
                )
            self._reference = get_backend("torch", str(source))
        want = self._reference.generate(list(prompt_ids), max_new_tokens)
        if len(want) > 1 and want[-1] in self._reference.eos_ids():
            want = want[:-1]
        if want == [int(t) for t in answer_ids]:
            return None
        agreement = (self.answer_agreement or {}).get("same_answer")
        return {
            "backend": "torch",
            "precision": "fp32",
            "text": self._reference.decode(want),
            "token_ids": want,
            "export_answer_agreement": agreement,
        }
