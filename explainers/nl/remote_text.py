"""Sentences about an explanation scored by a server: a part whose figure is a bound (and
what the model answers without it) or a sampled estimate (with its interval), and which
model answered, where, in which tier, at what cost."""

from __future__ import annotations

from promptxray.explainers.details import ScoreKind
from promptxray.explainers.nl.figures import finite_score, format_value
from promptxray.explainers.nl.tables import quote_short, templates
from promptxray.explainers.types import Explanation


def remote_span_effect(
    expl: Explanation, index: int, rank: str, unit: str, lang: str
) -> str | None:
    """The span line of a part whose figure is not exact (None: exact, the usual wording)."""
    info = expl.remote
    figure = info.figure(index) if info is not None else None
    if figure is None:
        return None
    t = templates(lang)
    value = finite_score(expl.spans[index].score)
    target = quote_short(t, expl.target.text)
    if figure.kind == "proxy":
        proxy = info.proxy.model if info is not None and info.proxy is not None else "?"
        return t["span_proxy"].format(
            rank=rank,
            unit=unit,
            model=proxy,
            way=t["lowers"] if value > 0 else t["raises"],  # a removal's drop
            target=target,
            value=format_value(abs(value)),
        )
    if figure.kind == "bound":
        answer = (
            t["remote_answers"].format(answer=quote_short(t, figure.answer))
            if figure.answer
            else ""
        )
        return t["span_removal_bound"].format(
            rank=rank, unit=unit, target=target, value=format_value(value), answers=answer
        )
    low = format_value(figure.low if figure.low is not None else -1.0)
    high = format_value(figure.high if figure.high is not None else 1.0)
    key = "span_agreement_less" if value >= 0 else "span_agreement_more"
    return t[key].format(
        rank=rank, unit=unit, target=target, value=format_value(abs(value)), low=low, high=high
    )


def remote_line(expl: Explanation, lang: str = "en", brief: bool = True) -> str | None:
    """Which model answered, where, and what its figures are (the tier); not `brief`: also
    what it cost and why a better tier was not used."""
    info = expl.remote
    if info is None:
        return None
    t = templates(lang)
    text = t["remote_source"].format(
        model=info.model, endpoint=info.endpoint, tier=t.get(f"tier_{info.tier}", info.tier)
    )
    if not brief and expl.score_kind is ScoreKind.AGREEMENT and info.base_low is not None:
        text += " " + t["remote_base_agreement"].format(
            low=format_value(info.base_low), high=format_value(info.base_high or 1.0)
        )
    bounds = sum(1 for p in info.parts if p.kind == "bound")
    if bounds:
        text += " " + t["remote_bounds"].format(count=bounds, total=len(expl.spans))
    if info.proxy is not None:
        p = info.proxy
        text += " " + t["remote_proxy"].format(
            model=p.model,
            scored=p.scored,
            total=p.total,
            rho="–" if p.spearman is None else f"{p.spearman:.2f}",
            shared=f"{round(p.top_shared * 3)}/3" if p.scored >= 3 else f"{p.top_shared:.2f}",
        )
    if brief:
        return text
    text += " " + t["remote_cost"].format(requests=info.requests, tokens=f"{info.tokens_sent:,}")
    if info.price is not None:
        text += " " + t["remote_price"].format(price=f"{info.price:.4f}")
    if info.rate_limited:
        text += " " + t["remote_rate_limited"].format(count=info.rate_limited)
    if info.tier_note:
        text += " " + t["remote_tier_note"].format(note=info.tier_note)
    return text
