"""Where ONNX Runtime's time goes in occlusion on the default export (not a test).

Runs occlusion (pair test off, torch's answer as the target) on one bench prompt with ORT's
profiler on, and prints each operator's share of the kernel time, its calls, and the tokens the
forwards packed (and the attention scores that cost: every packed token against the past and the
whole packed row, beside the scores the rows need).

    python bench/onnx_profile.py support         # a bench prompt: capital haiku support extract
    python bench/onnx_profile.py long_950 --folder EXPORT_FOLDER
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts import PROMPTS  # type: ignore[import-not-found]  # noqa: E402
from prompts_long import build  # type: ignore[import-not-found]  # noqa: E402

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
WORK = {name: (text, "token") for name, text in PROMPTS.items()} | {
    "long_950": (build(3, 7), "line")
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", choices=sorted(WORK))
    parser.add_argument("--folder", help="an export folder (default: the cache's default export)")
    args = parser.parse_args()

    import onnxruntime as ort

    from promptxray.explainers.backends import get_backend, onnx_packed
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    text, granularity = WORK[args.prompt]
    options = {"pairs": False}
    torch_backend = get_backend("torch", None)
    target = explain(
        ExplainRequest(text=text, granularity="line", faithfulness=False, options=options),
        backend=torch_backend,
    ).target.text
    del torch_backend
    prefix = Path(tempfile.mkdtemp(prefix="onnx-profile-")) / "ort"
    plain = ort.SessionOptions

    class Profiled(plain):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.enable_profiling = True
            self.profile_file_prefix = str(prefix)

    ort.SessionOptions = Profiled  # type: ignore[misc]
    backend = OnnxBackend(Path(args.folder)) if args.folder else get_backend("onnx", None)
    ort.SessionOptions = plain  # type: ignore[misc]
    packed: collections.Counter[str] = collections.Counter()
    run = onnx_packed.PackedRunner.run

    def counted(self: Any, rows: Any, reads: Any, past: Any, p: Any, outputs: Any) -> Any:
        n = sum(len(r) for r in rows)
        seen = [p] * len(rows) if isinstance(p, int) else list(p)
        whole = 0 if past is None else past[0][0].shape[2]
        packed["forwards"] += 1
        packed["tokens"] += n
        packed["scores"] += n * (whole + n)
        packed["needed"] += sum(len(r) * (s + len(r)) for r, s in zip(rows, seen, strict=True))
        return run(self, rows, reads, past, p, outputs)

    onnx_packed.PackedRunner.run = counted  # type: ignore[method-assign]
    request = ExplainRequest(
        text=text, target=target, granularity=granularity, faithfulness=False, options=options
    )
    started = time.perf_counter()
    expl = explain(request, backend=backend)
    seconds = time.perf_counter() - started
    events = json.loads(Path(backend.runner.session.end_profiling()).read_text())
    kernel: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernel[event["args"]["op_name"]] += event["dur"]
            calls[event["args"]["op_name"]] += 1
    total = sum(kernel.values())
    runs = sum(e["dur"] for e in events if e.get("name") == "model_run")
    print(
        f"{args.prompt}: {expl.input_tokens} tokens, {len(expl.spans)} parts, {seconds:.2f} s; "
        f"{packed['forwards']} forwards packing {packed['tokens']} tokens; attention scores "
        f"{packed['scores'] / 1e6:.1f} M per head and layer ({packed['needed'] / 1e6:.1f} M needed)"
    )
    print(f"model runs {runs / 1e6:.2f} s, kernels {total / 1e6:.2f} s\n")
    print(f"{'operator':34} {'s':>7} {'share':>6} {'calls':>6}")
    for op, us in kernel.most_common(12):
        print(f"{op:34} {us / 1e6:7.2f} {us / total:6.1%} {calls[op]:6d}")


if __name__ == "__main__":
    main()
