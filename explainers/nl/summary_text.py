"""The short sentences promptxray says about an explanation: one line about one span (hover,
diagnostic, inlay hint), the hint on a part with no measurable effect, and the summary of the
whole prompt (drivers, parts against, the no-effect count, one faithfulness verdict in words).
`describe.py` has the full report, `stage_text.py` the words about an early anytime stage and
`redundancy_text.py` those about redundant parts.

The wording follows the method's score kind (`ScoreKind`: a measured removal effect, a signed
estimate, an unsigned salience or an activation), and "no measurable effect" has one rule,
`no_effect`, governed by one threshold in nats that every front end passes through. Nothing is
said that the numbers do not show; front ends compose no sentences of their own.
"""

from __future__ import annotations

import math

from promptxray.explainers.details import ScoreKind
from promptxray.explainers.nl.figures import finite_score, format_prob, format_value
from promptxray.explainers.nl.pairs_text import (
    conflict_note,
    overlaps_redundant,
    pair_summary,
    redundant_effect,
)
from promptxray.explainers.nl.remote_text import remote_line, remote_span_effect
from promptxray.explainers.nl.stage_text import stage_tag, stage_unit, stage_units
from promptxray.explainers.nl.tables import quote_short, templates
from promptxray.explainers.types import Explanation

NO_EFFECT_NATS = 0.05  # |Δ log P| under this (nats): "no measurable effect" (one rule)
GOOD_MARGIN_NATS = 1.0  # comprehensiveness − sufficiency (log P) at which the verdict is "good"


def no_effect(expl: Explanation, threshold: float = NO_EFFECT_NATS) -> list[int]:
    """Indices of the spans with no measurable effect: |score| under `threshold` nats, for
    scores measured in nats (removal effects and signed estimates), and in no redundant part
    (`Explanation.pairs`: alone it costs little because another part says the same, but
    removing both costs the answer). Unsigned saliences and activations have no unit of
    effect, so they never claim that a part has none."""
    if not expl.score_kind.in_nats:
        return []
    bounds = {p.index for p in expl.remote.parts} if expl.remote is not None else set()
    return [
        i
        for i, s in enumerate(expl.spans)
        if abs(finite_score(s.score)) < threshold
        and not overlaps_redundant(expl, i)
        and i not in bounds  # a lower bound on the drop says nothing about "no effect"
    ]


def _units(t: dict[str, str], expl: Explanation, lang: str) -> str:
    return stage_units(expl, lang) or t.get(f"units_{expl.granularity}", t["units_auto"])


# --- one span ----------------------------------------------------------------------------------


def span_line(
    expl: Explanation,
    index: int,
    lang: str = "en",
    threshold: float = NO_EFFECT_NATS,
    source: str | None = None,
) -> str:
    """One line about span `index`, after an early stage's tag: its rank and its effect in the
    method's own terms (for a removal, the answer's probability with and without it; for a
    part in a redundant pair, the pair's figures; a part in conflict names the other).
    `source`, the file's text when the caller has it, gives the other part its line number."""
    effect = _span_effect(expl, index, lang, threshold, source)
    return stage_tag(expl, lang) + effect + conflict_note(expl, index, lang, source)


def _span_effect(
    expl: Explanation, index: int, lang: str, threshold: float, source: str | None
) -> str:
    t = templates(lang)
    span = expl.spans[index]
    value = finite_score(span.score)
    unit = stage_unit(expl) or expl.unit_of(index)
    total = len(expl.spans)
    rank = t["rank"].format(rank=expl.rank_of(index), total=total, units=_units(t, expl, lang))
    target = quote_short(t, expl.target.text)
    kind = expl.score_kind
    remote = remote_span_effect(expl, index, rank, unit, lang)
    if remote is not None:  # a server's bound or sampled estimate: said as what it is
        return remote
    redundant = redundant_effect(expl, index, rank, lang, source) if kind.in_nats else None
    if redundant is not None:  # little alone, but not "no effect": another says the same
        return redundant
    if kind.in_nats and abs(value) < threshold:
        return t["span_no_effect"].format(
            rank=rank, value=format_value(abs(value)), threshold=format_value(threshold)
        )
    way = t["raises"] if value > 0 else t["lowers"]
    if expl.foil is not None and kind.in_nats:  # about log P(target) − log P(foil)
        key = "span_removal_contrast" if kind is ScoreKind.REMOVAL else "span_estimate_contrast"
        return t[key].format(
            rank=rank,
            method=expl.method,
            unit=unit,
            way=way,
            target=target,
            foil=quote_short(t, expl.foil.text),
            value=format_value(abs(value)),
        )
    if kind is ScoreKind.REMOVAL:
        after = expl.ablated_prob(index)
        if after is not None:
            return t["span_removal"].format(
                rank=rank,
                target=target,
                before=format_prob(expl.target.prob),
                after=format_prob(after),
                unit=unit,
            )
        removing = t["lowers"] if value > 0 else t["raises"]  # a positive drop lowers it
        return t["span_removal_raw"].format(
            rank=rank, unit=unit, way=removing, target=target, value=format_value(abs(value))
        )
    if kind is ScoreKind.ESTIMATE:
        return t["span_estimate"].format(
            rank=rank,
            method=expl.method,
            unit=unit,
            way=way,
            target=target,
            value=format_value(abs(value)),
        )
    if kind is ScoreKind.SALIENCE:
        return t["span_salience"].format(rank=rank, method=expl.method, value=format_value(value))
    return t["span_activation"].format(rank=rank, value=format_value(value))


def no_effect_line(
    expl: Explanation, index: int, lang: str = "en", threshold: float = NO_EFFECT_NATS
) -> str:
    """The hint on a part with no measurable effect: its |effect| and the tokens removing it
    saves (the editor shows it faded, as unnecessary code)."""
    span = expl.spans[index]
    return templates(lang)["hint_no_effect"].format(
        value=format_value(abs(finite_score(span.score))),
        threshold=format_value(threshold),
        n=len(span.token_indices),
    )


# --- the whole prompt, short ------------------------------------------------------------------


def verdict(expl: Explanation, lang: str = "en") -> str:
    """One faithfulness verdict in words, from ERASER comprehensiveness and sufficiency in
    log-probability: good when removing the top-ranked parts costs the answer at least
    GOOD_MARGIN_NATS more than keeping only them, fair when it costs more, weak otherwise."""
    t = templates(lang)
    comp = expl.metrics.get("comprehensiveness_logprob")
    suff = expl.metrics.get("sufficiency_logprob")
    if comp is None or suff is None or not (math.isfinite(comp) and math.isfinite(suff)):
        return t["verdict_none"]
    margin = comp - suff
    kind = "good" if margin >= GOOD_MARGIN_NATS else "fair" if margin > 0 else "weak"
    return t[f"verdict_{kind}"].format(comp=f"{comp:.2f}", suff=f"{suff:.2f}")


def summary(
    expl: Explanation, lang: str = "en", threshold: float = NO_EFFECT_NATS, top: int = 3
) -> str:
    """Two or three sentences: what drove the answer, what pushed against it, how many parts
    had no measurable effect, the strongest redundant or conflicting pair, and the
    faithfulness verdict."""
    t = templates(lang)
    quiet = set(no_effect(expl, threshold))
    said = [  # (score, span) of the parts with an effect
        (finite_score(s.score), s)
        for i, s in enumerate(expl.spans)
        if i not in quiet and finite_score(s.score) != 0 and s.text.strip()
    ]
    head = t["sum_target"].format(
        target=quote_short(t, expl.target.text), prob=format_prob(expl.target.prob)
    )
    info = expl.remote
    if expl.score_kind is ScoreKind.AGREEMENT and info is not None:  # no probability known
        head = t["sum_target_sampled"].format(
            target=quote_short(t, expl.target.text),
            low=format_value(info.base_low or 0.0),
            high=format_value(info.base_high or 1.0),
        )
    if expl.foil is not None:  # why the target rather than the foil
        head = t["sum_contrast"].format(
            target=quote_short(t, expl.target.text),
            prob=format_prob(expl.target.prob),
            foil=quote_short(t, expl.foil.text),
            foil_prob=format_prob(expl.foil.prob),
        )
    sep = t["list_sep"]
    if expl.score_kind is ScoreKind.SALIENCE:  # no direction: the largest magnitudes
        ranked = sorted(said, key=lambda p: (-abs(p[0]), p[1].start))[:top]
        items = sep.join(quote_short(t, s.text) for _, s in ranked)
        text = t["sum_salient"].format(head=head, items=items, method=expl.method)
    else:
        pos = sorted((p for p in said if p[0] > 0), key=lambda p: -p[0])[:top]
        neg = sorted((p for p in said if p[0] < 0), key=lambda p: p[0])[:top]
        if pos:
            items = sep.join(quote_short(t, s.text) for _, s in pos)
            text = t["sum_drivers"].format(head=head, items=items)
        else:
            text = t["sum_no_drivers"].format(head=head)
        if neg:
            key = "sum_against" if len(neg) == 1 else "sum_against_many"
            text += t[key].format(items=sep.join(quote_short(t, s.text) for _, s in neg))
    text += t["sum_end"]
    if quiet:
        text += t["sentence_gap"] + t["sum_no_effect"].format(
            count=len(quiet), total=len(expl.spans), units=_units(t, expl, lang)
        )
    pairs = pair_summary(expl, lang)
    if pairs:  # what leave-one-out cannot see: parts that say the same, or pull apart
        text += t["sentence_gap"] + pairs
    if expl.score_kind.about_answer:
        text += t["sentence_gap"] + verdict(expl, lang)
    source = remote_line(expl, lang)
    if source:  # which model answered, where, and what kind of figures these are
        text += t["sentence_gap"] + source
    note = answer_note(expl, lang, brief=True)
    if note:  # a quantized model may answer differently from fp32: say it first
        text = note + t["sentence_gap"] + text
    if expl.degraded:  # the method could not run as asked: say so before anything else
        text = t["degraded"].format(reason=expl.degraded) + t["sentence_gap"] + text
    return text.strip()


def answer_note(expl: Explanation, lang: str = "en", brief: bool = False) -> str | None:
    """What `expl.answer_check` found about a quantized model's answer: fp32's answer when it
    was run and differs; else, when some answer token's margin lies within the export's
    measured error, that fp32 may answer differently; else (not `brief`) the export's record."""
    check = expl.answer_check
    if check is None:
        return None
    t = templates(lang)
    record = t["answer_record"].format(
        quant=check.quantization, same=check.same_answer, prompts=check.prompts
    )
    if check.reference is not None:
        return t["answer_differs"].format(
            quant=check.quantization, text=quote_short(t, check.reference.text), record=record
        )
    if check.checked:  # fp32 ran and gave the same answer
        return None if brief else t["answer_checked"].format(record=record)
    if check.may_differ:
        return t["answer_may_differ"].format(
            quant=check.quantization,
            token=quote_short(t, check.closest_token),
            prob=format_prob(check.closest_prob),
            record=record,
        )
    if brief:
        return None
    return t["answer_steady"].format(record=record)
