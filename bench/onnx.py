"""Occlusion on torch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8, default model (not a test).

Each backend runs in its own process (so peak memory is its own), on the fixed prompts with
the same targets (torch's greedy answers). Prints seconds and the ratio to torch measured in
this run, peak RSS, model size on disk, and fidelity to torch fp32: Spearman correlation of
the scores, top-5 overlap, and max difference in target log-probability.

    python bench/onnx.py
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts import PROMPTS  # type: ignore[import-not-found]  # noqa: E402

CONFIGS = ("torch", "onnx-fp32", "onnx-int8")


def export_folder(quantize: str) -> Path:
    from promptxray.explainers.models.loading import resolve_model_path
    from promptxray.explainers.models.onnx_export import (
        MANIFEST,
        default_export_dir,
        export_onnx,
        model_fingerprint,
    )

    path, model_id = resolve_model_path(None)
    folder = default_export_dir(model_id, model_fingerprint(path), quantize)
    if not (folder / MANIFEST).exists():
        export_onnx(None, quantize)
    return folder


def size_on_disk(config: str) -> float:
    if config == "torch":
        from promptxray.explainers.models.loading import resolve_model_path

        folder = Path(resolve_model_path(None)[0])
        files = list(folder.glob("*.safetensors"))
    else:
        files = list(export_folder("none" if config == "onnx-fp32" else "int8").glob("model.onnx*"))
    return sum(f.stat().st_size for f in files) / 2**20


def child(config: str, targets: dict[str, str]) -> None:
    """Run occlusion on every prompt; print JSON with times, scores and peak RSS."""
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.backends.torch_backend import TorchBackend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.models.loading import load_model
    from promptxray.explainers.types import ExplainRequest

    if config == "torch":
        backend = TorchBackend(load_model(None))
    else:
        backend = OnnxBackend(export_folder("none" if config == "onnx-fp32" else "int8"))
    out = {}
    for name, text in PROMPTS.items():
        request = ExplainRequest(text=text, target=targets[name])
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            expl = explain(request, backend=backend)
            runs.append(time.perf_counter() - started)
        out[name] = {
            "seconds": statistics.median(runs),
            "scores": [s.score for s in expl.spans],
            "logprob": expl.target.logprob,
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"results": out, "peak_mb": peak}))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], json.loads(sys.argv[3]))
        return
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.metrics import spearman, top_k_overlap
    from promptxray.explainers.types import ExplainRequest

    torch_backend = get_backend("torch", None)
    targets = {
        n: explain(ExplainRequest(text=t), backend=torch_backend).target.text
        for n, t in PROMPTS.items()
    }
    for quantize in ("none", "int8"):
        export_folder(quantize)
    data = {}
    for config in CONFIGS:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", config, json.dumps(targets)],
            capture_output=True,
            text=True,
            check=True,
        )
        data[config] = json.loads(proc.stdout.strip().splitlines()[-1])
    print("occlusion, token granularity, default model (SmolLM2-135M-Instruct), same targets")
    print(f"{'backend':10} {'size MB':>8} {'peak MB':>8}")
    for config in CONFIGS:
        print(f"{config:10} {size_on_disk(config):8.0f} {data[config]['peak_mb']:8.0f}")
    print(
        f"\n{'prompt':9} {'backend':10} {'seconds':>8} {'vs torch':>8} {'spearman':>8} "
        f"{'top5':>5} {'|dlogp|':>8}"
    )
    for name in PROMPTS:
        ref = data["torch"]["results"][name]
        ref_scores = np.array(ref["scores"])
        for config in CONFIGS:
            res = data[config]["results"][name]
            scores = np.array(res["scores"])
            ratio = res["seconds"] / ref["seconds"]
            print(
                f"{name:9} {config:10} {res['seconds']:8.3f} {ratio:8.2f} "
                f"{spearman(scores, ref_scores):8.3f} {top_k_overlap(scores, ref_scores, 5):5.2f} "
                f"{abs(res['logprob'] - ref['logprob']):8.4f}"
            )


if __name__ == "__main__":
    main()
