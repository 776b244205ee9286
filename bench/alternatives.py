"""What the "why not …?" alternatives cost, against exact line occlusion, in one run (not a test).

On the ~1,300-token prompt of `prompts_long.py` with the default model, its greedy answer fixed
first, in one process:

- `occlusion lines`: `explain(..., method="occlusion", granularity="line", faithfulness=False)`
  from a cold prefix cache (what the editor runs on a long prompt);
- `alternatives, after it`: `alternatives()` right after, as the language server and the chat
  run them (the prompt's keys and values are still cached);
- `alternatives, cold`: the same with the prefix cache emptied first;
- `alternatives, one per branch`: the plain path every backend has (one greedy generation and
  one scoring per branch, `Continuations`; the prompt cached, as in the second row), for the
  batched path's speed and its agreement:
  the same completions, and the largest |Δ log P| of the alternatives' figures.

Forward passes are the backend's counters (a batched forward counts once); the ratios divide by
occlusion's. Each alternatives run is repeated `--reps` times and its fastest kept (occlusion
runs once). The CPU load seen before each run is printed: other work on this 2-core machine
slows everything, many small forwards (one per new token) far more than a few large ones, so
only same-run ratios on a quiet machine mean much.

    python bench/alternatives.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts_long import LONG_PROMPTS  # noqa: E402


def measured(backend: Any, fn: Callable[[], Any]) -> tuple[Any, float, int, int]:
    """fn's result, seconds, forward passes and sequences (the backend's counters)."""
    backend.counters.reset()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, backend.counters.forward_passes, backend.counters.sequences


def main() -> None:
    from promptxray.explainers.alternatives import alternatives
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.continuations import Continuations
    from promptxray.explainers.explain import explain, prepare
    from promptxray.explainers.types import ExplainRequest

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args().reps
    backend = get_backend("torch", None)
    text = LONG_PROMPTS["long_1k"]
    _, prep = prepare(ExplainRequest(text, granularity="line"), backend=backend)
    ids, target = list(prep.ctx.input.ids), list(prep.ctx.target_ids)
    print(f"long_1k: {len(ids)} tokens, answer {backend.decode(target)!r}")
    request = ExplainRequest(
        text, method="occlusion", granularity="line", faithfulness=False, target_ids=target
    )

    def cold(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            backend.prefix.entries.clear()
            return fn()

        return run

    rows: list[tuple[str, float, int, int]] = []

    def row(label: str, fn: Callable[[], Any], times: int = 1) -> Any:
        best = None
        for _ in range(times):
            print(f"  load {os.getloadavg()[0]:.2f} before {label}", flush=True)
            out, seconds, passes, sequences = measured(backend, fn)
            if best is None or seconds < best[1]:
                best = (label, seconds, passes, sequences)
        assert best is not None
        rows.append(best)
        return out

    expl = row("occlusion lines", cold(lambda: explain(request, backend=backend)))
    after = row("alternatives, after it", lambda: alternatives(backend, ids, target), reps)
    alts = row("alternatives, cold", cold(lambda: alternatives(backend, ids, target)), reps)

    class OnePerBranch:
        """The backend with the plain continuations (one generation, one scoring a branch)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def complete(self, *args: Any) -> Any:
            return Continuations.complete(backend, *args)

        def continuation_logprobs(self, *args: Any) -> Any:
            return Continuations.continuation_logprobs(backend, *args)

    plain = row(
        "alternatives, one per branch", lambda: alternatives(OnePerBranch(), ids, target), reps
    )

    lines = len(expl.spans)
    occ = rows[0]
    print(f"\n{lines} lines; occlusion {occ[1]:.1f} s, {occ[2]} forward passes, {occ[3]} sequences")
    print(f"{'run':<30} {'seconds':>8} {'÷ occl.':>8} {'passes':>7} {'÷ occl.':>8} {'seqs':>6}")
    for label, seconds, passes, sequences in rows:
        print(
            f"{label:<30} {seconds:>8.2f} {seconds / occ[1]:>7.3f}x {passes:>7} "
            f"{passes / max(1, occ[2]):>7.3f}x {sequences:>6}"
        )
    same = [a.text for a in alts] == [a.text for a in plain] == [a.text for a in after]
    worst = max((abs(a.logprob - b.logprob) for a, b in zip(alts, plain, strict=False)), default=0)
    print(f"\nbatched vs one per branch: same alternatives {same}; max |Δ log P| {worst:.1e} nats")
    print("alternatives (P: the probability that the answer begins with the text):")
    for a in alts:
        print(f"  P={a.prob:.2e}  branch at answer token {a.branch_position}, {a.end}: {a.text!r}")


if __name__ == "__main__":
    main()
