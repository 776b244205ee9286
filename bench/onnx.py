"""Occlusion on torch fp32 vs ONNX Runtime's fused graph (the GGUF file's own blocks, fp32,
int8), default model (not a test).

Each configuration runs in its own process (so peak memory is its own), on the same prompts
with the same targets (torch's greedy answers): the fixed short prompts (`prompts.py`, token
level), a ~950-token prompt (`prompts_long.build(3, 7)`, line level) and the 24 answer-check
prompts (`onnx_verify.ANSWER_PROMPTS`, 20-40 tokens with the chat template, token level). The
pair test is off: this measures occlusion itself. Prints seconds (the minimum of `--repeats`
runs; one run for the long prompt) and the ratio to torch measured in this run, peak RSS, model
size on disk, and fidelity to torch fp32 as a user reads it: the same top-5 parts, the same
sign for every part above the no-effect threshold (NO_EFFECT_NATS), the largest |score
difference|, Spearman over all parts, and the same greedy answer (16 new tokens).

    python bench/onnx.py              # torch, ONNX gguf (the default), fp32, int8
    python bench/onnx.py --before     # + the previous default (explain graph, ORT int8)
    python bench/onnx.py --json out.json

The default is picked as bench/README.md, "ONNX Runtime" says: the fastest configuration that
keeps every fidelity measure (same top-5, signs, answers; |score difference| <= 1e-3 nats) and
the memory and disk goals (<= 0.6x torch's peak, <= 0.3x its weights on disk).
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

from promptxray.explainers.models.onnx_verify import ANSWER_PROMPTS  # noqa: E402

LONG = build(3, 7)  # about 950 tokens with SmolLM2's chat template, 46 lines
BENCH = {name: (text, "token") for name, text in PROMPTS.items()} | {"long_950": (LONG, "line")}
ANSWERS = {f"answer_{i:02d}": (text, "token") for i, text in enumerate(ANSWER_PROMPTS)}
WORK = BENCH | ANSWERS
MAX_DIFF = 1e-3  # nats: the fidelity floor's largest |score difference|
MEMORY, DISK = 0.6, 0.3  # goals: peak RSS and size on disk as shares of torch's


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def export_folder(quantize: str, graph: str = "auto") -> Path:
    """The cache's export for `quantize` (fused graph), or the previous default's (the explain
    graph, ORT's 8-bit quantizer) in the cache's bench folder; made when missing."""
    from promptxray.explainers.models.loading import cache_dir, resolve_model_path
    from promptxray.explainers.models.onnx_cache import default_export_dir, model_fingerprint
    from promptxray.explainers.models.onnx_export import export_onnx, is_current

    path, model_id = resolve_model_path(None)
    if graph == "auto":
        folder = default_export_dir(model_id, model_fingerprint(path), quantize)
    else:
        folder = cache_dir() / "onnx" / "bench" / f"{model_id}-{model_fingerprint(path)}-{graph}"
    if not is_current(folder):
        export_onnx(None, quantize, out=folder, graph=graph, progress=print)
    return folder


def child(config: dict[str, Any], targets: dict[str, str], repeats: int) -> None:
    """Run occlusion and greedy generation on every prompt; print JSON with times, scores,
    answers and peak RSS."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    if config["kind"] == "torch":
        backend = get_backend("torch", None)
    else:
        backend = OnnxBackend(Path(config["folder"]))
    out = {}
    for name, (text, granularity) in WORK.items():
        request = ExplainRequest(
            text=text,
            target=targets[name],
            granularity=granularity,
            faithfulness=False,
            options={"pairs": False},
        )
        runs = []
        for _ in range(1 if name == "long_950" else repeats):
            started = time.perf_counter()
            expl = explain(request, backend=backend)
            runs.append(time.perf_counter() - started)
        ids = backend.encode(backend.render_chat([{"role": "user", "content": text}]), False)[0]
        out[name] = {
            "seconds": min(runs),
            "runs": runs,
            "scores": [s.score for s in expl.spans],
            "logprob": expl.target.logprob,
            "tokens": expl.input_tokens,
            "units": len(expl.spans),
            "answer": backend.decode(backend.generate(ids, 16)),
        }
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    print(json.dumps({"results": out, "peak_mb": peak}))


def configs(before: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"torch": {"kind": "torch"}}

    def onnx(folder: Path) -> dict[str, Any]:
        manifest = json.loads((folder / "manifest.json").read_text())
        return {
            "kind": "onnx",
            "folder": str(folder),
            "size_mb": sum(f.stat().st_size for f in folder.glob("model.onnx*")) / 2**20,
            "answers": manifest.get("answer_agreement"),
            "graph": manifest.get("graph"),
        }

    out["onnx gguf (default)"] = onnx(export_folder("gguf"))
    out["onnx fp32"] = onnx(export_folder("none"))
    out["onnx int8"] = onnx(export_folder("int8"))
    if before:
        out["before: explain graph int8"] = onnx(export_folder("int8", graph="explain"))
    return out


def fidelity(scores: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """The measures a user reads: top-5 set, signs above the no-effect threshold, largest
    |difference|, Spearman."""
    from promptxray.explainers.metrics import spearman, top_k_overlap
    from promptxray.explainers.nl import NO_EFFECT_NATS

    above = np.abs(ref) >= NO_EFFECT_NATS
    return {
        "top5": top_k_overlap(scores, ref, 5) == 1.0,
        "signs": bool((np.sign(scores[above]) == np.sign(ref[above])).all()),
        "max_diff": float(np.abs(scores - ref).max()) if len(ref) else 0.0,
        "spearman": spearman(scores, ref),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="+ the previous default")
    parser.add_argument("--repeats", type=int, default=2, help="runs per prompt (minimum kept)")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.models.loading import resolve_model_path
    from promptxray.explainers.types import ExplainRequest

    load_before = load()
    torch_backend = get_backend("torch", None)
    targets = {  # torch's greedy answers, as explain generates them (line level: cheap)
        n: explain(
            ExplainRequest(
                text=t, granularity="line", faithfulness=False, options={"pairs": False}
            ),
            backend=torch_backend,
        ).target.text
        for n, (t, _g) in WORK.items()
    }
    del torch_backend
    setups = configs(args.before)
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
    torch_size = sum(f.stat().st_size for f in weights) / 2**20
    ref = data["torch"]["results"]
    summary: dict[str, Any] = {}
    for name, config in setups.items():
        res = data[name]["results"]
        fid = {n: fidelity(np.array(res[n]["scores"]), np.array(ref[n]["scores"])) for n in WORK}
        ratios = {n: ref[n]["seconds"] / res[n]["seconds"] for n in WORK}
        summary[name] = {
            "bench_speed": sum(ref[n]["seconds"] for n in BENCH)
            / sum(res[n]["seconds"] for n in BENCH),
            "answers_speed": sum(ref[n]["seconds"] for n in ANSWERS)
            / sum(res[n]["seconds"] for n in ANSWERS),
            "min_speed": min(ratios.values()),
            "top5": sum(f["top5"] for f in fid.values()),
            "signs": sum(f["signs"] for f in fid.values()),
            "max_diff": max(f["max_diff"] for f in fid.values()),
            "min_spearman": min(
                (f["spearman"] for f in fid.values() if not np.isnan(f["spearman"])), default=1.0
            ),
            "same_answer": sum(res[n]["answer"] == ref[n]["answer"] for n in WORK),
            "memory": data[name]["peak_mb"] / data["torch"]["peak_mb"],
            "disk": config.get("size_mb", torch_size) / torch_size,
            "fidelity": fid,
        }

    n = len(WORK)
    print(f"\nload average before {load_before}, after {load()}; {args.repeats} runs each, min")
    print("occlusion, default model (SmolLM2-135M-Instruct), same targets (torch's answers)")
    print(
        f"{len(BENCH)} bench prompts + {len(ANSWERS)} answer prompts; speed = torch s / config s\n"
    )
    print(
        f"{'config':28} {'disk MB':>7} {'peak MB':>7} {'bench x':>7} {'answers x':>9} "
        f"{'min x':>6} {'top5':>6} {'signs':>6} {'max|d|':>8} {'min rho':>7} {'answer':>6}"
    )
    for name, config in setups.items():
        s = summary[name]
        print(
            f"{name:28} {config.get('size_mb', torch_size):7.0f} {data[name]['peak_mb']:7.0f} "
            f"{s['bench_speed']:7.2f} {s['answers_speed']:9.2f} {s['min_speed']:6.2f} "
            f"{s['top5']:3d}/{n} {s['signs']:3d}/{n} {s['max_diff']:8.1e} "
            f"{s['min_spearman']:7.3f} {s['same_answer']:3d}/{n}"
        )
    print(f"\n{'prompt':10} {'tokens':>6} {'units':>5} {'torch s':>8}", end="")
    others = [name for name in setups if name != "torch"]
    for name in others:
        print(f" | {name[:20]:>20} s   x   max|d|", end="")
    print()
    for p in WORK:
        print(f"{p:10} {ref[p]['tokens']:6d} {ref[p]['units']:5d} {ref[p]['seconds']:8.2f}", end="")
        for name in others:
            r = data[name]["results"][p]
            f = summary[name]["fidelity"][p]
            print(
                f" | {r['seconds']:22.2f} {ref[p]['seconds'] / r['seconds']:5.2f} "
                f"{f['max_diff']:7.1e}",
                end="",
            )
        print()
    passing = [
        name
        for name in others
        if summary[name]["top5"] == n
        and summary[name]["signs"] == n
        and summary[name]["same_answer"] == n
        and summary[name]["max_diff"] <= MAX_DIFF
        and summary[name]["memory"] <= MEMORY
        and summary[name]["disk"] <= DISK
    ]
    best = max(passing, key=lambda m: summary[m]["bench_speed"]) if passing else None
    print(
        f"\nconfigs meeting the fidelity floor and the memory and disk goals: {passing or 'none'}"
    )
    print(f"fastest of them: {best}")
    for name in others:
        s = summary[name]
        print(
            f"{name}: memory {s['memory']:.2f}x torch, disk {s['disk']:.2f}x, bench speed "
            f"{s['bench_speed']:.2f}x, answer prompts {s['answers_speed']:.2f}x, slowest prompt "
            f"{s['min_speed']:.2f}x"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"configs": setups, "data": data, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
