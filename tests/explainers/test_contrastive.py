"""Contrastive explanations ("why A rather than B"): with a foil every method that attributes
the target scores log P(A | variant) − log P(B | variant), and so do the faithfulness figures.
All on the tiny real model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from promptxray.explainers import nl
from promptxray.explainers.errors import InvalidRequestError, UnsupportedMethodError
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.gradients import objective, prompt_embeddings
from promptxray.explainers.types import ExplainRequest, Explanation
from tests.conftest import REPO, STORIES
from tests.helpers import F32_NATS, direct_target_logprob

PROMPT = "Once upon a time there was a little girl named"
TARGET, FOIL = "Lily", "Sue"


def request(**kw: Any) -> ExplainRequest:
    base: dict[str, Any] = {
        "text": PROMPT,
        "model": str(STORIES),
        "target": TARGET,
        "foil": FOIL,
        "granularity": "word",
    }
    return ExplainRequest(**{**base, **kw})


def direct(backend: Any, ids: list[list[int]], target: str, foil: str) -> np.ndarray:
    """log P(target | ids) − log P(foil | ids), straight from the backend, per row."""
    a = backend.target_logprobs(ids, backend.encode_target(target)).sum(axis=1)
    b = backend.target_logprobs(ids, backend.encode_target(foil)).sum(axis=1)
    return a - b


def test_contrastive_occlusion_scores_are_the_drop_in_the_log_probability_difference(stories):
    expl = explain(request(), backend=stories)
    _, prep = prepare(request(), backend=stories)
    ctx = prep.ctx
    base = direct(stories, [ctx.input.ids], TARGET, FOIL)[0]
    variants = [ctx.ids_without(unit) for unit in ctx.units]
    expected = base - direct(stories, variants, TARGET, FOIL)
    assert [s.score for s in expl.spans] == pytest.approx(expected, abs=2 * F32_NATS)  # two
    assert expl.contrast == pytest.approx(base, abs=F32_NATS)
    assert expl.foil is not None and expl.foil.text == FOIL
    assert expl.foil.logprob == pytest.approx(
        stories.target_logprobs([ctx.input.ids], stories.encode_target(FOIL)).sum(), abs=F32_NATS
    )
    assert expl.target.text == TARGET  # the target keeps its own log-probability
    assert expl.target.logprob == pytest.approx(expl.contrast + expl.foil.logprob, abs=F32_NATS)
    assert expl.ablated_logprob is None  # removal effects are of the difference, not of log P


def test_the_foil_may_be_longer_than_the_target(stories):
    foil = "Sue and her dog"
    expl = explain(request(foil=foil, faithfulness=False), backend=stories)
    _, prep = prepare(request(foil=foil), backend=stories)
    variants = [prep.ctx.ids_without(unit) for unit in prep.ctx.units]
    base = direct(stories, [prep.ctx.input.ids], TARGET, foil)[0]
    assert len(stories.encode_target(foil)) > len(stories.encode_target(TARGET))
    expected = base - direct(stories, variants, TARGET, foil)
    assert [s.score for s in expl.spans] == pytest.approx(expected, abs=2 * F32_NATS)  # two


@pytest.mark.parametrize("method", ["shapley", "surrogate", "gradient_x_input"])
def test_other_methods_score_the_contrastive_quantity(stories, method):
    expl = explain(request(method=method), backend=stories)
    _, prep = prepare(request(method=method), backend=stories)
    ctx = prep.ctx
    contrast = direct(stories, [ctx.input.ids], TARGET, FOIL)[0]
    assert ctx.base_score == pytest.approx(contrast, abs=F32_NATS)
    assert expl.contrast == pytest.approx(contrast, abs=F32_NATS)
    assert all(np.isfinite(s.score) for s in expl.spans)
    n = len(ctx.units)
    empty = direct(stories, [ctx.ids_keeping([False] * n)], TARGET, FOIL)[0]
    assert ctx.score_masks(np.zeros((1, n), bool))[0] == pytest.approx(empty, abs=F32_NATS)
    if method == "shapley":  # v(all units) and v(none) are the contrast's
        assert expl.details["v_all"] == pytest.approx(contrast, abs=F32_NATS)
        assert expl.details["v_none"] == pytest.approx(empty, abs=F32_NATS)
        total = sum(s.score for s in expl.spans)
        # exact (efficiency), up to float32: two log-prob differences
        assert total == pytest.approx(contrast - empty, abs=2 * F32_NATS)


def test_gradient_objective_subtracts_the_foil(stories):
    """The objective is log P(A) − log P(B), so gradient × input of the contrast is the
    difference of gradient × input of the target and of the foil (linearity)."""
    _, prep = prepare(request(method="gradient_x_input"), backend=stories)
    with torch.no_grad():
        value = float(objective(prep.ctx, prompt_embeddings(prep.ctx)[None])[0])
    assert value == pytest.approx(prep.ctx.base_score, abs=F32_NATS)

    def scores(**kw: Any) -> np.ndarray:
        expl = explain(request(method="gradient_x_input", faithfulness=False, **kw), stories)
        return np.array([t.score for t in expl.tokens])

    both = scores()
    apart = scores(foil=None) - scores(target=FOIL, foil=None)
    # float32 gradient sums, the two graphs added in another order: 1e-4 of the largest score
    assert both == pytest.approx(apart, abs=1e-4 * np.abs(apart).max())


def test_faithfulness_uses_the_contrastive_score(stories):
    expl = explain(request(), backend=stories)
    _, prep = prepare(request(), backend=stories)
    ctx = prep.ctx
    curves = expl.faithfulness
    assert curves is not None and curves.units.startswith("log P(target) − log P(foil)")
    assert curves.deletion_logprob[0] == pytest.approx(expl.contrast, abs=F32_NATS)
    assert curves.insertion_logprob[-1] == pytest.approx(expl.contrast, abs=F32_NATS)
    order = np.argsort(-np.array([s.score for s in expl.spans]), kind="stable")
    k = curves.counts[1]
    kept = np.zeros(len(ctx.units), bool)
    kept[order[:k]] = True
    only_top = direct(stories, [ctx.ids_keeping(list(kept))], TARGET, FOIL)[0]
    assert curves.insertion_logprob[1] == pytest.approx(only_top, abs=F32_NATS)
    removed = direct(stories, [ctx.ids_keeping(list(~kept))], TARGET, FOIL)[0]
    assert curves.deletion_logprob[1] == pytest.approx(removed, abs=F32_NATS)


def test_a_foil_equal_to_the_target_is_a_request_error(stories):
    with pytest.raises(InvalidRequestError, match="same as the target"):
        explain(request(foil=TARGET), backend=stories)
    answer = explain(request(target=None, foil=None, faithfulness=False), backend=stories)
    with pytest.raises(InvalidRequestError, match="same as the target"):  # the model's own
        explain(request(target=None, foil=answer.target.text), backend=stories)
    with pytest.raises(InvalidRequestError, match="empty"):
        explain(request(foil=""), backend=stories)


@pytest.mark.parametrize("method", ["attention", "attention_rollout", "activation_max"])
def test_methods_that_cannot_contrast_refuse(stories, method):
    with pytest.raises(UnsupportedMethodError, match="cannot explain a foil"):
        explain(request(method=method), backend=stories)


def test_auto_skips_what_cannot_contrast(stories):
    expl = explain(request(method="auto", options={"budget_s": 60}), backend=stories)
    assert expl.auto is not None and expl.foil is not None
    tried = {c["method"] for c in expl.auto.candidates}
    assert "attention" not in tried and "occlusion" in tried


def test_the_foil_round_trips_and_is_said_in_both_languages(stories):
    expl = explain(request(), backend=stories)
    again = Explanation.from_json(expl.to_json())
    assert again == expl and again.foil is not None and again.foil.tokens == expl.foil.tokens
    # a float through JSON: exact, or to JSON's shortest repr
    assert json.loads(expl.to_json())["foil"]["prob"] == pytest.approx(expl.foil.prob)
    plain = Explanation.from_dict({k: v for k, v in expl.to_dict().items() if k != "foil"})
    assert plain.foil is None and plain.contrast is None  # files without a foil still read
    assert expl.foil is not None
    p_a, p_b = nl.format_prob(expl.target.prob), nl.format_prob(expl.foil.prob)
    en = nl.summary(expl)
    assert f'"{TARGET}" (P {p_a}) rather than "{FOIL}" (P {p_b})' in en
    report = nl.describe(expl)
    assert f'Why "{TARGET}" rather than "{FOIL}"' in report and p_b in report
    assert "answer's probability" not in report  # no odds stated as probabilities
    zh = nl.summary(expl, "zh")
    assert f"而不是“{FOIL}”" in zh and p_b in zh
    assert "为什么是" in nl.describe(expl, "zh")
    line = nl.span_line(expl, max(range(len(expl.spans)), key=lambda i: expl.spans[i].score))
    assert "− log P" in line


def test_cli_target_and_foil(tmp_path: Path):
    prompt = tmp_path / "story.prompt"
    prompt.write_text(PROMPT)
    cmd = [sys.executable, "-m", "promptxray.cli", "explain", str(prompt)]
    flags = ["--model", str(STORIES), "-g", "word", "--format", "json"]
    run = subprocess.run(
        [*cmd, *flags, "--target", TARGET, "--foil", FOIL],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["target"]["text"] == TARGET and data["foil"]["text"] == FOIL
    assert Explanation.from_dict(data).contrast == pytest.approx(  # float64 difference
        data["target"]["logprob"] - data["foil"]["logprob"]
    )


def test_cli_foil_alone_explains_the_models_own_answer(tmp_path: Path, capsys, stories):
    from promptxray.cli.main import main

    prompt = tmp_path / "story.prompt"
    prompt.write_text(PROMPT)
    base = ["explain", str(prompt), "--model", str(STORIES), "--color", "never"]
    assert main([*base, "--foil", FOIL]) == 0
    out = capsys.readouterr().out
    assert f'rather than "{FOIL}"' in out and f"rather than {FOIL!r}" in out
    assert main([*base, "--foil", FOIL, "-m", "attention"]) == 2
    assert "cannot explain a foil" in capsys.readouterr().err


def test_server_why_not_lens_and_command(tmp_path: Path, stories):
    from promptxray.explainers.alternatives import alternatives
    from tests.server.wire import Wire

    async def lenses(wire: Wire, uri: str) -> list[dict[str, Any]]:
        return await wire.request("textDocument/codeLens", {"textDocument": {"uri": uri}})

    async def scenario() -> None:
        wire = Wire()
        await wire.initialize({"model": str(STORIES), "debounceMs": 20})
        uri = wire.open(tmp_path / "story.prompt", PROMPT)
        await wire.published(uri)
        shown = wire.ls.documents.shown(uri)
        assert shown is not None and shown.expl.foil is None
        why = [
            c["command"] for c in await lenses(wire, uri) if c["command"]["title"][:7] == "Why not"
        ]
        assert why and all(c["command"] == "promptxray.whyNot" for c in why)
        # the model's own whole alternative answers, each with its exact probability
        _, prep = prepare(request(target=None, foil=None), backend=stories)
        prompt, answer = prep.ctx.input.ids, prep.ctx.target_ids
        assert [t.token_id for t in shown.expl.target.tokens] == answer
        offered = alternatives(stories, prompt, answer)
        assert [c["arguments"] for c in why] == [[uri, a.text] for a in offered]
        for c, alt in zip(why, offered, strict=True):
            direct = direct_target_logprob(stories.model, prompt, stories.encode_target(alt.text))
            title = nl.format_prob(float(np.exp(direct)))
            assert c["title"] == f'Why not "{alt.text}" (P={title})?'  # short enough to show
            assert len(alt.text) <= 28 and alt.text.strip()
        foil = why[0]["arguments"][1]

        published = len(wire.diagnostics(uri))
        summary = await wire.command(why[0]["command"], *why[0]["arguments"])
        assert summary["foil"] == foil  # explain scores it as the alternative's figure did
        assert np.log(summary["foil_prob"]) == pytest.approx(offered[0].logprob, abs=F32_NATS)
        await wire.published(uri, published)
        after = wire.ls.documents.shown(uri)
        assert after is not None and after.expl.foil is not None
        assert after.expl.foil.text == foil  # the contrastive result is what the document shows
        data = Explanation.from_dict(await wire.request("promptxray/explanation", {"uri": uri}))
        assert data.foil is not None and data.foil.text == foil
        titles = [c["command"]["title"] for c in await lenses(wire, uri)]
        assert f"rather than {foil!r}" in titles[0] and "drop the foil" in titles
        assert not any(t.startswith(f'Why not "{foil}"') for t in titles)

        await wire.command("promptxray.whyNot", uri, None)
        dropped = wire.ls.documents.shown(uri)
        assert dropped is not None and dropped.expl.foil is None
        await wire.request("shutdown")

    asyncio.run(scenario())
