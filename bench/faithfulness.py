"""How faithful each method is on the fixed prompts with the default model (not a test).

Prints, per prompt and method: ERASER comprehensiveness (↑) and sufficiency (↓) AOPC over the
1/5/10/20/50% bins, in target probability and in log-probability (LP, nats); deletion (↓) and
insertion (↑) AUC; the method's own seconds (without the faithfulness measurement); forward
passes and sequences. A random ranking (mean of five seeds) is the floor every method should
beat; the last line per prompt is `auto`'s choice. Word granularity.

    python bench/faithfulness.py [--prompts capital,haiku] [--methods occlusion,shapley]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from prompts import PROMPTS  # type: ignore[import-not-found]

from promptxray.explainers import nl
from promptxray.explainers.backends import get_backend
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.metrics import faithfulness
from promptxray.explainers.registry import list_methods
from promptxray.explainers.types import ExplainRequest

DEFAULT_PROMPTS = "capital,haiku,support"


def row(name: str, method: str, figures: dict[str, float], seconds: float, fwd, seqs) -> str:
    return (
        f"{name:9} {method:22} {figures['comprehensiveness']:>7.4f} {figures['sufficiency']:>7.4f}"
        f" {figures['comprehensiveness_logprob']:>7.3f} {figures['sufficiency_logprob']:>7.3f}"
        f" {figures['deletion_auc']:>7.4f} {figures['insertion_auc']:>7.4f} {seconds:>8.2f}"
        f" {fwd:>5} {seqs:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    methods = [m.name for m in list_methods() if m.attributes_target]
    parser.add_argument("--methods", default=",".join(methods))
    parser.add_argument("--prompts", default=DEFAULT_PROMPTS)
    args = parser.parse_args()
    backend = get_backend("torch", None)
    print(f"model {backend.model_id}  threads {torch.get_num_threads()}  granularity word")
    print(
        f"{'prompt':9} {'method':22} {'comp↑':>7} {'suff↓':>7} {'compLP↑':>7} {'suffLP↓':>7} "
        f"{'del↓':>7} {'ins↑':>7} "
        f"{'seconds':>8} {'fwd':>5} {'seqs':>6}"
    )
    totals: dict[str, list[float]] = {}
    for name in args.prompts.split(","):
        text = PROMPTS[name]
        first = explain(ExplainRequest(text=text, faithfulness=False), backend=backend)
        target = first.target.text
        for method in args.methods.split(","):
            request = ExplainRequest(text=text, method=method, target=target, granularity="word")
            expl = explain(request, backend=backend)
            timing = expl.details["timing"]
            seqs = expl.sequences_scored  # includes the faithfulness variants
            print(row(name, method, expl.metrics, timing["method_s"], expl.forward_passes, seqs))
            score = expl.metrics["comprehensiveness_logprob"] - expl.metrics["sufficiency_logprob"]
            totals.setdefault(method, []).append(score)
        _, prep = prepare(ExplainRequest(text=text, target=target, granularity="word"), backend)
        rng = np.random.default_rng(0)
        n = len(prep.ctx.units)
        runs = [faithfulness(prep.ctx.score_masks, rng.permutation(n)) for _ in range(5)]
        mean = {k: statistics.mean(r.metrics()[k] for r in runs) for k in runs[0].metrics()}
        print(row(name, "(random ranking)", mean, 0.0, "-", "-"))
        totals.setdefault("(random ranking)", []).append(
            mean["comprehensiveness_logprob"] - mean["sufficiency_logprob"]
        )
        started = time.perf_counter()
        auto = explain(
            ExplainRequest(text=text, method="auto", target=target, granularity="word"), backend
        )
        print(
            f"{name:9} auto → {auto.method:15} in {time.perf_counter() - started:.1f} s: "
            f"{nl.auto_reason(auto.auto) if auto.auto else ''}"
        )
    print(
        "\nmean comprehensiveness − sufficiency in log-probability (nats) over the prompts "
        "(higher is more faithful):"
    )
    for method, scores in sorted(totals.items(), key=lambda kv: -statistics.mean(kv[1])):
        print(f"  {method:22} {statistics.mean(scores):+.4f}")


if __name__ == "__main__":
    main()
