"""The plain-language summary states exactly the Explanation's numbers, in English and Chinese,
and the model's self-explanation is checked against the attributions as an independent check
here would."""

from __future__ import annotations

import math
import re
import string

import pytest

from promptxray.explainers import nl
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.nl import format_prob
from promptxray.explainers.nl.front_text import FRONT_TEMPLATES
from promptxray.explainers.types import Explanation, Span, Target, TargetToken
from tests.helpers import request_for

FRANCE = "What is the capital of France?"
HAND_PROMPT = "alpha beta gamma delta eps zeta"
NUMBER = re.compile(r"[+-]?\d+\.\d+(?:e[+-]\d+)?")
CJK = re.compile(r"[\u4e00-\u9fff]")
FAITH_KEYS = ("comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc")


def hand_made(
    method: str = "occlusion",
    scores: tuple[float, ...] = (2.0, -1.0, 0.5, 0.01, 0.0, 1.5),
    metrics: dict[str, float] | None = None,
) -> Explanation:
    """An Explanation over HAND_PROMPT's six words with known scores and figures."""
    spans: list[Span] = []
    for m, score in zip(re.finditer(r"\S+", HAND_PROMPT), scores, strict=True):
        spans.append(Span(m.group(), m.start(), m.end(), score, [len(spans)]))
    if metrics is None:
        metrics = {
            "comprehensiveness": 0.1234,
            "sufficiency": -0.0456,
            "deletion_auc": 0.0123,
            "insertion_auc": 0.4567,
            "my_new_figure": 3.14159,
            "shapley_samples": 10.0,  # bookkeeping: not stated
        }
    return Explanation(
        method=method,
        backend="torch",
        model="hand",
        granularity="word",
        target=Target(" omega", [TargetToken(" omega", 7, -0.75)], -0.75, True),
        tokens=[],
        spans=spans,
        input_tokens=6,
        context_length=512,
        wall_time_s=0.0,
        forward_passes=0,
        sequences_scored=0,
        metrics=metrics,
    )


@pytest.fixture(scope="module")
def france(smol) -> Explanation:
    from promptxray.explainers.explain import explain

    return explain(request_for(FRANCE, method="occlusion", granularity="word"), backend=smol)


def line(text: str, start: str) -> str:
    """The one line of `text` that starts with `start`."""
    (found,) = [ln for ln in text.splitlines() if ln.startswith(start)]
    return found


NATS = 0.05  # the default "no measurable effect" threshold, written out independently


def expected_drivers(expl: Explanation, top: int = 3) -> list[Span]:
    """Independently: the largest positive scores of at least 0.05 nats."""
    spans = [s for s in expl.spans if s.score >= NATS]
    return sorted(spans, key=lambda s: -s.score)[:top]


def expected_against(expl: Explanation, top: int = 3) -> list[Span]:
    spans = [s for s in expl.spans if -s.score >= NATS]
    return sorted(spans, key=lambda s: s.score)[:top]


def expected_figures(expl: Explanation) -> list[str]:
    """The faithfulness figures present, formatted as the text must show them: each
    probability figure, and comprehensiveness and sufficiency each followed by its
    log-probability figure (in the same phrase)."""
    figures = []
    for k in (k for k in FAITH_KEYS if k in expl.metrics):
        figures.append(format_prob(abs(expl.metrics[k])))
        if f"{k}_logprob" in expl.metrics:
            figures.append(nl.format_value(abs(expl.metrics[f"{k}_logprob"])))
    return figures


def check_numbers(expl: Explanation, text: str) -> None:
    """Every number of the English text is the Explanation's own, in order."""
    first = line(text, "The model's answer")
    assert f"probability {format_prob(expl.target.prob)} " in first
    assert NUMBER.findall(first)[-1] == nl.format_value(expl.target.logprob)
    drivers = expected_drivers(expl)
    drivers_line = line(text, "Top drivers:")
    assert NUMBER.findall(drivers_line) == [nl.format_value(s.score) for s in drivers]
    positions = [drivers_line.index(f'"{s.text}"') for s in drivers]
    assert positions == sorted(positions), "top drivers are named in order"
    against = expected_against(expl)
    if against:
        against_line = line(text, "Pushing against the answer:")
        assert NUMBER.findall(against_line) == [nl.format_value(-s.score) for s in against]
        assert "raises" in against_line
    faith = line(text, "Faithfulness:") if expected_figures(expl) else ""
    assert NUMBER.findall(faith)[: len(expected_figures(expl))] == expected_figures(expl)


# --- the template ---------------------------------------------------------------------------
def test_hand_made_numbers_and_names():
    expl = hand_made()
    text = nl.describe(expl)
    check_numbers(expl, text)
    drivers = line(text, "Top drivers:")
    assert drivers.startswith(
        'Top drivers: removing "alpha" lowers the answer\'s log-probability by 2.000; '
        'removing "zeta" lowers it by 1.500; removing "gamma" lowers it by 0.500.'
    )
    assert line(text, "Pushing against").endswith(
        'removing "beta" raises the answer\'s log-probability by 1.000.'
    )
    no_effect = line(text, "No measurable effect")
    assert "2 of 6 parts" in no_effect and '"delta"' in no_effect and '"eps"' in no_effect
    faith = line(text, "Faithfulness:")
    assert NUMBER.findall(faith) == ["0.12", "0.05", "0.01", "0.46", "3.142"]
    assert "lowers the answer's probability by 0.12" in faith  # comprehensiveness > 0
    assert "raises the answer's probability by 0.05" in faith  # sufficiency < 0
    assert "my_new_figure = 3.142" in faith and "shapley_samples" not in text


def test_log_probability_figures_say_their_own_direction():
    metrics = {"comprehensiveness": 0.1, "comprehensiveness_logprob": -0.2}
    faith = line(nl.describe(hand_made(metrics=metrics)), "Faithfulness:")
    assert "lowers the answer's probability by 0.10" in faith
    assert "but raises its log-probability by 0.200 nats" in faith
    alone = {"comprehensiveness_logprob": 0.7, "sufficiency_logprob": -0.3}  # as with a foil
    faith = line(nl.describe(hand_made(metrics=alone)), "Faithfulness:")
    assert (
        "removing the top-ranked parts of the prompt lowers the answer's log-probability by 0.700"
        in faith
    )
    assert "keeping only them raises the answer's log-probability by 0.300" in faith


def test_facts_are_the_explanations_numbers():
    expl = hand_made()
    facts = nl.describe_facts(expl, top=2)
    assert [d["text"] for d in facts["drivers"]] == ["alpha", "zeta"]
    assert [d["score"] for d in facts["drivers"]] == [2.0, 1.5]
    assert [d["text"] for d in facts["against"]] == ["beta"]
    assert facts["no_effect"]["count"] == 2 and facts["no_effect"]["threshold"] == NATS
    assert facts["target_prob"] == expl.target.prob
    assert facts["metrics"]["comprehensiveness"] == 0.1234
    assert "shapley_samples" not in facts["metrics"]
    text = nl.describe(expl, top=2)
    assert line(text, "Top drivers:").count("removing") == 2
    assert line(text, "Pushing against").count("removing") == 1


def test_france_numbers(france):
    text = nl.describe(france)
    check_numbers(france, text)
    faith = line(text, "Faithfulness:")  # each figure named once, the fractions too
    assert france.faithfulness is not None
    assert faith.count("/".join(france.faithfulness.bins)) == 1
    assert faith.count("comprehensiveness") == faith.count("sufficiency") == 1
    facts = nl.describe_facts(france)
    assert [d["score"] for d in facts["drivers"]] == [s.score for s in expected_drivers(france)]
    quiet = [s for s in france.spans if abs(s.score) < NATS]
    if quiet:
        assert f"{len(quiet)} of {len(france.spans)} parts" in text
        assert f'"{quiet[0].text}"' in line(text, "No measurable effect")
    else:
        assert f"Every part has a measurable effect ({len(france.spans)} parts)" in text


def test_chinese_has_the_same_numbers(france):
    for expl in (hand_made(), france):
        en, zh = nl.describe(expl, "en"), nl.describe(expl, lang="zh")
        assert NUMBER.findall(zh) == NUMBER.findall(en)
        assert len(CJK.findall(zh)) > 20 and not CJK.findall(en)
        assert "主要驱动" in zh and "对数概率" in zh
    zh = nl.describe(hand_made(), "zh")
    assert "“delta”" in zh and "6 个部分中有 2 个" in zh


def test_deterministic(france):
    assert nl.describe(france) == nl.describe(france)
    assert nl.describe(Explanation.from_json(france.to_json()), "zh") == nl.describe(france, "zh")


def test_unknown_language_is_a_clear_error():
    with pytest.raises(InvalidRequestError, match=r"'fr'.*en, zh"):
        nl.describe(hand_made(), lang="fr")
    with pytest.raises(InvalidRequestError, match="supported languages"):
        nl.describe_self_explanation(nl.SelfExplanation("q", "a", [], True, 3, []), "de")


def test_templates_are_parallel():
    """Every language has every template, with the same placeholders."""
    assert set(nl.TEMPLATES) == set(nl.LANGUAGES)

    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    for tables in (nl.TEMPLATES, FRONT_TEMPLATES):
        en = tables["en"]
        for lang in nl.LANGUAGES:
            table = tables[lang]
            assert set(table) == set(en), lang
            for key, template in table.items():
                assert fields(template) == fields(en[key]), (lang, key)


def test_gradient_methods_claim_no_removal_effect():
    text = nl.describe(hand_made(method="integrated_gradients"))
    drivers = line(text, "Top drivers:")
    assert "removing" not in drivers
    assert drivers.startswith('Top drivers: "alpha" score +2.000 (integrated_gradients);')
    assert "not the measured effect of removing" in text
    assert '"beta" score -1.000' in line(text, "Pushing against")
    unsigned = nl.describe(hand_made(method="saliency", scores=(2, 1, 0.5, 0.01, 0, 1.5)))
    assert "unsigned" in unsigned and "Highest scores:" in unsigned


def test_all_zero_and_no_figures():
    text = nl.describe(hand_made(scores=(0.0,) * 6, metrics={}))
    assert "Every score is zero" in text
    assert "No faithfulness figures were computed" in text
    assert "此解释未计算忠实度指标" in nl.describe(hand_made(metrics={}), "zh")


def test_format_value():
    assert nl.format_value(3.14159) == "3.142"
    assert nl.format_value(-0.5) == "-0.500"
    assert nl.format_value(2e-5) == "2.00e-05"
    assert nl.format_signed(0.25) == "+0.250" and nl.format_signed(-0.25) == "-0.250"


# --- the self-explanation -------------------------------------------------------------------
def words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def independently_supported(claim: str, expl: Explanation, prompt: str) -> bool | None:
    """None when the claim's words are not a run of the prompt's words, else whether one of
    the top-k positive spans (word granularity: one word each) is among the claim's words."""
    c, p = words(claim), words(prompt)
    if not c or not any(p[i : i + len(c)] == c for i in range(len(p))):
        return None
    k = max(3, math.ceil(0.2 * len(expl.spans)))
    top = sorted((s for s in expl.spans if s.score > 0), key=lambda s: -s.score)[:k]
    return any(s.text.lower() in c for s in top)


def check_self_explanation(se: nl.SelfExplanation, expl: Explanation, prompt: str) -> None:
    for claim in se.claims:
        expected = independently_supported(claim.text, expl, prompt)
        if expected is None:
            assert claim.status == "not_in_prompt" and not claim.supported
        else:
            assert claim.supported == expected, claim
            assert claim.status == ("supported" if expected else "not_supported")
    text = nl.describe_self_explanation(se)
    for claim in se.claims:
        assert f'"{claim.text}"' in text


def test_self_explain_chat_model(smol, france):
    se = nl.self_explain(smol, france, FRANCE)
    assert se.chat and se.answer and se.claims
    assert se.top_k == 3 and len(se.drivers) <= 3
    check_self_explanation(se, france, FRANCE)
    assert nl.self_explain(smol, france, FRANCE) == se  # greedy: the same every time
    zh = nl.describe_self_explanation(se, "zh")
    assert CJK.search(zh) and all(f"“{c.text}”" in zh for c in se.claims)


def test_self_explain_without_chat_template(stories):
    from promptxray.explainers.explain import explain

    prompt = "Once upon a time there was a little girl"
    expl = explain(request_for(prompt, method="occlusion", granularity="word"), backend=stories)
    se = nl.self_explain(stories, expl, prompt, max_new_tokens=24)
    assert not se.chat and isinstance(se.answer, str)
    check_self_explanation(se, expl, prompt)
    assert nl.describe_self_explanation(se).startswith("Asked which words")


def test_claims_checked_against_hand_made():
    expl = hand_made()  # top 3 by positive score: alpha, zeta, gamma
    named = nl.extract_named("I used \"Alpha\", “delta”, 'omega' and `a` (don't ask)", "")
    assert named == ["Alpha", "delta", "omega", "a"]
    claims = {c.text: c for c in nl.check_claims(named, expl, HAND_PROMPT)}
    assert claims["Alpha"].supported and claims["Alpha"].matched == ["alpha"]
    assert claims["delta"].status == "not_supported" and claims["delta"].score == 0.01
    assert claims["omega"].status == "not_in_prompt"
    assert claims["a"].status == "not_in_prompt"  # not found inside "alpha" or "gamma"
    # no quotes: the words of the answer that are words of the prompt
    assert nl.extract_named("Zeta and beta, and ALPHA again alpha", HAND_PROMPT) == [
        "Zeta",
        "beta",
        "ALPHA",
    ]
    # scripts without spaces match inside longer text
    assert nl.check_claims(["法国"], expl, "法国的首都")[0].status == "not_supported"


def test_what_if_paragraph_in_both_languages():
    from promptxray.explainers.nl.front_text import what_if_action, what_if_text

    en = what_if_text(what_if_action("big", ""), "a dog", "It ran.", False, -1.0, -2.0)
    assert en.startswith("**What if** (removing 'big'): the edited message is “a dog”.")
    assert "The model now gives a different reply: “It ran.”." in en
    assert "went from 0.37 to 0.14 (log P -1.00 → -2.00)." in en  # e^-1, e^-2
    action = what_if_action("big", "small", "zh")
    zh = what_if_text(action, "a dog", "It ran.", True, -1.0, -2.0, "zh")
    assert "把 'big' 换成 'small'" in zh and "相同的回复" in zh and "0.37" in zh and "0.14" in zh
