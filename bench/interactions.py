"""The cost of the pair test (explainers/interactions.py: redundant and conflicting parts) on
the 1.3k-token prompt of `prompts_long.py`, as ratios to the leave-one-out run it adds to,
measured in one run (not a test): line occlusion (`-g line`), the prompt's sections and
examples, and the anytime explanation (`-g auto`, pairs among the blocks that matter most).
Each configuration runs with the pair test off (`pairs=false`) and on; printed: forward
passes, sequences scored and seconds of each, the ratios, what was tested and the pairs
found. The default model cannot follow this prompt, so the pairs found say little about it;
the cost is the figure here (bench/README.md has the vault prompts' pairs).

    python bench/interactions.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from long_prompts import cpu_busy  # noqa: E402
from prompts_long import LONG_1K  # noqa: E402

CONFIGS = (("line", "line occlusion"), ("section", "sections"), ("example", "examples"))


def main() -> None:
    from promptxray.explainers.anytime import run_stages
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.nl.pairs_text import pair_lines
    from promptxray.explainers.types import ExplainRequest

    backend = get_backend("torch", None)
    target = explain(ExplainRequest(LONG_1K, max_new_tokens=8, method="saliency"), backend)
    ids = [t.token_id for t in target.target.tokens]
    print(f"long_1k: {target.input_tokens} tokens, target {target.target.text!r}")
    rows = []
    for granularity, label in (*CONFIGS, ("auto", "anytime (auto)")):
        figures = []
        for pairs in (False, True):
            request = ExplainRequest(
                LONG_1K,
                granularity=granularity,  # type: ignore[arg-type]
                target_ids=ids,
                faithfulness=False,
                options={"pairs": pairs},
            )
            busy = cpu_busy()
            began = time.perf_counter()
            if granularity == "auto":
                expl = run_stages(request, backend, on_stage=lambda _: None)
            else:
                expl = explain(request, backend)
            seconds = time.perf_counter() - began
            # the counters start at zero with each explanation (its own figures)
            figures.append((expl.forward_passes, expl.sequences_scored, seconds, busy))
        (p0, s0, t0, b0), (p1, s1, t1, b1) = figures
        rows.append((label, len(expl.spans), p0, p1, s0, s1, t0, t1))
        print(
            f"\n{label}: {len(expl.spans)} parts · without pairs {p0} passes / {s0} sequences / "
            f"{t0:.1f} s (cpu busy {b0:.2f}) · with {p1} / {s1} / {t1:.1f} s (busy {b1:.2f})"
        )
        for line in pair_lines(expl, source=LONG_1K):
            print("   ", line)
    line_s = rows[0][6]  # line occlusion without pairs: the unit of cost
    print("\n| parts | n | passes off → on | sequences off → on | s off → on | extra ÷ lines |")
    print("|---|---:|---|---|---|---:|")
    for label, n, p0, p1, s0, s1, t0, t1 in rows:
        print(
            f"| {label} | {n} | {p0} → {p1} | {s0} → {s1} | {t0:.1f} → {t1:.1f} | "
            f"{(t1 - t0) / line_s:.2f} |"
        )


if __name__ == "__main__":
    main()
