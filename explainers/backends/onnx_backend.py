"""ONNX Runtime backend: batched target log-probabilities and greedy generation on an exported
(optionally 8-bit) model. Forward-only: gradient and attention methods are refused by the
registry's capability check, which names the methods that do run here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promptxray.explainers.backends.base import Backend, PaddedBatch
from promptxray.explainers.backends.threads import default_threads
from promptxray.explainers.errors import ModelLoadError
from promptxray.explainers.models.onnx_export import MODEL_FILE, model_fingerprint, read_manifest

EXPECTED_INPUTS = {"input_ids", "attention_mask"}


def make_session(path: Path, threads: int | None = None) -> Any:
    """An InferenceSession on the CPU, or ModelLoadError naming the file and what to do."""
    import onnxruntime as ort

    if not path.exists():
        raise ModelLoadError(f"{path} is missing: re-export with `promptxray export-onnx`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path} is not a loadable ONNX model ({first}); delete {path.parent} and export "
            "again with `promptxray export-onnx`"
        ) from exc


class OnnxBackend(Backend):
    """An exported model folder (model.onnx, tokenizer, manifest.json) run by ONNX Runtime."""

    name = "onnx"
    # Logits come back for every position: keep padded batches small ([B*L, vocab] floats).
    max_batch_tokens = 1024

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        manifest = read_manifest(folder)
        if not manifest.get("usable", False):
            raise ModelLoadError(
                f"{folder / 'manifest.json'} marks this export unusable (top-1 agreement "
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
                f"{folder / 'manifest.json'} was exported from a different version of "
                f"{source}; export again with `promptxray export-onnx`"
            )
        self.session = make_session(folder / MODEL_FILE, threads)
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != EXPECTED_INPUTS or "logits" not in outputs:
            raise ModelLoadError(
                f"{folder / MODEL_FILE} takes {sorted(inputs)} and returns {outputs}; the ONNX "
                "backend needs input_ids + attention_mask -> logits (export it with "
                "`promptxray export-onnx`)"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.quantization = str(manifest.get("quantization", "none"))
        model_id = f"{manifest['source_model']} ({self.quantization})"
        super().__init__(tokenizer, model_id, int(manifest.get("context_length", 2048)))
        self.folder = folder

    def _logits(self, batch: PaddedBatch) -> np.ndarray:
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        return np.asarray(self.session.run(["logits"], feeds)[0])

    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        last = self._logits(batch)[:, -len(target) :, :].astype(np.float64)
        top = last.max(axis=-1, keepdims=True)
        logz = top[..., 0] + np.log(np.exp(last - top).sum(axis=-1))
        picked = np.take_along_axis(last, np.array(target).reshape(1, -1, 1), axis=-1)[..., 0]
        return picked - logz

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Greedy decoding without a KV cache: one full forward per new token."""
        seq = list(ids)
        eos = self.eos_ids()
        new: list[int] = []
        for _ in range(max_new_tokens):
            batch = PaddedBatch(
                np.array([seq], dtype=np.int64),
                np.ones((1, len(seq)), dtype=np.int64),
                np.arange(len(seq), dtype=np.int64)[None],
            )
            token = int(self._logits(batch)[0, -1].argmax())
            self.counters.forward_passes += 1
            self.counters.sequences += 1
            new.append(token)
            seq.append(token)
            if token in eos:
                break
        return new
