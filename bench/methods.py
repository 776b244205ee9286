"""Time every method on the fixed prompts with the default model (not a test).

Prints, per prompt and method: seconds, forward passes (batched model calls), sequences run,
and for occlusion the ratio of its time to the floor: one batched forward over all ablated
variants, measured in the same run. Targets are fixed first (the model's greedy answer) so
that generation is not part of any method's time.

    python bench/methods.py [--methods occlusion,integrated_gradients] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from prompts import PROMPTS  # type: ignore[import-not-found]

from promptxray.explainers.backends import get_backend
from promptxray.explainers.backends.base import left_pad
from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.registry import list_methods
from promptxray.explainers.types import ExplainRequest


def floor_seconds(backend, text: str, target: list[int], repeat: int) -> float:
    """One forward over every leave-one-out variant in a single padded batch (best of N)."""
    model_input = build_input(parse_document(text), backend)
    rows = []
    for p in model_input.positions:
        ids = model_input.ids[:p] + model_input.ids[p + 1 :]
        rows.append(ids + target[:-1])
    batch = left_pad(rows, backend.pad_id)
    tensors = {
        "input_ids": torch.from_numpy(batch.input_ids),
        "attention_mask": torch.from_numpy(batch.attention_mask),
        "position_ids": torch.from_numpy(batch.position_ids),
    }
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with torch.inference_mode():
            backend.model(**tensors, logits_to_keep=len(target), use_cache=False)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(m.name for m in list_methods()))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    backend = get_backend("torch", None)
    print(f"model load: {time.perf_counter() - started:.2f}s  threads: {torch.get_num_threads()}")
    header = f"{'prompt':10} {'tokens':>6} {'method':22} {'seconds':>8} {'fwd':>4} {'seqs':>5}"
    print(header + "  note")
    for name, text in PROMPTS.items():
        first = explain(ExplainRequest(text=text), backend=backend)
        target_text = first.target.text
        target_ids = [t.token_id for t in first.target.tokens]
        floor = floor_seconds(backend, text, target_ids, args.repeat)
        for method in args.methods.split(","):
            runs = [
                explain(
                    ExplainRequest(text=text, method=method, target=target_text), backend=backend
                )
                for _ in range(args.repeat if method != "integrated_gradients" else 1)
            ]
            expl = runs[-1]
            seconds = statistics.median(r.wall_time_s for r in runs)
            note = ""
            if method == "occlusion":
                note = f"floor {floor:.3f}s  ratio {seconds / floor:.2f}x"
            if "completeness_relative_error" in expl.metrics:
                note = (
                    f"completeness error {100 * expl.metrics['completeness_relative_error']:.1f}%"
                    f" with {expl.details['n_steps']} steps"
                )
            print(
                f"{name:10} {len(expl.tokens):>6} {method:22} {seconds:>8.3f} "
                f"{expl.forward_passes:>4} {expl.sequences_scored:>5}  {note}"
            )


if __name__ == "__main__":
    main()
