"""Occlusion scores equal the drop in target log-probability of a directly computed forward."""

from __future__ import annotations

import pytest

from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from tests.helpers import F32_NATS, direct_target_logprob, request_for

PROMPTS = {
    "stories": "Once upon a time there was a little girl named",
    "smol": "What is the capital of France?",
}


@pytest.mark.parametrize("name", ["stories", "smol"])
@pytest.mark.parametrize("granularity", ["token", "word"])
def test_occlusion_matches_direct_forward(name, granularity, request):
    backend = request.getfixturevalue(name)
    text = PROMPTS[name]
    expl = explain(request_for(text, granularity=granularity, max_new_tokens=4), backend=backend)
    ids = build_input(parse_document(text), backend).ids
    positions = build_input(parse_document(text), backend).positions
    target = [t.token_id for t in expl.target.tokens]
    full = direct_target_logprob(backend.model, ids, target)
    assert expl.target.logprob == pytest.approx(full, abs=F32_NATS)
    for span in expl.spans:
        drop = {positions[i] for i in span.token_indices}
        ablated = [t for p, t in enumerate(ids) if p not in drop]
        expected = full - direct_target_logprob(backend.model, ablated, target)
        # each side a log-prob in another batch shape, within F32_NATS: the difference 2x
        assert span.score == pytest.approx(expected, abs=2 * F32_NATS), span.text
    assert expl.forward_passes >= 2
    assert expl.sequences_scored >= len(expl.spans) + 1


def test_given_target_is_scored_not_generated(stories):
    expl = explain(request_for("Once upon a time", target=" there was"), backend=stories)
    assert not expl.target.generated
    assert expl.target.text.strip() == "there was"
    assert len(expl.target.tokens) >= 2
    # the same float64 sum of the stored per-token log-probs: 1e-6 relative covers its order
    assert expl.target.logprob == pytest.approx(sum(t.logprob for t in expl.target.tokens))


def test_word_and_line_units_cover_their_tokens(stories):
    text = "Once upon a time,\nthere was a girl.\nShe liked cats."
    words = explain(request_for(text, granularity="word"), backend=stories)
    lines = explain(request_for(text, granularity="line"), backend=stories)
    assert [s.text for s in lines.spans] == [
        "Once upon a time,",
        "there was a girl.",
        "She liked cats.",
    ]
    assert "upon" in [s.text for s in words.spans]
    for expl in (words, lines):
        assert sorted(i for s in expl.spans for i in s.token_indices) == list(
            range(len(expl.tokens))
        )
        for s in expl.spans:
            assert s.text == text[s.start : s.end]
