"""How faithful, and how soon, each anytime stage is (issue 23; not a test).

For each prompt, in one process and one run (default model, occlusion at `auto`, the target
fixed first so every run explains the same answer):

- one plain forward of the prompt + target (min of 2): the cost unit;
- `explain_stages`, timing each stage from the start (the model already loaded: a warm
  server's situation);
- each stage's agreement with the final stage's exact line pass: Spearman over lines (a line
  gets the score of the stage's part that holds it, the colour the editor paints it) and the
  top 3 lines shared; for the blocks stage, also Spearman between the blocks' scores and the
  sums of their lines' exact effects (how a coarse stage should rank);
- the work of each stage as seconds ÷ (lines × one plain forward), cumulative;
- the final result against `explain()` of the same request: max |Δ| over the spans (`--no-explain`
  skips that second run on the 4k prompt).

    python bench/stages.py [--prompts vault,office,long_1k,long_4k] [--no-explain long_4k]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.prompts_long import LONG_PROMPTS

# prompts with a known decisive line: the fact the answer copies
OFFICE_FACTS = [
    "The office opens at 8 am and closes at 6 pm.",
    "Parking is free for visitors on level B.",
    "The cafeteria serves lunch from noon to 2 pm.",
    "Wi-Fi network: GuestNet, no password.",
    "The printer on floor 3 is out of order.",
    "Fire drills happen on the first Monday of each month.",
    "The quarterly review meeting is in room 214.",
    "Coffee refills are delivered every Tuesday.",
    "The gym in the basement is open until 9 pm.",
    "Lost and found is at the front desk.",
    "Badges must be worn at all times.",
    "The library closes early on Fridays.",
]
OFFICE = (
    "You answer questions about the office.\n\n"
    + "\n".join(OFFICE_FACTS[:6])
    + "\n\n"
    + "\n".join(OFFICE_FACTS[6:])
    + "\n\nQuestion: In which room is the quarterly review meeting?\n"
)
VAULT = (
    "You are the front desk assistant of the Harbor Hotel.\n"
    "Be polite and brief.\n"
    "\n"
    "The vault code is 4721.\n"
    "\n"
    "Guests may use the gym from 6 am to 10 pm.\n"
    "Breakfast is served in the lobby until 10 am.\n"
    "\n"
    "Remember: the vault code is 4721.\n"
    "\n"
    "Question: what is the vault code?\n"
)
EXTRA = {"vault": VAULT, "office": OFFICE}
DECISIVE = {
    "vault": "The vault code is 4721.",
    "office": "The quarterly review meeting is in room 214.",
}


def line_picture(expl, line_units: list[list[int]]) -> np.ndarray:
    """Each line's score as a stage shows it: the score of the part that holds its first
    token."""
    owner = {t: s.score for s in expl.spans for t in s.token_indices}
    return np.array([owner.get(unit[0], 0.0) for unit in line_units])


def own_parts(expl, line_units: list[list[int]], exact: np.ndarray, spearman) -> str:
    """Spearman between the stage's parts and the sums of the exact effects of the lines each
    holds: how a stage ranks at its own granularity (lines: exact values; whole blocks: what
    their lines add up to). "—" for the final stage (its parts are words and tokens too)."""
    if expl.stage.final:
        return "—"
    sums = np.array(
        [
            sum(exact[i] for i, u in enumerate(line_units) if u[0] in s.token_indices)
            for s in expl.spans
        ]
    )
    return f"{spearman(np.array([s.score for s in expl.spans]), sums):.2f}"


def rank_of(values: np.ndarray, line: int) -> str:
    """The line's rank among the lines (ties: the best rank it shares, and how many share it)."""
    better = int((values > values[line]).sum())
    ties = int((values == values[line]).sum())
    return f"#{better + 1}" + (f" (tied ×{ties})" if ties > 1 else "")


def top(values: np.ndarray, k: int = 3) -> set[int]:
    return set(np.argsort(-values, kind="stable")[:k].tolist())


def run(name: str, text: str, check_explain: bool) -> None:
    import torch

    from promptxray.explainers.anytime import explain_stages
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain, prepare
    from promptxray.explainers.metrics import spearman
    from promptxray.explainers.types import ExplainRequest
    from promptxray.explainers.units import group_units

    backend = get_backend("torch", None)
    request = ExplainRequest(
        text=text, path=f"{name}.prompt", method="occlusion", granularity="auto"
    )
    _, prep = prepare(request, backend)
    ids, target = list(prep.ctx.input.ids), list(prep.ctx.target_ids)
    request = replace(request, target_ids=target)
    line_units = group_units(prep.source, prep.ctx.input.tokens, "line")
    forward = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        with torch.inference_mode():
            backend.model(input_ids=torch.tensor([ids + target[:-1]]), logits_to_keep=1)
        forward = min(forward, time.perf_counter() - t0)
    unit = len(line_units) * forward
    print(
        f"\n## {name}: {len(ids)} tokens, {len(line_units)} lines, answer "
        f"{backend.decode(target)!r}, plain forward {forward:.2f} s"
    )
    stages = list(explain_stages(request, backend))
    final = stages[-1]
    assert final.hierarchy is not None
    exact = np.array(final.hierarchy.line_scores)
    known = DECISIVE.get(name)
    decisive = next(
        (
            i
            for i, u in enumerate(line_units)
            if known
            and prep.source[
                prep.ctx.input.tokens[u[0]].start : prep.ctx.input.tokens[u[-1]].end
            ].strip()
            == known
        ),
        None,
    )
    extra = " decisive line's rank |" if decisive is not None else ""
    print(
        "| stage | parts | fidelity | at (s) | ÷ lines×forward | Spearman (lines) "
        "| Spearman (own parts) | top-3 lines shared |" + extra
    )
    print("|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""))
    for expl in stages:
        info = expl.stage
        assert info is not None
        picture = line_picture(expl, line_units) if not info.final else exact
        fid = info.fidelity
        said = "exact" if fid.exact else f"{fid.precision} ±{fid.max_error:.2f} ({fid.checked})"
        print(
            f"| {info.name} | {len(expl.spans)} {info.granularity} | {said} | {info.seconds:.1f}"
            f" | {info.seconds / unit:.3f} | {spearman(picture, exact):.2f}"
            f" | {own_parts(expl, line_units, exact, spearman)}"
            f" | {len(top(picture) & top(exact))}/3 |"
            + (f" {rank_of(picture, decisive)} |" if decisive is not None else "")
        )
        if info.name == "blocks":
            sums = [
                sum(exact[i] for i, u in enumerate(line_units) if u[0] in s.token_indices)
                for s in expl.spans
            ]
            scores = np.array([s.score for s in expl.spans])
            print(
                f"  blocks vs sums of their lines' exact effects: Spearman "
                f"{spearman(scores, np.array(sums)):.2f}; top block holds the top line: "
                f"{int(np.argmax(np.abs(scores))) == int(np.argmax(np.abs(sums)))}; "
                f"redundant pairs {len(expl.redundant)}; lines inside whole blocks "
                f"{info.pending_lines}"
            )
    if check_explain:
        plain = explain(request, backend)
        same = [s.token_indices for s in plain.spans] == [s.token_indices for s in final.spans]
        diff = (
            max(abs(a.score - b.score) for a, b in zip(plain.spans, final.spans, strict=True))
            if same
            else None
        )
        print(f"  final vs explain(): same parts {same}, max |Δ| {diff}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", default="vault,office,long_1k,long_4k")
    parser.add_argument("--no-explain", default="long_4k")
    args = parser.parse_args()
    prompts = {**EXTRA, **LONG_PROMPTS}
    skip = set(args.no_explain.split(","))
    for name in args.prompts.split(","):
        run(name, prompts[name], name not in skip)


if __name__ == "__main__":
    main()
