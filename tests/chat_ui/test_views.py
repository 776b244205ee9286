"""What the chat shows of an explanation, on the tiny real model: one short bubble under the
reply in the library's words (faithfulness stated once), the full report one click away, and
the no-effect threshold (`--no-effect-threshold`) and the language reaching every sentence."""

from __future__ import annotations

import pytest

from promptxray.chat_ui.views import markdown_lines
from promptxray.explainers import nl
from tests.chat_ui.util import explained

BUBBLE_MAX = 500


def test_bubble_is_the_library_summary_short_and_states_faithfulness_once(handlers):
    state, out = explained(handlers)
    chat = out[6]
    bubbles = [m for m in chat if m.get("metadata", {}).get("title", "").startswith("Explanation")]
    assert len(bubbles) == 1 and chat[-1] is bubbles[0]  # one message, right under the reply
    bubble = bubbles[0]
    expl = state.turns[0].shown_result.explanation
    assert bubble["content"] == nl.summary(
        expl, "en", threshold=handlers.engine.no_effect_threshold
    )
    assert len(bubble["content"]) < BUBBLE_MAX
    assert bubble["content"].count("Faithfulness") == 1
    assert bubble["metadata"]["title"] == "Explanation (occlusion)"
    assert bubble["metadata"]["duration"] > 0
    # the footer line states no finding; the full report (collapsed) has the figures
    _status, _chunks, _sentence, report, footer, _data, _chat = out
    assert "Faithfulness" not in footer and "occlusion" in footer
    assert report.count("Faithfulness") == 1 and len(report) > len(bubble["content"])
    assert report == markdown_lines(
        nl.describe(expl, "en", threshold=handlers.engine.no_effect_threshold)
    )


def test_threshold_reaches_the_bubble(handlers, monkeypatch):
    monkeypatch.setattr(handlers.engine, "no_effect_threshold", 1e9)
    state, out = explained(handlers)
    expl = state.turns[0].shown_result.explanation
    n = len(expl.spans)
    assert f"{n} of {n} tokens have no measurable effect" in out[6][-1]["content"]
    assert out[6][-1]["content"] == nl.summary(expl, "en", threshold=1e9)


def test_threshold_option_of_the_command():
    from promptxray.chat_ui.__main__ import parser

    assert parser().parse_args([]).no_effect_threshold == nl.NO_EFFECT_NATS
    assert parser().parse_args(["--no-effect-threshold", "0.2"]).no_effect_threshold == 0.2
    for bad in ("-1", "nan", "x"):
        with pytest.raises(SystemExit):
            parser().parse_args(["--no-effect-threshold", bad])


def test_language_choice_says_the_bubble_and_report_again(handlers):
    state, out = explained(handlers)
    state, chat, report = handlers.set_language("zh", None, state)
    expl = state.turns[0].shown_result.explanation
    assert chat[-1]["content"] == nl.summary(
        expl, "zh", threshold=handlers.engine.no_effect_threshold
    )
    assert chat[-1]["content"] != out[6][-1]["content"]
    assert "忠实度" in report


def test_self_explanation_is_kept_on_the_explanation_and_in_the_report(handlers):
    state, _ = explained(handlers)
    answer = handlers.why(None, state)
    result = state.turns[0].shown_result
    found = result.explanation.self_explanation
    assert found is not None
    assert answer == markdown_lines(nl.describe_self_explanation(found, "en"))
    report = handlers._show(state, 0, result, "")[3]
    assert answer in report  # the full report includes the model's own account


def test_anytime_stages_show_while_the_final_explanation_runs(tmp_path):
    """With granularity auto, the chat shows the exact blocks and the exact lines before the
    final explanation, each saying which stage it is (the library's stage note); only the
    final one becomes the bubble."""
    from promptxray.chat_ui.engine import ChatEngine
    from promptxray.chat_ui.handlers import Handlers
    from promptxray.chat_ui.session import WHOLE, Session
    from tests.conftest import STORIES

    engine = ChatEngine(str(STORIES), granularity="auto")
    handlers = Handlers(engine, str(tmp_path))
    state = Session()
    for _ in handlers.chat(
        "Once upon a time there was a girl.\nShe had a dog.", "", 12, 0.0, state
    ):
        pass
    outputs = list(handlers.explain(None, "occlusion", WHOLE, state))
    statuses = [out[0] for out in outputs]
    blocks = [i for i, s in enumerate(statuses) if "Exact effect of each of the prompt's" in s]
    lines = [i for i, s in enumerate(statuses) if "Exact line effects after" in s]
    assert blocks and lines and blocks[0] < lines[0] < len(outputs) - 1, statuses
    assert statuses[-1].startswith("Explained")
    final = state.turns[-1].shown_result
    assert final is not None and final.explanation.stage is not None
    assert final.explanation.stage.final and final.explanation.granularity == "auto"
