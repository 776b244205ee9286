"""Exact line-level occlusion on long prompts, measured in one run (not a test).

For each prompt of `prompts_long.py` (about 1,300 and 4,000 tokens, 60 and 172 lines), with
the default model and one target fixed first (its greedy answer), in one process:

- `plain`: one transformers forward of the whole prompt + target (what scoring one variant
  costs without reuse), repeated; the ratios divide by lines x its fastest time;
- `lines`: `explain(..., method="occlusion", granularity="line", faithfulness=False)` with
  the default scoring path (packed rows, explainers/backends/packed.py);
- `lines, transformers`: the same through the transformers forward with prefix reuse (the
  path before the packed one, `backend.packed_scoring = False`);
- `lines, bf16 preview`: the packed path in bfloat16 (`backend.precision("bf16")`), with its
  error against the exact scores;
- `captum lines`: Captum 0.9 `LLMAttribution(FeatureAblation)`, one feature per line through a
  feature mask over the same ids and target (replacing a line's tokens with token 0, Captum's
  default, where promptxray removes the line: same cost, not the same scores),
  `forward_in_tokens=False` (its fastest correct mode). Where its projected time exceeds
  --captum-budget it runs on the prompt's first lines (the row says so).

Every explanation starts cold (no prefix or score cache). Runs of one prompt alternate their
order between repetitions. The CPU load seen before each run is printed (other work on a
2-core machine slows everything; only same-run ratios mean much).

    python bench/long_prompts.py                       # both prompts, everything
    python bench/long_prompts.py --prompts long_1k --reps 2 --no-captum
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts_long import LONG_PROMPTS  # noqa: E402


def cpu_busy(seconds: float = 0.5) -> float:
    """Fraction of the machine's CPU time not idle over `seconds` (everyone's work)."""

    def snap() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)

    a = snap()
    time.sleep(seconds)
    b = snap()
    return 1.0 - (b[0] - a[0]) / max(1, b[1] - a[1])


def load_avg() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def timed(label: str, fn: Callable[[], Any], log: list[dict[str, Any]]) -> Any:
    busy = cpu_busy()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    log.append({"label": label, "seconds": seconds, "busy": busy})
    print(f"  {label}: {seconds:.2f} s (CPU busy before: {busy:.0%}, load {load_avg()})")
    sys.stdout.flush()
    return out


def captum_lines(
    model: Any, tokenizer: Any, ids: list[int], lines: list[list[int]], target: list[int]
) -> None:
    """Captum 0.9 FeatureAblation with one feature per line (a feature mask over the ids)."""
    import torch
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    class IdsTokenInput(TextTokenInput):
        """TextTokenInput from given ids (no re-tokenisation); only `positions` vary."""

        def __init__(self, ids: list[int], positions: list[int]) -> None:
            tensor = torch.tensor([ids])
            mask = torch.zeros_like(tensor, dtype=torch.bool)
            mask[0, positions] = True
            self.inp_tensor = tensor
            self.itp_tensor = tensor[mask].unsqueeze(0)
            self.itp_mask = mask
            self.skip_tokens = None
            self.values = tokenizer.convert_ids_to_tokens(self.itp_tensor[0].tolist())
            self.tokenizer = tokenizer
            self.n_itp_features = len(positions)
            self.baselines = 0

    positions = [p for line in lines for p in line]
    feature = torch.tensor([[k for k, line in enumerate(lines) for _ in line]])
    ablation = LLMAttribution(FeatureAblation(model), tokenizer)
    ablation.attribute(
        IdsTokenInput(ids, positions),
        target=torch.tensor(target),
        forward_in_tokens=False,
        feature_mask=feature,
    )


def run_prompt(
    backend: Any, name: str, reps: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    from promptxray.explainers.backends.base import left_pad
    from promptxray.explainers.explain import explain, prepare
    from promptxray.explainers.types import ExplainRequest
    from promptxray.explainers.units import group_units

    text = LONG_PROMPTS[name]

    def setup(text: str, target: list[int] | None = None) -> tuple[list[int], list[int], Any]:
        """The prompt's ids, the target and each line's token positions in the ids."""
        request = ExplainRequest(text, granularity="line", target_ids=target)
        _, prep = prepare(request, backend=backend)
        ctx = prep.ctx
        units = group_units(prep.source, ctx.input.tokens, "line")
        positions = [[ctx.input.positions[i] for i in unit] for unit in units]
        return list(ctx.input.ids), list(ctx.target_ids), positions

    ids, target, line_pos = setup(text)
    n_lines = len(line_pos)
    print(f"{name}: {len(ids)} tokens, {n_lines} lines, target {backend.decode(target)!r}")
    request = ExplainRequest(
        text, granularity="line", faithfulness=False, target_ids=target, max_new_tokens=0
    )
    log: list[dict[str, Any]] = []

    def plain_of(ids: list[int]) -> None:
        backend._run_logprobs(left_pad([ids + target[:-1]], backend.pad_id), target)

    def plain() -> None:
        plain_of(ids)

    def lines_run(packed: bool, precision: str = "fp32") -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            backend.prefix.entries.clear()
            backend.packed_scoring = packed
            try:
                with backend.precision(precision):
                    expl = explain(request, backend=backend)
            finally:
                backend.packed_scoring = True
            return np.array([s.score for s in expl.spans])

        return run

    runs: dict[str, Callable[[], Any]] = {"lines": lines_run(True)}
    if name in args.transformers.split(","):
        runs["lines, transformers"] = lines_run(False)
    if "bf16" in backend.scoring_precisions:
        runs["lines, bf16 preview"] = lines_run(True, "bf16")
    plain()  # warm
    scores: dict[str, np.ndarray] = {}
    for rep in range(reps):
        timed("plain forward", plain, log)
        order = list(runs) if rep % 2 == 0 else list(runs)[::-1]
        for label in order:
            if rep > 0 and label != "lines" and not args.repeat_all:
                continue
            scores[label] = timed(label, runs[label], log)
        timed("plain forward", plain, log)
    if args.captum:
        plain_s = min(r["seconds"] for r in log if r["label"] == "plain forward")
        projected = (n_lines + 1) * plain_s * args.captum_factor
        c_ids, c_lines, c_label = ids, line_pos, "captum lines"
        if projected > args.captum_budget:
            keep = max(2, int(args.captum_budget / (plain_s * args.captum_factor)) - 1)
            print(f"  captum: projected {projected:.0f} s; running on the first {keep} lines")
            c_text = "\n".join(text.split("\n")[:keep])
            c_ids, _, c_lines = setup(c_text, target)
            c_label = f"captum lines (first {len(c_lines)} lines, {len(c_ids)} tokens)"
            c_req = ExplainRequest(
                c_text, granularity="line", faithfulness=False, target_ids=target
            )

            def ours_short() -> None:
                backend.prefix.entries.clear()
                explain(c_req, backend=backend)

            timed(f"lines (first {len(c_lines)} lines, {len(c_ids)} tokens)", ours_short, log)
        timed(
            c_label,
            lambda: captum_lines(backend.model, backend.tokenizer, c_ids, c_lines, target),
            log,
        )
        short = c_ids is not ids
        mine = [r for r in log[:-1] if r["label"].startswith("lines (first" if short else "lines")]
        ours = min(r["seconds"] for r in mine if short or r["label"] == "lines")
        print(f"  captum / promptxray (same ids, lines, target): {log[-1]['seconds'] / ours:.1f}x")
    exact = scores["lines"]
    best = {r["label"]: min(x["seconds"] for x in log if x["label"] == r["label"]) for r in log}
    if "lines, transformers" in best:
        print(f"  transformers path / packed: {best['lines, transformers'] / best['lines']:.2f}x")
    if "lines, bf16 preview" in best:
        print(f"  fp32 / bf16 preview: {best['lines'] / best['lines, bf16 preview']:.2f}x")
    for label, s in scores.items():
        if label != "lines":
            d = np.abs(s - exact)
            top = len(set(np.argsort(-s)[:5]) & set(np.argsort(-exact)[:5])) / 5
            print(
                f"  {label} vs lines: max |Δscore| {d.max():.2e} nats, mean {d.mean():.2e},"
                f" Spearman {spearman(s, exact):.3f}, top-5 overlap {top:.1f}"
            )
    for row in log:
        row.update(prompt=name, tokens=len(ids), lines=n_lines)
    return log


def table(log: list[dict[str, Any]]) -> None:
    print("\n| prompt | tokens | lines | run | seconds (min) | × lines × plain forward | busy |")
    print("|---|---|---|---|---|---|---|")
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in log:
        by.setdefault((row["prompt"], row["label"]), []).append(row)
    for (prompt, label), rows in by.items():
        best = min(rows, key=lambda r: r["seconds"])
        plain = min(
            r["seconds"] for r in log if r["prompt"] == prompt and r["label"] == "plain forward"
        )
        n = best["lines"]
        whole = label != "plain forward" and "first" not in label  # runs on the whole prompt
        ratio = f"{best['seconds'] / (n * plain):.3f}" if whole else ""
        print(
            f"| {prompt} | {best['tokens']} | {n} | {label} | {best['seconds']:.2f} "
            f"| {ratio} | {best['busy']:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", default="long_1k,long_4k")
    parser.add_argument("--reps", default="2,1", help="repetitions per prompt (last repeats)")
    parser.add_argument(
        "--repeat-all", action="store_true", help="repeat every run, not just lines"
    )
    parser.add_argument(
        "--transformers", default="long_1k", help="prompts that also run the transformers path"
    )
    parser.add_argument("--no-captum", dest="captum", action="store_false")
    parser.add_argument("--captum-budget", type=float, default=600.0, help="seconds")
    parser.add_argument(
        "--captum-factor", type=float, default=1.1, help="captum forward / plain forward"
    )
    args = parser.parse_args()
    from promptxray.explainers.backends import get_backend

    backend = get_backend("torch", None)
    print(f"torch threads: {__import__('torch').get_num_threads()}, load {load_avg()}")
    log: list[dict[str, Any]] = []
    reps = [int(r) for r in args.reps.split(",")]
    for i, name in enumerate(args.prompts.split(",")):
        log += run_prompt(backend, name, reps[min(i, len(reps) - 1)], args)
        table(log)


if __name__ == "__main__":
    main()
