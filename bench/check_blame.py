"""The cost of finding the edit that broke a check (`promptxray check --since`,
explainers/checks/blame.py) on the 1.3k-token prompt of `prompts_long.py`, against exact
line-level occlusion of the same prompt, measured in one run (not a test).

The edit has three hunks (a system line, a policy passage line, the customer's question).
The check is `min_probability` with its floor halfway between the two versions' P(answer), so
it passes at the older version and fails at the newer one whatever the model answers (the
default model cannot follow a prompt this long: a check on the answer's text would fail at
both, which costs one answer and proves nothing): the search then runs in full (each hunk
reverted alone, then the combination). Printed: generations, forward passes and seconds of
the search, and of `explain(method="occlusion", granularity="line")` on the newer version,
and their ratios; the CPU load before each (a shared 2-core machine: only same-run ratios
mean much).

    python bench/check_blame.py
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from long_prompts import cpu_busy  # noqa: E402
from prompts_long import LONG_1K  # noqa: E402

EDITS = [
    ("Keep answers under 80 words", "Keep answers under 40 words"),
    (
        "Missing parts are replaced free of charge within 30",
        "Missing parts are replaced free of charge within 14",
    ),
    ("Do I get a new pole for free", "Do I get a replacement pole for free"),
]


def main() -> None:
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.checks import evaluate, load_checks
    from promptxray.explainers.checks.blame import blame_edit
    from promptxray.explainers.diff import own_answer
    from promptxray.explainers.diff.hunks import line_hunks
    from promptxray.explainers.explain import explain
    from promptxray.explainers.nl.blame_text import blame_lines
    from promptxray.explainers.types import ExplainRequest

    backend = get_backend("torch", None)
    old_body, new_body = LONG_1K + "\n", LONG_1K + "\n"
    for before, after in EDITS:
        assert before in new_body, before
        new_body = new_body.replace(before, after)
    path = str(HERE / "long.prompt.md")

    def request(text: str) -> ExplainRequest:
        return ExplainRequest(
            text=text, path=path, granularity="line", max_new_tokens=8, faithfulness=False
        )

    p_old = own_answer(request(old_body), backend).prob
    p_new = own_answer(request(new_body), backend).prob
    if p_new > p_old:  # the version with the lower P(answer) is the one that fails
        old_body, new_body, p_old, p_new = new_body, old_body, p_new, p_old
    floor = (p_old + p_new) / 2
    head = f"---\ntitle: long\nchecks:\n  assert:\n    - min_probability: {floor:.6g}\n---\n"
    old, new = head + old_body, head + new_body
    print(f"P(answer): {p_old:.4g} (older) vs {p_new:.4g} (newer); floor {floor:.4g}")
    print(f"hunks: {len(line_hunks(old, new))}, lines: {new.count(chr(10))}")

    busy = cpu_busy()
    backend.counters.reset()
    started = time.perf_counter()
    expl = explain(replace(request(new), method="occlusion"), backend=backend)
    occ_s, occ_passes = time.perf_counter() - started, backend.counters.forward_passes
    print(
        f"line occlusion: {len(expl.spans)} lines, {occ_passes} forward passes, "
        f"{occ_s:.1f} s (CPU busy before {busy:.0%})"
    )

    spec = load_checks(new, path)
    assert spec is not None and not spec.errors
    failed = [r for r in evaluate(spec, expl) if r.status == "fail"]
    assert failed, "the newer version must fail its check"
    busy = cpu_busy()
    blame = blame_edit(request(new), expl, spec, failed, old, "older", backend)
    print(
        f"hunk search: {blame.answers} variants, {blame.generations} generations, "
        f"{blame.forward_passes} forward passes, {blame.seconds:.1f} s "
        f"(CPU busy before {busy:.0%})"
    )
    print(
        f"ratio to line occlusion: forward passes {blame.forward_passes / occ_passes:.2f}x, "
        f"time {blame.seconds / occ_s:.2f}x"
    )
    print("\n".join(blame_lines(blame)))


if __name__ == "__main__":
    main()
