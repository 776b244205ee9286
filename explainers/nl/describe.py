"""The full report on an explanation (terminal with --verbose, HTML, exports), in English or
Chinese: the answer and its probability, top drivers, parts against, parts with no measurable
effect, redundant pairs, every faithfulness figure (each saying what it is) and the model's own
account. The short views (span line, summary) are `summary_text.py`'s.
"""

from __future__ import annotations

from typing import Any

from promptxray.explainers.details import ScoreKind
from promptxray.explainers.nl.auto_text import auto_reason, pruning_lines
from promptxray.explainers.nl.figures import (
    FIGURES,
    finite_score,
    format_metric,
    format_prob,
    format_signed,
    format_value,
    stated_metrics,
)
from promptxray.explainers.nl.pairs_text import pair_lines
from promptxray.explainers.nl.remote_text import remote_line
from promptxray.explainers.nl.summary_text import NO_EFFECT_NATS, answer_note, no_effect
from promptxray.explainers.nl.tables import quote, quote_short, templates
from promptxray.explainers.types import Explanation, Span

MAX_NO_EFFECT_NAMED = 3
REPORT_QUOTE = 80  # the longest quote of a part in the full report (the hover's: 40)
# the figures over the top-ranked fractions of the prompt (ERASER AOPC), stated with their
# log-probability counterparts in one phrase each
AOPC = ("comprehensiveness", "sufficiency")


def _span_fact(span: Span) -> dict[str, Any]:
    score = finite_score(span.score)
    return {"text": span.text, "start": span.start, "end": span.end, "score": score}


def describe_facts(
    expl: Explanation, top: int = 3, threshold: float = NO_EFFECT_NATS
) -> dict[str, Any]:
    """The numbers `describe` states, unformatted: target, top drivers, spans against, spans
    with no measurable effect and the faithfulness figures. The text is made from this only."""
    spans = expl.spans
    max_abs = max((abs(finite_score(s.score)) for s in spans), default=0.0)
    quiet = set(no_effect(expl, threshold))
    bounds = {p.index for p in expl.remote.parts if p.kind == "bound"} if expl.remote else set()
    effective = [
        _span_fact(s) | {"bound": i in bounds}
        for i, s in enumerate(spans)
        if i not in quiet and finite_score(s.score)
    ]
    silent = [s for i, s in enumerate(spans) if i in quiet]
    effective.sort(key=lambda s: (-abs(s["score"]), s["start"]))  # strongest first
    drivers = [s for s in effective if s["score"] > 0]
    against = [s for s in effective if s["score"] < 0]
    named = [s for s in silent if s.text.strip()][:MAX_NO_EFFECT_NAMED]
    bins = expl.faithfulness.bins if expl.faithfulness else None
    metrics = stated_metrics(expl.metrics)
    if expl.foil is not None:  # exp of a difference of log-probabilities is no probability
        metrics = {k: v for k, v in metrics.items() if FIGURES.get(k) not in ("prob", "p")}
    return {
        "method": expl.method,
        "family": expl.score_kind.family,
        "model": expl.model,
        "granularity": expl.granularity,
        "target_text": expl.target.text,
        "target_prob": expl.target.prob,
        "target_logprob": expl.target.logprob,
        "drivers": drivers[: max(0, top)],
        "against": against[: max(0, top)],
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
        span = quote_short(t, s["text"], REPORT_QUOTE)  # a section or example can be 50 lines
        if facts["family"] == "removal":
            key = ("removal_pos" if s["score"] > 0 else "removal_neg") + more
            if facts["contrast"] is not None:
                key += "_contrast"
            value = format_value(abs(s["score"]))
            if s.get("bound"):  # a server's lower bound on the drop, said as one
                value = t["at_least"].format(value=value)
            parts.append(t[key].format(span=span, value=value))
        else:
            value = format_signed(s["score"])
            parts.append(
                t["score_item" + more].format(span=span, value=value, method=facts["method"])
            )
    return t["sep"].join(parts)


def _faithfulness(t: dict[str, str], facts: dict[str, Any]) -> str:
    """One sentence with every faithfulness figure: the top-ranked fractions named once, and
    comprehensiveness and sufficiency each in one phrase with their log-probability figures."""
    metrics = facts["metrics"]
    if not metrics:
        return t["faith_none"]
    bins = facts["aopc_bins"]
    parts = t["top_bins"].format(bins="/".join(bins)) if bins else t["top_parts"]
    phrases = []
    for name, value in metrics.items():
        base = name.removesuffix("_logprob")
        if base in AOPC and base != name and base in metrics:
            continue  # said with its probability figure
        if base in AOPC:
            phrases.append(_aopc_phrase(t, facts, name, value, parts))
            parts = t["them"]  # the fractions are named once
        elif name in FIGURES:
            phrases.append(t[name].format(value=format_metric(name, value)))
        else:
            phrases.append(t["other_metric"].format(name=name, value=format_metric(name, value)))
    return t["faith"].format(items=t["sep"].join(phrases))


def _way(t: dict[str, str], drop: float) -> str:
    return t["lowers"] if drop >= 0 else t["raises"]


def _aopc_phrase(
    t: dict[str, str], facts: dict[str, Any], name: str, value: float, parts: str
) -> str:
    """Comprehensiveness or sufficiency (a mean drop of the answer's probability), with its
    mean drop in log-probability when there is one; alone, the log-probability figure."""
    if name.endswith("_logprob"):  # no probability figure (a contrastive explanation)
        key = name + ("_contrast" if facts["contrast"] is not None else "")
        return t[key].format(parts=parts, way=_way(t, value), value=format_value(abs(value)))
    log = facts["metrics"].get(f"{name}_logprob")
    note = ""
    if log is not None:
        same = (log >= 0) == (value >= 0)
        note = t["log_same" if same else "log_other"].format(
            way=_way(t, log), value=format_value(abs(log))
        )
    key = f"{name}_pos" if value >= 0 else f"{name}_neg"
    return t[key].format(parts=parts, value=format_metric(name, value), log=note)


def describe(
    expl: Explanation,
    lang: str = "en",
    top: int = 3,
    threshold: float = NO_EFFECT_NATS,
    source: str | None = None,
) -> str:
    """The full report, in `lang`: the answer and its probability, top drivers, spans against,
    no-effect spans, redundant pairs (with their lines; `source`, the file's text when the
    caller has it, makes those exact), every faithfulness figure and, when the model was
    asked, its own account."""
    t = templates(lang)
    facts = describe_facts(expl, top, threshold)
    head = "target_sampled" if expl.score_kind is ScoreKind.AGREEMENT else "target"
    lines = [
        t[head].format(
            target=quote(t, facts["target_text"]),
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
                target=quote(t, facts["target_text"]),
                prob=format_prob(facts["target_prob"]),
                foil=quote(t, facts["foil_text"]),
                foil_prob=format_prob(facts["foil_prob"]),
                value=format_value(facts["contrast"]),
            )
        )
    if expl.degraded:
        lines.insert(0, t["degraded"].format(reason=expl.degraded))
    if facts["auto_tried"] is not None and expl.auto is not None:
        reason = auto_reason(expl.auto, lang)
        lines.append(t["auto"].format(n=facts["auto_tried"]) + " " + reason + t["sum_end"])
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
            foil = quote(t, facts["foil_text"] or "")
            lines.append(t[key].format(items=_items(t, facts, against), foil=foil))
        else:
            key = "no_against" if facts["contrast"] is None else "no_against_contrast"
            lines.append(t[key].format(foil=quote(t, facts["foil_text"] or "")))
        if facts["family"] != "removal":
            lines.append(t["score_note"].format(method=facts["method"]))
        if ne["count"]:
            named = t["list_sep"].join(quote_short(t, s["text"], REPORT_QUOTE) for s in ne["named"])
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
    lines += pair_lines(expl, lang, source)  # what leave-one-out cannot see, and the cover
    if expl.hierarchy is not None:  # granularity "auto": what was refined, what was pruned
        h = expl.hierarchy
        skipped = t["sep"].join(pruning_lines(h, lang))
        lines.append(
            t["refined"].format(
                lines=len(h.refined_lines),
                total=len(h.line_scores),
                words=h.refined_words,
                skipped=t["refined_skipped"].format(items=skipped) if skipped else "",
            )
        )
    lines.append(_faithfulness(t, facts))
    source = remote_line(expl, lang, brief=False)
    if source:
        lines.append(source)
    note = answer_note(expl, lang)
    if note:
        lines.insert(1 if expl.degraded else 0, note)
    if expl.self_explanation is not None:
        from promptxray.explainers.nl.self_explain import describe_self_explanation

        lines.append(describe_self_explanation(expl.self_explanation, lang))
    return "\n".join(lines)
