"""The words about redundant parts (`Explanation.redundant`), in English and Chinese: two parts
that each have (almost) no effect alone, because the other says the same, while removing both
costs the answer. Such a part is never "no measurable effect": `overlaps_redundant` is the test
`summary_text.no_effect` applies, `redundant_effect` the span line's wording, and
`redundancy_lines` the full report's one line per pair."""

from __future__ import annotations

from promptxray.explainers.details import Redundancy
from promptxray.explainers.nl.tables import quote_short, templates
from promptxray.explainers.types import Explanation

REDUNDANCY_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "at_line": " (line {line})",
        "span": (
            "{rank} · redundant with {other}{where}: removing either alone costs "
            "{alone}/{other_alone} nats, both {both} nats"
        ),
        "pair": (
            "Redundant: {first}{first_where} and {second}{second_where} each have almost no "
            "effect alone ({first_alone}/{second_alone} nats) but removing both costs "
            "{both} nats."
        ),
    },
    "zh": {
        "at_line": "（第 {line} 行）",
        "span": (
            "{rank} · 与 {other}{where} 冗余：单独去掉任一个的代价为 {alone}/{other_alone} nats，"
            "两个都去掉为 {both} nats"
        ),
        "pair": (
            "冗余：{first}{first_where} 与 {second}{second_where} 单独去掉时几乎没有影响"
            "（{first_alone}/{second_alone} nats），但两个都去掉的代价为 {both} nats。"
        ),
    },
}
REPORT_QUOTE = 80  # the full report's longest quote (the span line's: 40)


def _table(lang: str) -> dict[str, str]:
    return templates(lang, REDUNDANCY_TEMPLATES)


def _overlaps(start: int, end: int, part: list[int]) -> bool:
    return start < part[1] and part[0] < end


def redundancy_of(expl: Explanation, index: int) -> tuple[Redundancy, list[int]] | None:
    """The first redundant pair span `index` lies in (overlaps one of its ranges), with the
    pair's other range; None when the span is in none."""
    span = expl.spans[index]
    for pair in expl.redundant:
        if _overlaps(span.start, span.end, pair.first):
            return pair, pair.second
        if _overlaps(span.start, span.end, pair.second):
            return pair, pair.first
    return None


def overlaps_redundant(expl: Explanation, index: int) -> bool:
    """Whether span `index` lies in a redundant part (so "no measurable effect" is not true)."""
    return redundancy_of(expl, index) is not None


def range_text(expl: Explanation, part: list[int]) -> str:
    """The prompt's text in the file range `part`, from the tokens inside it (the explanation
    holds no copy of the file; text between tokens, such as a role header, is a space)."""
    start, end = part[0], part[1]
    text, at = "", start
    for token in expl.tokens:
        if token.end <= start or token.start >= end:
            continue
        if token.start > at and text:
            text += " "
        text += token.text[max(0, start - token.start) : max(0, end - token.start)]
        at = token.end
    return text


def line_at(expl: Explanation, offset: int, source: str | None = None) -> int | None:
    """The 1-based line of file offset `offset`: from `source` when given; otherwise from the
    tokens, when they cover the file without gaps up to it (no front matter, no role headers
    between); None when the line cannot be known."""
    if source is not None:
        return source.count("\n", 0, offset) + 1
    line, at = 1, 0
    for token in expl.tokens:
        if token.start >= offset:
            break
        if token.start != at:
            return None  # text the tokens do not hold lies before the offset
        line += token.text.count("\n", 0, offset - token.start)
        at = token.end
    return line if at >= offset else None


def _where(t: dict[str, str], expl: Explanation, part: list[int], source: str | None) -> str:
    line = line_at(expl, part[0], source)
    return "" if line is None else t["at_line"].format(line=line)


def _nats(value: float) -> str:
    return f"{value:.2f}"


def redundant_effect(
    expl: Explanation, index: int, rank: str, lang: str = "en", source: str | None = None
) -> str | None:
    """The span line's effect text for a span in a redundant part: the other part (quoted
    short, with its line), what removing this part alone and the other alone costs, and what
    removing both costs; None when the span is in no redundant pair."""
    found = redundancy_of(expl, index)
    if found is None:
        return None
    pair, other = found
    t, q = _table(lang), templates(lang)
    mine, theirs = (
        (pair.first_alone, pair.second_alone)
        if other is pair.second
        else (pair.second_alone, pair.first_alone)
    )
    return t["span"].format(
        rank=rank,
        other=quote_short(q, range_text(expl, other)),
        where=_where(t, expl, other, source),
        alone=_nats(mine),
        other_alone=_nats(theirs),
        both=_nats(pair.both),
    )


def redundancy_lines(expl: Explanation, lang: str = "en", source: str | None = None) -> list[str]:
    """The full report's lines on redundancy: one per pair, both parts quoted with their lines,
    what removing each alone costs and what removing both costs."""
    t, q = _table(lang), templates(lang)
    return [
        t["pair"].format(
            first=quote_short(q, range_text(expl, pair.first), REPORT_QUOTE),
            first_where=_where(t, expl, pair.first, source),
            second=quote_short(q, range_text(expl, pair.second), REPORT_QUOTE),
            second_where=_where(t, expl, pair.second, source),
            first_alone=_nats(pair.first_alone),
            second_alone=_nats(pair.second_alone),
            both=_nats(pair.both),
        )
        for pair in expl.redundant
    ]
