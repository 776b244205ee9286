"""The prompt engineer's questions on a real prompt (not a test): structure-level parts, a
contrastive ("why not") explanation, a diff after a one-line edit and a prompt check, on the
default model and `prompts_long.LONG_1K` (about 1,300 tokens). Every figure is measured in this
run, in one process with the model loaded once; each is also given as a ratio to exact
line-level occlusion of the same prompt, timed first.

    python bench/questions.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.prompts_long import LONG_1K

EDIT = (
    "Never invent order numbers, prices, dates or tracking links.",
    "Never invent order numbers, prices, dates or tracking links, and never promise a date.",
)
CHECKS = """---
checks:
  granularity: line
  assert:
    - answer_contains: Jonas
    - min_share: {section: "Conversation", share: 0.3}
---
"""


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.checks import evaluate, load_checks
    from promptxray.explainers.diff import explain_versions
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    backend = get_backend("torch", None)
    load = os.getloadavg()[0]

    def run(granularity: str, **kw: Any) -> Any:
        request = ExplainRequest(text=LONG_1K, granularity=granularity, faithfulness=False, **kw)
        return explain(request, backend=backend)

    base, line_s = timed(lambda: run("line"))
    answer = base.target.text
    rows: list[tuple[str, float, str]] = [("line occlusion (reference)", line_s, "")]
    for granularity in ("section", "example", "message", "sentence"):
        try:
            expl, seconds = timed(lambda g=granularity: run(g, target=answer))
            rows.append((f"-g {granularity}", seconds, f"{len(expl.spans)} parts"))
        except Exception as exc:  # a kind this prompt lacks
            rows.append((f"-g {granularity}", float("nan"), str(exc)[:60]))
    foil = "Ledger: Hello"
    expl, seconds = timed(lambda: run("line", target=answer, foil=foil))
    rows.append((f"--foil {foil!r} -g line", seconds, f"contrast {expl.contrast:.3f} nats"))
    new = LONG_1K.replace(*EDIT)
    assert new != LONG_1K
    old_request = ExplainRequest(text=LONG_1K, granularity="line", faithfulness=False)
    new_request = ExplainRequest(text=new, granularity="line", faithfulness=False)
    versions, seconds = timed(lambda: explain_versions(old_request, new_request, backend))
    changed = sum(1 for p in versions[0].parts if p.status != "same")
    rows.append(("diff, one line edited (both versions)", seconds, f"{changed} parts changed"))
    text = CHECKS + LONG_1K
    spec = load_checks(text, "support.prompt.md")
    assert spec is not None

    def run_check() -> Any:
        request = ExplainRequest(
            text=text, path="support.prompt.md", granularity="line", faithfulness=False
        )
        return evaluate(spec, explain(request, backend=backend))

    results, seconds = timed(run_check)
    passed = sum(1 for r in results if r.status == "pass")
    rows.append(("check (2 assertions)", seconds, f"{passed} of {len(results)} passed"))

    print(f"LONG_1K: {base.input_tokens} tokens, answer {answer!r}; load average {load:.2f}")
    print(f"{'question':40} {'seconds':>8} {'× line':>7}  notes")
    for name, seconds, note in rows:
        print(f"{name:40} {seconds:8.1f} {seconds / line_s:7.2f}  {note}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
