""" "Why not …?" in the chat, on the tiny real model: a reply explained again (on the ids it
was generated from) against one of the model's own alternatives or a typed one, what the page
then shows, the cache, clearing the foil, and every kind of bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from promptxray.chat_ui.conversation import clean
from promptxray.chat_ui.session import WHOLE, Session, sentence_choices
from promptxray.explainers import nl
from promptxray.explainers.alternatives import same_answer
from tests.chat_ui.util import explained, run
from tests.helpers import F32_NATS, direct_target_logprob


def _no_generation(*args, **kwargs):
    raise AssertionError("a why-not explanation must not generate the reply again")


def _logprob(backend, prompt_ids: list[int], ids: list[int]) -> float:
    return float(backend.target_logprobs([prompt_ids], ids, reference=prompt_ids)[0].sum())


def test_why_not_explains_the_reply_against_a_foil(handlers, stories_engine, monkeypatch):
    state, _ = explained(handlers)
    turn = state.turns[0]
    ids = list(turn.ids)
    backend = stories_engine.backend()
    # the choices: the model's own whole alternative answers, each with the probability an
    # independent forward gives its text, best first
    update = handlers.foils(None, state)
    options = turn.foil_options
    assert options and update["value"] is None
    texts = [f.text for f in options]
    probs = [
        math.exp(direct_target_logprob(backend.model, turn.prompt.ids, backend.encode_target(t)))
        for t in texts
    ]
    assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
    reply = clean(turn.reply)
    assert all(not same_answer(t, reply) and t.strip() for t in texts)
    labels = []  # each shown from the sentence where it departs from the reply, cut short
    for option, p in zip(options, probs, strict=True):
        start = option.sentence_start
        assert option.text[:start] == reply[:start]  # what is not shown is the reply's own
        shown = ("…" + option.text[start:]) if start else option.text
        labels.append(f'"{nl.short(shown, 60)}" (P={nl.format_prob(p)})')
    assert update["choices"] == list(zip(labels, texts, strict=True))
    foil = texts[0]

    monkeypatch.setattr(handlers.engine, "stream", _no_generation)
    monkeypatch.setattr(handlers.engine, "generate", _no_generation)
    out = run(handlers.why_not(None, "occlusion", WHOLE, foil, "", state))
    status, chunks, _sentence, report, footer, data, chat = out
    assert status == f"Explained reply 1, rather than “{foil}”.", status
    assert turn.foil == foil and turn.ids == ids
    expl = turn.shown_result.explanation
    assert expl.foil is not None
    assert [t.token_id for t in expl.target.tokens] == ids  # the very ids it was generated from
    # its base score: log P(reply) − log P(foil), each teacher-forced after the prompt
    reply_lp = _logprob(backend, turn.prompt.ids, ids)
    foil_lp = _logprob(backend, turn.prompt.ids, backend.encode_target(foil))
    # log-probs scored in the explanation's batches against alone: F32_NATS each
    assert expl.target.logprob == pytest.approx(reply_lp, abs=F32_NATS)
    assert expl.foil.logprob == pytest.approx(foil_lp, abs=F32_NATS)
    assert expl.contrast == pytest.approx(reply_lp - foil_lp, abs=2 * F32_NATS)
    assert data["explanation"]["foil"]["logprob"] == pytest.approx(foil_lp, abs=F32_NATS)
    # the bubble is the library's contrastive summary; title, footer and report say so too
    bubble = chat[-1]
    threshold = handlers.engine.no_effect_threshold
    assert bubble["content"] == nl.summary(expl, "en", threshold=threshold)
    assert "rather than" in bubble["content"]
    assert bubble["metadata"]["title"] == f"Explanation (occlusion, rather than “{foil}”)"
    assert f"the whole reply rather than “{foil}”" in footer
    assert "log P(" in report and "rather than" in report
    assert chunks and any(s for _, s in chunks)
    # the choices now show the foil as chosen
    assert handlers.foils(None, state)["value"] == foil


def test_the_foil_is_part_of_the_cache_key_and_stays_until_cleared(handlers):
    state, plain = explained(handlers)
    turn = state.turns[0]
    handlers.foils(None, state)
    first, second = [f.text for f in turn.foil_options[:2]]
    run(handlers.why_not(None, "occlusion", WHOLE, first, "", state))
    assert set(turn.explanations) == {("occlusion", None, None), ("occlusion", None, first)}
    # a typed alternative wins over the chosen one and is another explanation
    out = run(handlers.why_not(None, "occlusion", WHOLE, first, second, state))
    assert out[0] == f"Explained reply 1, rather than “{second}”."
    assert turn.foil == second and ("occlusion", None, second) in turn.explanations
    again = run(handlers.why_not(None, "occlusion", WHOLE, first, "", state))
    assert again[0] == f"Explanation, rather than “{first}” (cached)."
    assert turn.shown_result.explanation.foil.text.strip() == first.strip()
    # other methods and sentences are explained against the foil until it is cleared
    out = run(handlers.explain(None, "saliency", WHOLE, state))
    assert out[0] == f"Explained reply 1, rather than “{first}”."
    assert ("saliency", None, first) in turn.explanations
    sentence = sentence_choices(turn)[1]
    out = run(handlers.explain(None, "occlusion", sentence, state))
    assert "rather than" in out[0] and turn.shown[2] == first and turn.shown[1] is not None
    cleared = run(handlers.clear_foil(None, "occlusion", WHOLE, state))
    assert cleared[0] == "Explanation (cached)." and cleared[-1] == ""
    assert turn.foil is None and turn.shown_result.explanation.foil is None
    assert cleared[1:7] == plain[1:7]  # the plain explanation again, as it was
    assert handlers.foils(None, state)["value"] is None
    data = json.loads(Path(handlers.export_json(state)).read_text(encoding="utf-8"))
    foils = [e["foil"] for e in data["turns"][0]["explanations"]]
    assert foils.count(None) == 1 and foils.count(first) == 3 and foils.count(second) == 1


def test_bad_foils_say_why_in_the_status_line_and_change_nothing(handlers):
    empty = run(handlers.why_not(None, "occlusion", WHOLE, "a", "", Session()))
    assert empty[0].startswith("Nothing to ask about yet")
    state, _ = explained(handlers)
    turn = state.turns[0]
    shown = turn.shown
    for choice, text in ((None, ""), (None, "   "), ("", "")):
        out = run(handlers.why_not(None, "occlusion", WHOLE, choice, text, state))
        assert out[0].startswith("⚠️ No alternative to ask about"), out[0]
        assert all(o == {"__type__": "update"} for o in out[1:])
    out = run(handlers.why_not(None, "occlusion", WHOLE, None, turn.reply, state))
    assert out[0].startswith("⚠️ Cannot explain reply 1, rather than")
    assert "is the reply itself" in out[0]
    handlers.foils(None, state)
    foil = turn.foil_options[0].text
    out = run(handlers.why_not(None, "attention", WHOLE, foil, "", state))
    assert "⚠️" in out[0] and "'attention' cannot explain a foil" in out[0]
    assert "occlusion" in out[0] and "Clear why-not" in out[0]
    assert turn.foil is None and turn.shown == shown
    assert set(turn.explanations) == {shown}
    # with a foil chosen, switching to a method that cannot explain one says so …
    run(handlers.why_not(None, "occlusion", WHOLE, foil, "", state))
    out = run(handlers.explain(None, "attention", WHOLE, state))
    assert "cannot explain a foil" in out[0] and turn.foil == foil
    # … and clearing the foil explains with it
    out = run(handlers.clear_foil(None, "attention", WHOLE, state))
    assert out[0] == "Explained reply 1." and turn.foil is None
    assert turn.shown == ("attention", None, None)
    # the chat goes on
    run(handlers.chat("And then?", "", 8, 0.0, state))
    assert len(state.turns) == 2 and state.turns[1].reply
    out = run(handlers.explain(None, "occlusion", WHOLE, state))
    assert out[0] == "Explained reply 2."  # a new reply starts without a foil
    assert handlers.foils(None, state)["value"] is None


def test_no_choices_before_a_reply_is_explained(handlers):
    state = Session()
    assert handlers.foils(None, state)["choices"] == []
    run(handlers.chat("Once upon a time", "", 8, 0.0, state))
    assert handlers.foils(None, state)["choices"] == []
    assert state.turns[0].foil_options is None  # nothing computed yet
