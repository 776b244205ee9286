"""Checking a prompt's assertions on an explanation of it: each part's effect and share,
pass, fail or error, with its evidence in words (`nl/check_text.py`, in the given language)."""

from __future__ import annotations

from promptxray.explainers.checks.spec import (
    Assertion,
    CheckResult,
    CheckSpec,
    Evidence,
    Part,
    Status,
)
from promptxray.explainers.nl import NO_EFFECT_NATS, check_text
from promptxray.explainers.nl.figures import finite_score
from promptxray.explainers.nl.pairs_text import no_pair_test_detail, no_redundant_detail
from promptxray.explainers.types import Explanation


def part_effect(expl: Explanation, part: Part) -> tuple[float, float, int]:
    """(effect, share, spans): the sum of the scores of the spans overlapping the part, its
    |effect| over the total |score| of all spans, and how many spans overlap it."""
    total = sum(abs(finite_score(s.score)) for s in expl.spans)
    overlapping = [
        s for s in expl.spans if any(s.start < end and start < s.end for start, end in part.ranges)
    ]
    effect = sum(finite_score(s.score) for s in overlapping)
    share = abs(effect) / total if total > 0 else 0.0
    return effect, share, len(overlapping)


def evaluate(
    spec: CheckSpec, expl: Explanation, lang: str = "en", source: str | None = None
) -> list[CheckResult]:
    """Check every valid assertion of `spec` on `expl` (an explanation of the same text;
    `source`, the file's text, gives the evidence its line numbers)."""
    return [check(a, expl, spec.no_effect_threshold, lang, source) for a in spec.assertions]


def check(
    assertion: Assertion,
    expl: Explanation,
    threshold: float = NO_EFFECT_NATS,
    lang: str = "en",
    source: str | None = None,
) -> CheckResult:
    """One assertion on one explanation, with its evidence."""
    answer, prob = expl.target.text, expl.target.prob
    if assertion.kind == "answer_contains":
        evidence = Evidence(answer, prob)
        ok = str(assertion.value) in answer
        detail = check_text.contains_detail(evidence, str(assertion.value), ok, lang)
        return CheckResult(assertion, _status(ok), evidence, detail)
    if assertion.kind == "min_probability":
        evidence = Evidence(answer, prob)
        floor = float(assertion.value or 0.0)
        ok = prob >= floor
        detail = check_text.probability_detail(evidence, floor, ok, lang)
        return CheckResult(assertion, _status(ok), evidence, detail)
    if assertion.kind == "no_redundant":
        return _no_redundant(assertion, expl, lang, source)
    assert assertion.part is not None
    effect, share, count = part_effect(expl, assertion.part)
    evidence = Evidence(answer, prob, effect, share, count)
    if count == 0:
        detail = check_text.no_overlap_detail(assertion.part.label, lang)
        return CheckResult(assertion, "error", evidence, detail)
    if assertion.kind == "no_effect":
        if not expl.score_kind.in_nats:
            detail = check_text.needs_nats_detail(expl, evidence, lang)
            return CheckResult(assertion, "error", evidence, detail)
        ok = abs(effect) < threshold
        detail = check_text.no_effect_detail(expl, evidence, threshold, ok, lang)
        return CheckResult(assertion, _status(ok), evidence, detail)
    floor = assertion.share or 0.0
    ok = share >= floor
    detail = check_text.share_detail(expl, evidence, floor, ok, lang)
    return CheckResult(assertion, _status(ok), evidence, detail)


def _no_redundant(
    assertion: Assertion, expl: Explanation, lang: str, source: str | None
) -> CheckResult:
    """no_redundant: no redundant pair (interactions.py) whose joint removal costs at least
    the assertion's nats; an error where the explanation did not test pairs."""
    evidence = Evidence(expl.target.text, expl.target.prob)
    limit = float(assertion.value or 0.0)
    if expl.pair_test is None:
        return CheckResult(assertion, "error", evidence, no_pair_test_detail(expl, lang))
    over = [p for p in expl.pairs if p.kind == "redundant" and p.both >= limit]
    detail = no_redundant_detail(expl, over, limit, lang, source)
    return CheckResult(assertion, _status(not over), evidence, detail)


def _status(ok: bool) -> Status:
    return "pass" if ok else "fail"
