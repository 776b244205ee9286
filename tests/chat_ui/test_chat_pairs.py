"""The chat says what leave-one-out cannot see: at granularity line, a message that states a
fact twice gets its reply explained with the two copies named redundant in the bubble under
the reply and in the full report (the library's words, nl/pairs_text.py)."""

from __future__ import annotations

from tests.explainers.test_interactions import TWICE


def test_the_bubble_names_two_copies_of_a_fact_as_redundant(smol, tmp_path):
    from promptxray.chat_ui import views
    from promptxray.chat_ui.engine import ChatEngine
    from promptxray.chat_ui.handlers import Handlers
    from promptxray.chat_ui.session import WHOLE, Session

    engine = ChatEngine(None, granularity="line")
    handlers = Handlers(engine, str(tmp_path))
    state = Session()
    for _ in handlers.chat(TWICE.strip(), "", 12, 0.0, state):
        pass
    assert "4721" in state.turns[-1].reply
    for _ in handlers.explain(None, "occlusion", WHOLE, state):
        pass
    result = state.turns[-1].shown_result
    assert result is not None
    redundant = [p for p in result.explanation.pairs if p.kind == "redundant"]
    assert redundant, result.explanation.pairs
    bubble = views.bubble(result, "en", engine.no_effect_threshold)["content"]
    assert "are redundant: either alone keeps the answer" in bubble
    assert "Redundant:" in views.report(result, "en", engine.no_effect_threshold)
