"""Every sentence promptxray says about an explanation, at three lengths:

- `span_line`: one line about one span (hover, diagnostic, inlay hint);
- `summary`: two or three sentences about the whole prompt (what drove the answer, what pushed
  against it, what had no measurable effect) and one faithfulness verdict in words;
- `describe`: the full report (terminal, HTML, exports).

The wording follows the method's score kind (a measured removal effect, a signed estimate or
an unsigned salience), and "no measurable effect" has one rule, `no_effect`, governed by one
threshold in nats that every front end passes through. Nothing is said that the numbers do not
show; front ends compose no sentences of their own.
"""

from __future__ import annotations

import math
from typing import Any

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.nl.figures import (
    FIGURES,
    format_metric,
    format_signed,
    format_value,
    stated_metrics,
)
from promptxray.explainers.nl.templates import LANGUAGES, TEMPLATES
from promptxray.explainers.render import format_prob
from promptxray.explainers.types import Explanation, Span

NO_EFFECT_NATS = 0.05  # |Δ log P| under this (nats): "no measurable effect" (one rule)
MAX_NO_EFFECT_NAMED = 3
GOOD_MARGIN_NATS = 1.0  # comprehensiveness − sufficiency (log P) at which the verdict is "good"
# score kinds measured in nats of the answer's log-probability (the no-effect rule applies)
IN_NATS = ("removal", "estimate")


def templates(lang: str) -> dict[str, str]:
    """The template table of `lang`; an unknown language is a request error naming the known."""
    table = TEMPLATES.get(lang)
    if table is None:
        raise InvalidRequestError(
            f"unknown language {lang!r}; supported languages: {', '.join(LANGUAGES)}"
        )
    return table


def score(span: Span) -> float:
    """A span's score as a finite float (None, NaN and inf count as 0), as the renderers do."""
    s = span.score
    return float(s) if s is not None and math.isfinite(s) else 0.0


def no_effect(expl: Explanation, threshold: float = NO_EFFECT_NATS) -> list[int]:
    """Indices of the spans with no measurable effect: |score| under `threshold` nats, for
    scores measured in nats (removal effects and signed estimates). Unsigned saliences and
    activations have no unit of effect, so they never claim that a part has none."""
    if expl.score_kind not in IN_NATS:
        return []
    return [i for i, s in enumerate(expl.spans) if abs(score(s)) < threshold]


def _quote(t: dict[str, str], text: str) -> str:
    return t["quote"].format(text=text)


REPORT_QUOTE = 80  # the longest quote of a part in the full report (the hover's: 40)


def _brief(t: dict[str, str], text: str, limit: int = 40) -> str:
    """A span quoted for a short view: white space folded, long text cut with an ellipsis."""
    text = " ".join(text.split()) or text
    return _quote(t, text if len(text) <= limit else text[: limit - 1] + "…")


def _units(t: dict[str, str], expl: Explanation) -> str:
    return t.get(f"units_{expl.granularity}", t["units_auto"])


# --- one span ----------------------------------------------------------------------------------


def stage_tag(expl: Explanation, lang: str = "en") -> str:
    """ "[preview 1/3] " on an early stage of an anytime explanation; "" on a final result."""
    stage = expl.stage
    if stage is None or stage.final:
        return ""
    t = templates(lang)
    name = t.get(f"stage_{stage.name}", stage.name)
    return t["stage_tag"].format(name=name, index=stage.index, total=stage.total)


def stage_note(expl: Explanation, lang: str = "en") -> str:
    """One sentence on what an early stage shows and what is still running ("" when final)."""
    stage = expl.stage
    if stage is None or stage.final:
        return ""
    template = templates(lang).get(f"stage_note_{stage.name}")
    return template.format(seconds=f"{stage.seconds:.1f}") if template else ""


def span_line(
    expl: Explanation, index: int, lang: str = "en", threshold: float = NO_EFFECT_NATS
) -> str:
    """One line about span `index`: its rank and its effect in the method's own terms (for a
    removal, the answer's probability with and without it)."""
    return stage_tag(expl, lang) + _span_effect(expl, index, lang, threshold)


def _span_effect(expl: Explanation, index: int, lang: str, threshold: float) -> str:
    t = templates(lang)
    span = expl.spans[index]
    value = score(span)
    unit = expl.unit_of(index)
    rank = t["rank"].format(rank=expl.rank_of(index), total=len(expl.spans), units=_units(t, expl))
    target = _brief(t, expl.target.text)
    if expl.score_kind in IN_NATS and abs(value) < threshold:
        return t["span_no_effect"].format(
            rank=rank, value=format_value(abs(value)), threshold=format_value(threshold)
        )
    way = t["raises"] if value > 0 else t["lowers"]
    if expl.foil is not None and expl.score_kind in IN_NATS:  # about log P(target) − log P(foil)
        key = "span_removal_contrast" if expl.score_kind == "removal" else "span_estimate_contrast"
        return t[key].format(
            rank=rank,
            method=expl.method,
            unit=unit,
            way=way,
            target=target,
            foil=_brief(t, expl.foil.text),
            value=format_value(abs(value)),
        )
    if expl.score_kind == "removal":
        after = expl.ablated_prob(index)
        if after is not None:
            return t["span_removal"].format(
                rank=rank,
                target=target,
                before=format_prob(expl.target.prob),
                after=format_prob(after),
                unit=unit,
            )
        return t["span_removal_raw"].format(
            rank=rank, unit=unit, way=way, target=target, value=format_value(abs(value))
        )
    if expl.score_kind == "estimate":
        return t["span_estimate"].format(
            rank=rank,
            method=expl.method,
            unit=unit,
            way=way,
            target=target,
            value=format_value(abs(value)),
        )
    if expl.score_kind == "salience":
        return t["span_salience"].format(rank=rank, method=expl.method, value=format_value(value))
    return t["span_activation"].format(rank=rank, value=format_value(value))


def no_effect_line(
    expl: Explanation, index: int, lang: str = "en", threshold: float = NO_EFFECT_NATS
) -> str:
    """The hint on a part with no measurable effect: its |effect| and the tokens removing it
    saves (the editor shows it faded, as unnecessary code)."""
    span = expl.spans[index]
    return templates(lang)["hint_no_effect"].format(
        value=format_value(abs(score(span))),
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
    had no measurable effect, and the faithfulness verdict."""
    t = templates(lang)
    quiet = set(no_effect(expl, threshold))
    spans = [
        (i, s)
        for i, s in enumerate(expl.spans)
        if i not in quiet and score(s) != 0 and s.text.strip()
    ]
    head = t["sum_target"].format(
        target=_brief(t, expl.target.text), prob=format_prob(expl.target.prob)
    )
    if expl.foil is not None:  # why the target rather than the foil
        head = t["sum_contrast"].format(
            target=_brief(t, expl.target.text),
            prob=format_prob(expl.target.prob),
            foil=_brief(t, expl.foil.text),
            foil_prob=format_prob(expl.foil.prob),
        )
    sep = t["list_sep"]
    if expl.score_kind == "salience":
        ranked = sorted(spans, key=lambda p: (-abs(score(p[1])), p[1].start))[:top]
        items = sep.join(_brief(t, s.text) for _, s in ranked)
        text = t["sum_salient"].format(head=head, items=items, method=expl.method)
    else:
        pos = sorted((p for p in spans if score(p[1]) > 0), key=lambda p: -score(p[1]))[:top]
        neg = sorted((p for p in spans if score(p[1]) < 0), key=lambda p: score(p[1]))[:top]
        if pos:
            items = sep.join(_brief(t, s.text) for _, s in pos)
            text = t["sum_drivers"].format(head=head, items=items)
        else:
            text = t["sum_no_drivers"].format(head=head)
        if neg:
            key = "sum_against" if len(neg) == 1 else "sum_against_many"
            text += t[key].format(items=sep.join(_brief(t, s.text) for _, s in neg))
    text += t["sum_end"]
    if quiet:
        text += t["sentence_gap"] + t["sum_no_effect"].format(
            count=len(quiet), total=len(expl.spans), units=_units(t, expl)
        )
    if expl.score_kind != "activation":
        text += t["sentence_gap"] + verdict(expl, lang)
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
            quant=check.quantization, text=_brief(t, check.reference.text), record=record
        )
    if check.checked:  # fp32 ran and gave the same answer
        return None if brief else t["answer_checked"].format(record=record)
    if check.may_differ:
        return t["answer_may_differ"].format(
            quant=check.quantization,
            token=_brief(t, check.closest_token),
            prob=format_prob(check.closest_prob),
            record=record,
        )
    if brief:
        return None
    return t["answer_steady"].format(record=record)


# --- the full report ---------------------------------------------------------------------------


def _span_fact(span: Span) -> dict[str, Any]:
    return {"text": span.text, "start": span.start, "end": span.end, "score": score(span)}


def _family(expl: Explanation) -> str:
    """How the report reads the scores: "removal", "signed" or "unsigned"."""
    return {"removal": "removal", "estimate": "signed"}.get(expl.score_kind, "unsigned")


def describe_facts(
    expl: Explanation, top: int = 3, threshold: float = NO_EFFECT_NATS
) -> dict[str, Any]:
    """The numbers `describe` states, unformatted: target, top drivers, spans against, spans
    with no measurable effect and the faithfulness figures. The text is made from this only."""
    spans = expl.spans
    max_abs = max((abs(score(s)) for s in spans), default=0.0)
    quiet = set(no_effect(expl, threshold))
    effective = [s for i, s in enumerate(spans) if i not in quiet and score(s) != 0]
    silent = [s for i, s in enumerate(spans) if i in quiet]
    drivers = sorted((s for s in effective if score(s) > 0), key=lambda s: (-score(s), s.start))
    against = sorted((s for s in effective if score(s) < 0), key=lambda s: (score(s), s.start))
    named = [s for s in silent if s.text.strip()][:MAX_NO_EFFECT_NAMED]
    bins = expl.faithfulness.bins if expl.faithfulness else None
    metrics = stated_metrics(expl.metrics)
    if expl.foil is not None:  # exp of a difference of log-probabilities is no probability
        metrics = {k: v for k, v in metrics.items() if FIGURES.get(k) not in ("prob", "p")}
    return {
        "method": expl.method,
        "family": _family(expl),
        "model": expl.model,
        "granularity": expl.granularity,
        "target_text": expl.target.text,
        "target_prob": expl.target.prob,
        "target_logprob": expl.target.logprob,
        "drivers": [_span_fact(s) for s in drivers[: max(0, top)]],
        "against": [_span_fact(s) for s in against[: max(0, top)]],
        "no_effect": {
            "count": len(silent),
            "total": len(spans),
            "threshold": threshold,
            "named": [_span_fact(s) for s in named],
        },
        "max_abs_score": max_abs,
        "metrics": metrics,
        "foil_text": None if expl.foil is None else expl.foil.text,
        "foil_prob": None if expl.foil is None else expl.foil.prob,
        "contrast": expl.contrast,
        "aopc_bins": list(bins) if bins else None,
        "auto_tried": len(expl.auto.candidates) if expl.auto else None,
    }


def _items(t: dict[str, str], facts: dict[str, Any], spans: list[dict[str, Any]]) -> str:
    """One phrase per span in the method family's wording; after the first, the short form."""
    parts = []
    for i, s in enumerate(spans):
        more = "_more" if i else ""
        span = _brief(t, s["text"], REPORT_QUOTE)  # a section or example can be 50 lines
        if facts["family"] == "removal":
            key = ("removal_pos" if s["score"] > 0 else "removal_neg") + more
            if facts["contrast"] is not None:
                key += "_contrast"
            parts.append(t[key].format(span=span, value=format_value(abs(s["score"]))))
        else:
            value = format_signed(s["score"])
            parts.append(
                t["score_item" + more].format(span=span, value=value, method=facts["method"])
            )
    return t["sep"].join(parts)


def _metric_phrase(t: dict[str, str], facts: dict[str, Any], name: str, value: float) -> str:
    text = format_metric(name, value)
    if FIGURES.get(name) == "prob":
        bins = facts["aopc_bins"]
        parts = t["top_bins"].format(bins="/".join(bins)) if bins else t["top_parts"]
        return t[f"{name}_pos" if value >= 0 else f"{name}_neg"].format(value=text, parts=parts)
    if name in FIGURES:
        return t[name].format(value=text)
    return t["other_metric"].format(name=name, value=text)


def describe(
    expl: Explanation, lang: str = "en", top: int = 3, threshold: float = NO_EFFECT_NATS
) -> str:
    """The full report, in `lang`: the answer and its probability, top drivers, spans against,
    no-effect spans, every faithfulness figure and, when the model was asked, its own account."""
    t = templates(lang)
    facts = describe_facts(expl, top, threshold)
    lines = [
        t["target"].format(
            target=_quote(t, facts["target_text"]),
            prob=format_prob(facts["target_prob"]),
            logprob=format_value(facts["target_logprob"]),
            method=facts["method"],
            model=facts["model"],
            granularity=facts["granularity"],
        )
    ]
    if facts["contrast"] is not None:  # why the answer rather than the foil
        lines.append(
            t["contrast"].format(
                target=_quote(t, facts["target_text"]),
                prob=format_prob(facts["target_prob"]),
                foil=_quote(t, facts["foil_text"]),
                foil_prob=format_prob(facts["foil_prob"]),
                value=format_value(facts["contrast"]),
            )
        )
    if expl.degraded:
        lines.insert(0, t["degraded"].format(reason=expl.degraded))
    if facts["auto_tried"] is not None and expl.auto is not None:
        lines.append(t["auto"].format(n=facts["auto_tried"]) + " " + expl.auto.reason + ".")
    ne = facts["no_effect"]
    if facts["max_abs_score"] == 0.0:
        lines.append(t["all_zero"].format(total=ne["total"]))
    else:
        drivers, against = facts["drivers"], facts["against"]
        unsigned = facts["family"] == "unsigned"
        head = t["unsigned_drivers"] if unsigned else t["drivers"]
        lines.append(head.format(items=_items(t, facts, drivers)) if drivers else t["no_drivers"])
        if unsigned:
            lines.append(t["unsigned"].format(method=facts["method"]))
        elif against:
            key = "against" if facts["contrast"] is None else "against_contrast"
            foil = _quote(t, facts["foil_text"] or "")
            lines.append(t[key].format(items=_items(t, facts, against), foil=foil))
        else:
            key = "no_against" if facts["contrast"] is None else "no_against_contrast"
            lines.append(t[key].format(foil=_quote(t, facts["foil_text"] or "")))
        if facts["family"] != "removal":
            lines.append(t["score_note"].format(method=facts["method"]))
        if ne["count"]:
            named = t["list_sep"].join(_brief(t, s["text"], REPORT_QUOTE) for s in ne["named"])
            lines.append(
                t["no_effect"].format(
                    threshold=format_value(threshold),
                    count=ne["count"],
                    total=ne["total"],
                    named=t["no_effect_named"].format(items=named) if named else "",
                )
            )
        elif not unsigned:
            lines.append(t["no_effect_none"].format(total=ne["total"]))
    if expl.hierarchy is not None:  # granularity "auto": what was refined, what was pruned
        h = expl.hierarchy
        skipped = t["sep"].join(h.skipped)
        lines.append(
            t["refined"].format(
                lines=len(h.refined_lines),
                total=len(h.line_scores),
                words=h.refined_words,
                skipped=t["refined_skipped"].format(items=skipped) if skipped else "",
            )
        )
    figures = [_metric_phrase(t, facts, k, v) for k, v in facts["metrics"].items()]
    lines.append(t["faith"].format(items=t["sep"].join(figures)) if figures else t["faith_none"])
    note = answer_note(expl, lang)
    if note:
        lines.insert(1 if expl.degraded else 0, note)
    if expl.self_explanation is not None:
        from promptxray.explainers.nl.self_explain import describe_self_explanation

        lines.append(describe_self_explanation(expl.self_explanation, lang))
    return "\n".join(lines)
