"""Occlusion on torch fp32 vs ONNX Runtime (fp32 and quantized), default model (not a test).

Each configuration runs in its own process (so peak memory is its own), on the same prompts
with the same targets (torch's greedy answers): the fixed short prompts (`prompts.py`, token
level) and a ~950-token prompt (`prompts_long.build(3, 7)`, line level). Prints seconds (the
minimum of `--repeats` runs) and the ratio to torch measured in this run, peak RSS, model size
on disk, fidelity to torch fp32 on the same target (Spearman correlation of the scores, top-5
overlap, |difference| in target log-probability), the greedy-answer agreement with fp32 torch
that each export's manifest records (24 prompts), and the load average before and after.

    python bench/onnx.py              # torch, ONNX fp32, ONNX int8 (the default recipe)
    python bench/onnx.py --recipes    # + every quantization recipe, and thread settings
    python bench/onnx.py --json out.json

With --recipes, the default recipe is picked as bench/README.md, "ONNX Runtime" says: the fastest
quantized configuration whose Spearman with torch fp32 is >= 0.95 on every prompt.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts import PROMPTS  # type: ignore[import-not-found]  # noqa: E402
from prompts_long import build  # type: ignore[import-not-found]  # noqa: E402

# this file is bench/onnx.py: with its folder first on sys.path, `import onnx` would find it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

LONG = build(3, 7)  # about 950 tokens with SmolLM2's chat template, 46 lines
WORK = {name: (text, "token") for name, text in PROMPTS.items()} | {"long_950": (LONG, "line")}
FLOOR = 0.95  # Spearman with torch fp32 on every prompt
UNUSABLE: dict[str, dict[str, Any]] = {}  # recipes whose export failed verification


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def export_folder(quantize: str, recipe: str | None = None) -> Path:
    """The cache's export (the default recipe), or a recipe's export in the cache's bench
    folder; made when missing."""
    from promptxray.explainers.models.loading import cache_dir, resolve_model_path
    from promptxray.explainers.models.onnx_cache import default_export_dir, model_fingerprint
    from promptxray.explainers.models.onnx_export import (
        DEFAULT_RECIPE,
        ExportError,
        export_onnx,
        is_current,
    )

    path, model_id = resolve_model_path(None)
    if quantize == "none" or recipe in (None, DEFAULT_RECIPE):
        folder = default_export_dir(model_id, model_fingerprint(path), quantize)
        if not is_current(folder):
            export_onnx(None, quantize, progress=print)
        return folder
    folder = cache_dir() / "onnx" / "bench" / f"{model_id}-{model_fingerprint(path)}-{recipe}"
    if not (folder / "manifest.json").exists():
        try:
            export_onnx(None, "int8", out=folder, recipe=recipe, progress=print)
        except ExportError as exc:  # written, marked unusable (the backend refuses it)
            print(exc)
    return folder


def child(config: dict[str, Any], targets: dict[str, str], repeats: int) -> None:
    """Run occlusion on every prompt; print JSON with times, scores and peak RSS."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    if config["kind"] == "torch":
        backend = get_backend("torch", None)
    else:
        backend = OnnxBackend(
            Path(config["folder"]), threads=config.get("threads"), spinning=config["spinning"]
        )
    out = {}
    for name, (text, granularity) in WORK.items():
        request = ExplainRequest(
            text=text, target=targets[name], granularity=granularity, faithfulness=False
        )
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            expl = explain(request, backend=backend)
            runs.append(time.perf_counter() - started)
        out[name] = {
            "seconds": min(runs),
            "runs": runs,
            "scores": [s.score for s in expl.spans],
            "logprob": expl.target.logprob,
            "tokens": expl.input_tokens,
            "units": len(expl.spans),
            "sequences": expl.sequences_scored,
        }
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    print(json.dumps({"results": out, "peak_mb": peak}))


def configs(recipes: bool) -> dict[str, dict[str, Any]]:
    from promptxray.explainers.models.onnx_export import DEFAULT_RECIPE, RECIPES

    out: dict[str, dict[str, Any]] = {"torch": {"kind": "torch"}}

    def onnx(folder: Path, threads: int | None = None, spinning: bool = False) -> dict[str, Any]:
        manifest = json.loads((folder / "manifest.json").read_text())
        return {
            "kind": "onnx",
            "folder": str(folder),
            "threads": threads,
            "spinning": spinning,
            "size_mb": sum(f.stat().st_size for f in folder.glob("model.onnx*")) / 2**20,
            "answers": manifest.get("answer_agreement"),
            "recipe": (manifest.get("quantizer") or {}).get("recipe", "fp32"),
        }

    out["onnx-fp32"] = onnx(export_folder("none"))
    out[f"onnx-int8 ({DEFAULT_RECIPE})"] = onnx(export_folder("int8"))
    if recipes:
        for recipe in RECIPES:
            if recipe == DEFAULT_RECIPE:
                continue
            folder = export_folder("int8", recipe)
            manifest = json.loads((folder / "manifest.json").read_text())
            if not manifest["usable"]:
                UNUSABLE[recipe] = manifest
                continue
            out[f"onnx-{recipe}"] = onnx(folder)
        out["onnx-int8, 1 thread"] = onnx(export_folder("int8"), threads=1)
        out["onnx-int8, spinning"] = onnx(export_folder("int8"), spinning=True)
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", action="store_true", help="every quantization recipe")
    parser.add_argument("--repeats", type=int, default=2, help="runs per prompt (minimum kept)")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.metrics import spearman, top_k_overlap
    from promptxray.explainers.models.loading import resolve_model_path
    from promptxray.explainers.types import ExplainRequest

    load_before = load()
    torch_backend = get_backend("torch", None)
    targets = {  # torch's greedy answers, as explain generates them (line level: cheap)
        n: explain(
            ExplainRequest(text=t, granularity="line", faithfulness=False), backend=torch_backend
        ).target.text
        for n, (t, _g) in WORK.items()
    }
    setups = configs(args.recipes)
    data: dict[str, Any] = {}
    for name, config in setups.items():
        started = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                json.dumps(config),
                json.dumps(targets),
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        data[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        data[name]["load_after"] = load()
        print(f"{name}: {time.time() - started:.0f} s (load {load()})", flush=True)
    weights = Path(resolve_model_path(None)[0]).glob("*.safetensors")
    torch_size = sum(f.stat().st_size for f in weights)
    ref = data["torch"]["results"]
    summary = {}
    for name in setups:
        res = data[name]["results"]
        rhos = {n: spearman(np.array(res[n]["scores"]), np.array(ref[n]["scores"])) for n in WORK}
        total = sum(res[n]["seconds"] for n in WORK)
        summary[name] = {
            "total_s": total,
            "vs_torch": total / sum(ref[n]["seconds"] for n in WORK),
            "min_spearman": min(rhos.values()),
            "rhos": rhos,
        }

    print(f"\nload average before {load_before}, after {load()}; {args.repeats} runs each, min")
    print("occlusion, default model (SmolLM2-135M-Instruct), same targets (torch's answers)\n")
    print(
        f"{'config':28} {'size MB':>8} {'peak MB':>8} {'total s':>8} {'vs torch':>8} "
        f"{'min rho':>8} {'answers':>8} {'1st tok':>8}"
    )
    for name, config in setups.items():
        answers = config.get("answers") or {}
        size = config.get("size_mb", torch_size / 2**20)
        s = summary[name]
        print(
            f"{name:28} {size:8.0f} {data[name]['peak_mb']:8.0f} {s['total_s']:8.1f} "
            f"{s['vs_torch']:8.2f} {s['min_spearman']:8.3f} "
            f"{answers.get('same_answer', 1.0):8.2f} {answers.get('same_first_token', 1.0):8.2f}"
        )
    print(
        f"\n{'prompt':9} {'tokens':>6} {'units':>5} {'config':28} {'seconds':>8} {'vs torch':>8} "
        f"{'spearman':>8} {'top5':>5} {'|dlogp|':>8}"
    )
    for n in WORK:
        for name in setups:
            res = data[name]["results"][n]
            scores = np.array(res["scores"])
            ref_scores = np.array(ref[n]["scores"])
            print(
                f"{n:9} {res['tokens']:6d} {res['units']:5d} {name:28} {res['seconds']:8.2f} "
                f"{res['seconds'] / ref[n]['seconds']:8.2f} "
                f"{spearman(scores, ref_scores):8.3f} {top_k_overlap(scores, ref_scores, 5):5.2f} "
                f"{abs(res['logprob'] - ref[n]['logprob']):8.4f}"
            )
    for recipe, manifest in UNUSABLE.items():
        answers = manifest.get("answer_agreement") or {}
        print(
            f"onnx-{recipe}: export unusable, not run (top-1 agreement with torch "
            f"{manifest['verification']['top1_agreement']:.0%} < 90%, same greedy answer on "
            f"{answers.get('same_answer', float('nan')):.0%} of {answers.get('prompts')} prompts)"
        )
    passing = [
        n
        for n in setups
        if n.startswith("onnx-") and n != "onnx-fp32" and summary[n]["min_spearman"] >= FLOOR
    ]
    best = min(passing, key=lambda n: summary[n]["total_s"]) if passing else None
    print(f"\nquantized configs with Spearman >= {FLOOR} on every prompt: {passing or 'none'}")
    print(f"fastest of them: {best}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"configs": setups, "data": data, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
