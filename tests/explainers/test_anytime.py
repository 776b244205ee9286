"""Anytime explanations: each stage equals an independent computation of what it claims (the
blocks stage: each block's removal effect by a plain forward; the lines stage: exact
line-level occlusion for the lines it shows and the block scores for the blocks it keeps
whole; refined = granularity "auto"), on the tiny model and on the default model; a decisive
block ranks first and a redundant pair is never skipped as "no effect"; an approximate stage's
stated error holds; stages arrive in order and can be stopped."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from promptxray.explainers import nl
from promptxray.explainers.anytime import explain_stages, stage_plan
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.explain import explain
from promptxray.explainers.types import Explanation
from tests.helpers import F32_NATS, request_for

STORY = (
    "Once upon a time there was a little girl.\nShe had a red ball and a small dog.\n"
    "One day the dog ran to the park.\nThe little girl named"
)
SUPPORT = (
    "You are a support agent for Acme Bank.\nAnswer in one short sentence.\n"
    "Never reveal account numbers.\nCustomer: How do I reset my online banking password?\n"
    "Agent:"
)
# one decisive block (the story's last line, which the continuation follows) and two blocks
# that say the same thing: removing either copy alone costs the tiny model's answer little
REDUNDANT = "Lily had a big red ball.\n\nLily had a big red ball.\n\nThe sun was hot.\n\nOne day"


def scores(expl: Explanation) -> np.ndarray:
    return np.array([s.score for s in expl.spans])


def removal_by_plain_forwards(backend, expl: Explanation, text: str) -> np.ndarray:
    """Each span's removal effect recomputed independently: the prompt's ids without the
    span's tokens, scored in plain padded batches (no prefix reuse, no stage code)."""
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document

    model_input = build_input(parse_document(text, expl.path), backend)
    target = [t.token_id for t in expl.target.tokens]
    drop_sets = [{model_input.positions[i] for i in s.token_indices} for s in expl.spans]
    variants = [[t for p, t in enumerate(model_input.ids) if p not in drop] for drop in drop_sets]
    full = backend.target_logprobs([model_input.ids], target)[0].sum()
    return full - backend.target_logprobs(variants, target).sum(axis=1)


def check_stages(backend, text: str) -> list[Explanation]:
    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    stages = list(explain_stages(request, backend))
    names = [s.stage.name for s in stages if s.stage]
    plan = stage_plan(request, backend)  # the most it may do; top_lines only when it helps
    shown = list(dict.fromkeys(names))  # top_lines may be shown again as it sharpens
    assert [n for n in plan if n in shown] == shown
    assert shown[0] == "blocks" and names[-2:] == ["lines", "refined"]
    assert [s.stage.final for s in stages if s.stage] == [False] * (len(names) - 1) + [True]
    assert [(s.stage.index, s.stage.total) for s in stages] == [
        (shown.index(n) + 1, len(shown)) for n in names
    ]
    target = [t.token_id for t in stages[-1].target.tokens]
    for stage in stages:  # one target for every stage
        assert [t.token_id for t in stage.target.tokens] == target
    fixed = {"target_ids": target, "max_new_tokens": 4}
    lines = explain(
        request_for(text, method="occlusion", granularity="line", **fixed), backend=backend
    )
    final = explain(
        request_for(text, method="occlusion", granularity="auto", **fixed), backend=backend
    )
    blocks = stages[0]
    assert blocks.stage.granularity == "block" and blocks.stage.fidelity.exact
    # every token of the prompt is in exactly one block, blocks are runs of whole lines
    line_of = {t: i for i, s in enumerate(lines.spans) for t in s.token_indices}
    covered = sorted(t for s in blocks.spans for t in s.token_indices)
    assert covered == sorted(line_of)
    for span in blocks.spans:
        held = sorted({line_of[t] for t in span.token_indices})
        assert held == list(range(held[0], held[-1] + 1))
    # an exact stage's figures are the removal effects themselves (stated error: none)
    assert (
        np.abs(scores(blocks) - removal_by_plain_forwards(backend, blocks, text)).max()
        <= 4 * F32_NATS
    )
    by_line = {tuple(s.token_indices): s.score for s in lines.spans}
    by_block = {tuple(s.token_indices): s.score for s in blocks.spans}
    for stage in stages[1:-1]:
        if not stage.stage.fidelity.exact:
            continue
        whole = 0
        for span in stage.spans:  # a line of a block that matters, or a block kept whole
            key = tuple(span.token_indices)
            expected = by_line.get(key, by_block.get(key))
            assert expected is not None
            assert span.score == pytest.approx(expected, abs=2 * F32_NATS)
            lines_held = {line_of[t] for t in key}
            whole += len(lines_held) if key not in by_line and len(lines_held) > 1 else 0
        assert stage.stage.pending_lines == whole and stage.ablated_logprob is not None
    assert [(s.start, s.end) for s in stages[-1].spans] == [(s.start, s.end) for s in final.spans]
    assert np.abs(scores(stages[-1]) - scores(final)).max() <= 2 * F32_NATS
    # the lines tested in pairs as explain() tests them (the blocks' redundant pairs beside)
    assert stages[-1].pair_test == final.pair_test and final.pair_test is not None
    assert {repr(p) for p in final.pairs} <= {repr(p) for p in stages[-1].pairs}
    assert all(s.score_kind is ScoreKind.REMOVAL for s in stages)
    assert stages[-1].hierarchy is not None and stages[-1].hierarchy.line_scores == pytest.approx(
        scores(lines).tolist(),
        abs=2 * F32_NATS,  # removal scores
    )
    # exact early stages carry no faithfulness curves; the final one the full figures
    assert all(s.faithfulness is None for s in stages[:-1])
    assert stages[-1].faithfulness is not None and len(stages[-1].faithfulness.bins) == 5
    return stages


def test_every_stage_equals_its_plain_computation_on_the_tiny_model(stories):
    stages = check_stages(stories, STORY)
    assert not nl.span_line(stages[-1], 0).startswith("[")
    assert nl.stage_note(stages[0]) and nl.stage_note(stages[-1]) == ""


def test_every_stage_equals_its_plain_computation_on_the_default_model(smol):
    check_stages(smol, SUPPORT)


def test_the_first_stage_ranks_the_decisive_block_first_and_keeps_a_redundant_pair(stories):
    # at a no-effect floor of 0.5 nats either copy of the repeated line looks inert alone
    request = request_for(
        REDUNDANT, method="occlusion", granularity="auto", options={"refine_floor": 0.5}
    )
    stages = list(explain_stages(request, stories))
    blocks = stages[0]
    assert blocks.stage is not None and blocks.stage.name == "blocks"
    effects = removal_by_plain_forwards(stories, blocks, REDUNDANT)
    texts = [s.text for s in blocks.spans]
    assert texts == [
        "Lily had a big red ball.",
        "Lily had a big red ball.",
        "The sun was hot.",
        "One day",
    ]
    assert int(np.argmax(scores(blocks))) == 3 == int(np.argmax(effects))
    assert max(abs(effects[0]), abs(effects[1])) < 0.5  # each copy alone: "no effect"
    # independently: removing both copies costs the answer far more than either alone
    both = replace(
        blocks,
        spans=[
            replace(
                blocks.spans[0],
                token_indices=blocks.spans[0].token_indices + blocks.spans[1].token_indices,
            )
        ],
    )
    joint = float(removal_by_plain_forwards(stories, both, REDUNDANT)[0])
    assert joint > 0.5 + effects[0] + effects[1]
    (pair,) = blocks.pairs
    assert (pair.first, pair.second) == (
        [blocks.spans[0].start, blocks.spans[0].end],
        [blocks.spans[1].start, blocks.spans[1].end],
    )
    assert pair.both == pytest.approx(joint, abs=4 * F32_NATS)
    # the pair is not skipped: never "no measurable effect", and its lines are scored next
    quiet = set(nl.no_effect(blocks, threshold=0.5))
    assert quiet == {2}
    lines = stages[-2]
    assert lines.stage is not None and lines.stage.name == "lines"
    shown = [s.text for s in lines.spans if s.text.strip()]
    assert shown[:2] == texts[:2] and lines.pairs == blocks.pairs
    assert set(map(repr, blocks.pairs)) <= set(map(repr, stages[-1].pairs))


def test_the_lines_of_the_blocks_that_matter_most_come_first(stories):
    paragraph = "Lily had {n} red balls.\nShe liked the balls.\nTom had a dog.\n"
    text = "\n".join(paragraph.format(n=n) for n in range(5)) + "\nThe sun was hot.\nOne day Lily"
    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    seen = list(explain_stages(request, stories))
    stages = {s.stage.name: s for s in reversed(seen)}  # each name's first showing
    assert list(dict.fromkeys(s.stage.name for s in seen)) == [
        "blocks",
        "top_lines",
        "lines",
        "refined",
    ]
    blocks, top = stages["blocks"], stages["top_lines"]
    lines = {tuple(s.token_indices): s.score for s in stages["lines"].spans}
    kept = {tuple(s.token_indices) for s in top.spans}
    split = [b for b, span in enumerate(blocks.spans) if tuple(span.token_indices) not in kept]
    # the blocks it splits into lines are the largest, holding 80% of the blocks' |effect|
    matter = [b for b, span in enumerate(blocks.spans) if abs(span.score) >= 0.05]
    ranked = sorted(matter, key=lambda b: -abs(blocks.spans[b].score))
    assert split and sorted(split) == sorted(ranked[: len(split)])
    total = sum(abs(blocks.spans[b].score) for b in matter)
    assert sum(abs(blocks.spans[b].score) for b in split) >= 0.8 * total
    for span in top.spans:  # its lines are exact: as the full lines stage has them
        key = tuple(span.token_indices)
        if key in lines:
            assert span.score == pytest.approx(lines[key], abs=2 * F32_NATS)
    assert top.stage.pending_lines > stages["lines"].stage.pending_lines
    # shown again after each further block that matters, largest first, each time sharper
    again = [s for s in seen if s.stage.name == "top_lines"]
    pending = [s.stage.pending_lines for s in again] + [stages["lines"].stage.pending_lines]
    assert pending == sorted(pending, reverse=True) and len(set(pending)) == len(pending)


def test_a_line_the_user_asks_about_is_scored_next_and_the_stage_shown_again(stories):
    paragraph = "Lily had {n} red balls.\nShe liked the balls.\nTom had a dog.\n"
    text = "\n".join(paragraph.format(n=n) for n in range(5)) + "\nThe sun was hot.\nOne day Lily"
    asked = text.index("Lily had 1")  # a line of the second block, shown whole at first
    calls: list[int] = []

    def wanted() -> list[int]:
        calls.append(len(calls))
        return [asked + 3] if len(calls) == 1 else []

    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    stages = list(explain_stages(request, stories, wanted=wanted))
    names = [s.stage.name for s in stages]
    assert names[:2] == ["blocks", "blocks"] and names[-2:] == ["lines", "refined"]
    first, again = stages[0], stages[1]
    assert again.stage.index == first.stage.index and again.stage.fidelity.exact
    target = [t.token_id for t in first.target.tokens]
    lines = explain(replace(request, target_ids=target, granularity="line"), backend=stories)
    exact = {(s.start, s.end): s.score for s in lines.spans}
    block = next(s for s in first.spans if s.start <= asked < s.end)
    held = set(block.token_indices)
    inside = [s for s in again.spans if set(s.token_indices) <= held]
    # the asked block is now its lines, each exact; every other part is as it was
    assert [s.text for s in inside if s.text.strip()] == block.text.split("\n")
    for span in inside:
        assert span.score == pytest.approx(exact[(span.start, span.end)], abs=2 * F32_NATS)
    rest = [(s.start, s.end, s.score) for s in again.spans if s not in inside]
    assert rest == [(s.start, s.end, s.score) for s in first.spans if s is not block]
    assert again.stage.pending_lines == first.stage.pending_lines - len(inside)
    for later in stages[2:-1]:  # and it stays split
        assert [s.text for s in later.spans if set(s.token_indices) <= held] == [
            s.text for s in inside
        ]


def test_a_long_prompt_is_outlined_first_in_a_few_exact_parts(stories):
    # nine paragraphs: nine blocks, more than twice the outline's four parts
    names = ["Lily", "Tom", "Mom", "Sue", "Ben", "Max", "Amy", "Sam", "Zoe"]
    text = "\n\n".join(f"{n} had a ball.\n{n} was happy." for n in names) + "\nOne day Lily"
    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    stages = list(explain_stages(request, stories))
    first, blocks = stages[0], stages[1]
    assert (first.stage.name, blocks.stage.name) == ("outline", "blocks")
    assert 2 <= len(first.spans) <= 4 < len(blocks.spans)
    assert first.stage.fidelity.exact and first.stage.pending_lines == len(text.split(chr(10)))
    # each part is a run of whole blocks, and its score is its exact removal effect
    block_sets = [set(s.token_indices) for s in blocks.spans]
    for part in first.spans:
        held = [b for b in block_sets if b <= set(part.token_indices)]
        assert set().union(*held) == set(part.token_indices)
    effects = removal_by_plain_forwards(stories, first, text)
    assert np.abs(scores(first) - effects).max() <= 4 * F32_NATS
    assert "large parts" in nl.stage_note(first) and nl.stage_tag(first).startswith("[outline 1/")


def test_an_approximate_stage_states_an_error_that_holds(stories, monkeypatch):
    # bf16 where the CPU lacks fast bf16 is slow but computes the same numbers: force the stage
    monkeypatch.setattr(stories, "scoring_precisions", ("fp32", "bf16"))
    text = "\n".join(f"Lily had {i} red balls and a big dog named Max." for i in range(14))
    text += "\nOne day Lily"
    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    stages = list(explain_stages(request, stories))
    names = [s.stage.name for s in stages if s.stage]
    assert names[:2] == ["blocks", "lines_bf16"] and names[-2:] == ["lines", "refined"]
    approx = stages[1]
    fid = approx.stage.fidelity
    assert not fid.exact and fid.precision == "bf16"
    # independently: every line in fp32 and in bf16, by plain line-level explanations
    target = [t.token_id for t in approx.target.tokens]
    lines = replace(request, target_ids=target, granularity="line")
    exact = {tuple(s.token_indices): s.score for s in explain(lines, backend=stories).spans}
    with stories.precision("bf16"):
        low = {tuple(s.token_indices): s.score for s in explain(lines, backend=stories).spans}
    shown = [
        (tuple(s.token_indices), s.score) for s in approx.spans if tuple(s.token_indices) in low
    ]
    # the stage's lines: the top `checked` by |bf16| are exact, the others are bf16's values
    ranked = sorted(shown, key=lambda u: -abs(low[u[0]]))
    checked = [unit for unit, _ in ranked[: fid.checked]]
    assert fid.checked == min(10, len(shown))
    for unit, value in shown:
        expected = exact[unit] if unit in checked else low[unit]
        assert value == pytest.approx(expected, abs=4 * F32_NATS)
    # the stated error is the largest |bf16 − exact| on the checked lines
    assert fid.max_error == pytest.approx(
        max(abs(low[u] - exact[u]) for u in checked), abs=4 * F32_NATS
    )
    assert f"{fid.max_error:.2f}" in nl.stage_tag(approx)


def test_other_requests_have_one_final_stage(stories):
    request = request_for(STORY, method="occlusion", granularity="word")
    assert stage_plan(request, stories) == ["final"]
    (only,) = list(explain_stages(request, stories))
    assert only.stage is not None and only.stage.final and only.granularity == "word"


def test_a_progress_callback_that_raises_stops_the_stages(stories):
    class Stop(Exception):
        pass

    def progress(stage: str, done: int, total: int) -> None:
        if stage in ("top_lines", "lines"):
            raise Stop

    request = request_for(STORY, method="occlusion", granularity="auto")
    seen = []
    with pytest.raises(Stop):
        for stage in explain_stages(request, stories, progress):
            seen.append(stage.stage.name if stage.stage else "")
    assert seen == ["blocks"]


def test_cli_prints_each_stage_and_outputs_the_final_result(tmp_path, capsys):
    import json

    from promptxray.cli import main
    from tests.conftest import STORIES

    prompt = tmp_path / "story.prompt"
    prompt.write_text(STORY, encoding="utf-8")
    args = ["explain", str(prompt), "--model", str(STORIES), "-g", "auto", "-f", "json"]
    assert main([*args, "--stages"]) == 0
    out, err = capsys.readouterr()
    heads = re.findall(
        r"^promptxray: \[([\w ]+) (\d)/(\d)(?: · exact)?\] [\d.]+ s · The answer", err, re.M
    )
    names = [name for name, _, _ in heads]
    assert names[0] == "blocks" and names[-2:] == ["lines", "refined"]
    assert [(int(i), int(n)) for _, i, n in heads] == [
        (k + 1, len(heads)) for k in range(len(heads))
    ]
    final = json.loads(out)
    assert final["granularity"] == "auto" and final["stage"]["final"] is True
    assert main(args) == 0  # without --stages: the same final result, nothing on stderr
    plain = json.loads(capsys.readouterr().out)
    assert [s["score"] for s in plain["spans"]] == pytest.approx(
        [s["score"] for s in final["spans"]],
        abs=2 * F32_NATS,  # removal scores
    )


def test_refinement_prunes_what_cannot_matter_and_says_so(stories):
    lines = [
        f"Once upon a time there was a girl named Lily number {i}. She liked it." for i in range(8)
    ]
    text = "\n".join(lines) + "\nOne day Lily"
    expl = explain(request_for(text, method="occlusion", granularity="auto"), backend=stories)
    h = expl.hierarchy
    assert h is not None
    line_scores = np.abs(np.array(h.line_scores))
    assert all(line_scores[i] >= 0.05 for i in h.refined_lines)  # no split of a no-effect line
    quiet = int((line_scores < 0.05).sum())
    said = {p.rule: p.count for p in h.pruned if p.level == "line"}
    report = nl.describe(expl)
    if quiet:
        assert said["floor"] == quiet
        assert f"{quiet} line(s) not refined: no measurable effect" in report
        assert f"{quiet} 个行未细化：没有可测量的影响" in nl.describe(expl, "zh")
    counted = sum(said.values())
    assert counted + len(h.refined_lines) == len(h.line_scores)  # every line accounted for
    assert "not refined" in report


def test_refinement_stays_within_its_budget_and_says_what_it_left(stories, monkeypatch):
    from promptxray.explainers import hierarchy

    monkeypatch.setattr(hierarchy, "BUDGET_MIN_TOKENS", 0)  # short prompt: budget by share only
    runs: list[list[int]] = []  # the first token of every variant each pass ran
    scored = hierarchy._leave_one_out

    def counting(ctx: Any, spec: Any, units: list[list[int]], which: list[int]) -> Any:
        runs.append([min(units[i]) for i in which])
        return scored(ctx, spec, units, which)

    monkeypatch.setattr(hierarchy, "_leave_one_out", counting)
    lines = [f"Lily had {i} red balls and a big dog named Max." for i in range(8)]
    text = "\n".join(lines) + "\nOne day Lily"
    request = request_for(text, method="occlusion", granularity="auto")

    def with_budget(share: float | None) -> tuple[Any, int, int]:
        """The pruning report, the line pass's work and refinement's (tokens run)."""
        runs.clear()
        options: dict[str, float] = {"refine_floor": 0}  # every line is worth refining
        if share is not None:
            options["refine_budget"] = share
        expl = explain(replace(request, options=options), backend=stories)
        length = len(expl.tokens)
        work = [sum(length - first for first in run) for run in runs]
        return expl, work[0], sum(work[1:])

    (full_expl, _, full_spent), (tight_expl, line_work, spent), (none_expl, _, _) = (
        with_budget(None),
        with_budget(0.01),
        with_budget(0),
    )
    full, tight, none = (e.hierarchy for e in (full_expl, tight_expl, none_expl))
    n_lines = len(full.line_scores)
    assert none.refined_lines == [] and none.refined_words == 0
    assert [(p.level, p.rule, p.count, p.bound) for p in none.pruned] == [
        ("line", "budget", n_lines, 0.0)
    ]
    said = f"{n_lines} line(s) not refined: over the time budget (0× the line pass"
    assert said in nl.describe(none_expl)
    assert set(tight.refined_lines) <= set(full.refined_lines)
    assert spent <= 0.01 * line_work < full_spent  # the tight budget held, and it bit
    assert any(p.rule == "budget" and p.bound == 0.01 for p in tight.pruned)
    assert "over the time budget (0.01× the line pass" in nl.describe(tight_expl)
