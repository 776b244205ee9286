"""The explanation of a reply runs on the very ids the reply was generated from: the
conversation is written and tokenised once per message, and reusing those ids gives the
explanation a fresh parse of the same conversation gives."""

from __future__ import annotations

import pytest

from promptxray.chat_ui.conversation import CHAT_PATH
from promptxray.chat_ui.engine import GenSettings
from promptxray.chat_ui.session import WHOLE
from promptxray.explainers.explain import explain
from promptxray.explainers.types import ExplainRequest
from tests.chat_ui.util import explained, run
from tests.helpers import F32_NATS


def test_explanation_reuses_the_generation_input(handlers, monkeypatch):
    """One tokenisation per message: the ids the reply was generated from are the ids the
    explanations run on, for every method explained after it."""
    import promptxray.chat_ui.conversation as conversation
    import promptxray.explainers.anytime as stages
    import promptxray.explainers.explain as library

    calls: list[str] = []
    real_build = library.build_input

    def counting(doc, backend, *args, **kwargs):
        calls.append(doc.source)
        return real_build(doc, backend, *args, **kwargs)

    seen = []
    real_explain = library.explain

    def spying(request, backend=None, progress=None, model_input=None):
        seen.append(model_input)
        return real_explain(request, backend, progress, model_input=model_input)

    monkeypatch.setattr(conversation, "build_input", counting)
    monkeypatch.setattr(library, "build_input", counting)
    monkeypatch.setattr(stages, "explain", spying)  # the front ends' stage loop calls it
    state, _ = explained(handlers)
    turn = state.turns[0]
    first = turn.shown_result.explanation
    scores = [t.score for t in first.tokens]
    run(handlers.explain(None, "saliency", WHOLE, state))
    assert len(calls) == 1, "the conversation was tokenised more than once for one message"
    assert len(seen) == 2 and all(mi is not None for mi in seen)
    assert all(mi.ids is turn.prompt.ids for mi in seen)  # the generation's own ids
    # each explanation keeps its own token scores (the input's tokens are not shared)
    assert [t.score for t in first.tokens] == scores
    assert [t.token_id for t in first.tokens] == [
        t.token_id for t in turn.prompt.model_input.tokens
    ]


def test_reused_ids_explain_like_a_fresh_parse(stories_engine):
    prompt, event = stories_engine.generate([], "Once upon a time", GenSettings(24))
    reused = stories_engine.explain(prompt, event.text, event.ids).explanation
    request = ExplainRequest(text=prompt.conversation.text, path=CHAT_PATH, target_ids=event.ids)
    fresh = explain(request, backend=stories_engine.backend())
    assert [(s.start, s.end) for s in reused.spans] == [(s.start, s.end) for s in fresh.spans]
    # two explanations' float32 forwards, maybe batched apart: removal scores are two
    # log-probs, each within F32_NATS
    assert [s.score for s in reused.spans] == pytest.approx(
        [s.score for s in fresh.spans], abs=2 * F32_NATS
    )
    assert reused.target.logprob == pytest.approx(fresh.target.logprob, abs=F32_NATS)
