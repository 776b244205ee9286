"""The words about pairs of parts leave-one-out cannot see (`Explanation.pairs`,
explainers/interactions.py), in English and Chinese: redundant parts (each costs little
alone because the other says the same, while removing both costs the answer) and parts in
conflict (one supports the answer, the other pulls against it). A redundant part is never
"no measurable effect" nor ranked by its own small effect: `overlaps_redundant` is the test
`summary_text.no_effect` applies, `redundant_effect` the span line's wording,
`conflict_note` the span line's addition, `pair_sentence` one pair in a sentence (the
editor's diagnostics, the chat), `pair_lines` the full report's lines with what was tested."""

from __future__ import annotations

from promptxray.explainers.details import PartPair
from promptxray.explainers.nl.tables import quote_short, templates
from promptxray.explainers.types import Explanation

PAIR_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "at_line": " (line {line})",
        "span": (
            "{rank} · redundant with {other}{where}: removing either alone costs "
            "{alone}/{other_alone} nats, both {both} nats"
        ),
        "pair": (
            "Redundant: {first}{first_where} and {second}{second_where}: either alone keeps "
            "the answer (removing one costs {first_alone}/{second_alone} nats) but removing "
            "both costs {both} nats."
        ),
        "conflict": (
            "In conflict: {first}{first_where} and {second}{second_where} pull against each "
            "other: removing the first changes log P by {first_alone}, the second by "
            "{second_alone}, both by {both} nats."
        ),
        "span_conflict": " · pulls against {other}{where}",
        "sum_redundant": (
            "{first} and {second} are redundant: either alone keeps the answer; removing both "
            "costs {both} nats."
        ),
        "sum_conflict": "{first} and {second} pull against each other.",
        "sum_more": " ({count} more pairs in the report.)",
        "related_redundant": "Says the same as {other}.",
        "check_none": "no redundant pair costs {limit:g} nats or more{tested}",
        "check_over": "{sentence}{more}{tested}",
        "check_more": " ({count} more redundant pairs over {limit:g} nats)",
        "check_tested": " ({pairs} pairs tested among {tested} of {parts} parts)",
        "check_untested": (
            "pairs were not tested on this explanation ({method}/{granularity}): no_redundant "
            "needs a leave-one-out method (occlusion) at granularity line, sentence, section, "
            "message, example, variable or auto"
        ),
        "related_conflict": "Pulls against {other}.",
        "tested_all": "Pairs tested for redundancy and conflict: all {pairs} among {parts} parts.",
        "tested_some": (
            "Pairs tested for redundancy and conflict: {pairs} among {tested} of {parts} parts"
            " (the ones that matter most{inert}{similar}); {untested} parts not tested in pairs."
        ),
        "tested_inert": ", and those with no effect alone",
        "tested_similar": ", and {similar} pairs of parts sharing most of their words",
        "tested_similar_one": ", and a pair of parts sharing most of their words",
        "inert_untested": (
            " The {inert} parts with no effect alone cost {joint} nats together: too many to "
            "test in pairs."
        ),
    },
    "zh": {
        "at_line": "（第 {line} 行）",
        "span": (
            "{rank} · 与 {other}{where} 冗余：单独去掉任一个的代价为 {alone}/{other_alone} nats，"
            "两个都去掉为 {both} nats"
        ),
        "pair": (
            "冗余：{first}{first_where} 与 {second}{second_where}：保留任一个即可保持回答"
            "（单独去掉一个的代价为 {first_alone}/{second_alone} nats），但两个都去掉的代价为 "
            "{both} nats。"
        ),
        "conflict": (
            "冲突：{first}{first_where} 与 {second}{second_where} 相互拉扯：去掉前者使 log P "
            "变化 {first_alone}，去掉后者变化 {second_alone}，两个都去掉变化 {both} nats。"
        ),
        "span_conflict": " · 与 {other}{where} 相互拉扯",
        "sum_redundant": (
            "{first} 与 {second} 冗余：保留任一个即可保持回答；两个都去掉的代价为 {both} nats。"
        ),
        "sum_conflict": "{first} 与 {second} 相互拉扯。",
        "sum_more": "（报告中还有 {count} 对。）",
        "related_redundant": "与 {other} 内容相同。",
        "check_none": "没有两个都去掉代价达到 {limit:g} nats 的冗余组合{tested}",
        "check_over": "{sentence}{more}{tested}",
        "check_more": "（另有 {count} 对冗余组合超过 {limit:g} nats）",
        "check_tested": "（在 {parts} 个部分中的 {tested} 个之间检测了 {pairs} 对）",
        "check_untested": (
            "此解释未检测组合（{method}/{granularity}）：no_redundant 需要逐一去除类方法"
            "（occlusion），粒度为 line、sentence、section、message、example、variable 或 auto"
        ),
        "related_conflict": "与 {other} 相互拉扯。",
        "tested_all": "已检测冗余与冲突的组合：{parts} 个部分之间的全部 {pairs} 对。",
        "tested_some": (
            "已检测冗余与冲突的组合：{parts} 个部分中的 {tested} 个（影响最大的{inert}{similar}）"
            "之间的 {pairs} 对；{untested} 个部分未成对检测。"
        ),
        "tested_inert": "，以及单独无影响的",
        "tested_similar": "，以及 {similar} 对用词大多相同的",
        "tested_similar_one": "，以及 1 对用词大多相同的",
        "inert_untested": (
            " 单独无影响的 {inert} 个部分一起去掉的代价为 {joint} nats：太多，未成对检测。"
        ),
    },
}
REPORT_QUOTE = 80  # the full report's longest quote (the span line's: 40)


def _table(lang: str) -> dict[str, str]:
    return templates(lang, PAIR_TEMPLATES)


def _overlaps(start: int, end: int, part: list[int]) -> bool:
    return start < part[1] and part[0] < end


def pair_of(
    expl: Explanation, index: int, kind: str = "redundant"
) -> tuple[PartPair, list[int]] | None:
    """The first pair of `kind` span `index` lies in (overlaps one of its ranges), with the
    pair's other range; None when the span is in none."""
    span = expl.spans[index]
    for pair in expl.pairs:
        if pair.kind != kind:
            continue
        if _overlaps(span.start, span.end, pair.first):
            return pair, pair.second
        if _overlaps(span.start, span.end, pair.second):
            return pair, pair.first
    return None


def redundancy_of(expl: Explanation, index: int) -> tuple[PartPair, list[int]] | None:
    """The first redundant pair span `index` lies in, with the pair's other range."""
    return pair_of(expl, index, "redundant")


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
    """The span line's effect text for a span in a redundant part (instead of its own small
    effect, which hides what it does): the other part (quoted short, with its line), what
    removing this part alone and the other alone costs, and what removing both costs; None
    when the span is in no redundant pair."""
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


def conflict_note(
    expl: Explanation, index: int, lang: str = "en", source: str | None = None
) -> str:
    """The span line's addition for a span in a conflicting pair ("· pulls against …", the
    other part quoted short with its line); "" when it is in none."""
    found = pair_of(expl, index, "conflict")
    if found is None:
        return ""
    t, q = _table(lang), templates(lang)
    _, other = found
    return t["span_conflict"].format(
        other=quote_short(q, range_text(expl, other)), where=_where(t, expl, other, source)
    )


def pair_sentence(
    expl: Explanation, pair: PartPair, lang: str = "en", source: str | None = None
) -> str:
    """One pair in a sentence: both parts quoted with their lines, what removing each alone
    and both costs, and what that means (redundant, or pulling against each other)."""
    t, q = _table(lang), templates(lang)
    signed = pair.kind == "conflict"
    nats = _signed if signed else _nats
    return t["conflict" if signed else "pair"].format(
        first=quote_short(q, range_text(expl, pair.first), REPORT_QUOTE),
        first_where=_where(t, expl, pair.first, source),
        second=quote_short(q, range_text(expl, pair.second), REPORT_QUOTE),
        second_where=_where(t, expl, pair.second, source),
        first_alone=nats(pair.first_alone),
        second_alone=nats(pair.second_alone),
        both=nats(pair.both),
    )


def pair_summary(expl: Explanation, lang: str = "en") -> str:
    """The summary's sentence on the strongest pair (both parts quoted short), and how many
    more the report holds; "" when there is none."""
    if not expl.pairs:
        return ""
    t, q = _table(lang), templates(lang)
    pair = expl.pairs[0]
    text = t[f"sum_{pair.kind}"].format(
        first=quote_short(q, range_text(expl, pair.first)),
        second=quote_short(q, range_text(expl, pair.second)),
        both=_nats(pair.both),
    )
    more = len(expl.pairs) - 1
    return text + (t["sum_more"].format(count=more) if more else "")


def pair_related(expl: Explanation, pair: PartPair, lang: str = "en") -> str:
    """The note at a pair's second part that points back at the first (the editor's related
    information): "Says the same as …" or "Pulls against …"."""
    t, q = _table(lang), templates(lang)
    return t[f"related_{pair.kind}"].format(other=quote_short(q, range_text(expl, pair.first)))


def _tested_note(t: dict[str, str], expl: Explanation) -> str:
    test = expl.pair_test
    if test is None:
        return ""
    return t["check_tested"].format(pairs=test.pairs, tested=test.tested, parts=test.parts)


def no_redundant_detail(
    expl: Explanation,
    over: list[PartPair],
    limit: float,
    lang: str = "en",
    source: str | None = None,
) -> str:
    """The no_redundant check's evidence: the worst redundant pair over `limit` nats (none:
    it passed), how many more, and what was tested."""
    t = _table(lang)
    if not over:
        return t["check_none"].format(limit=limit, tested=_tested_note(t, expl))
    more = t["check_more"].format(count=len(over) - 1, limit=limit) if len(over) > 1 else ""
    sentence = pair_sentence(expl, over[0], lang, source).rstrip(".。")
    return t["check_over"].format(sentence=sentence, more=more, tested=_tested_note(t, expl))


def no_pair_test_detail(expl: Explanation, lang: str = "en") -> str:
    """Why no_redundant cannot be checked: the explanation tested no pairs."""
    return _table(lang)["check_untested"].format(method=expl.method, granularity=expl.granularity)


def _signed(value: float) -> str:
    return f"{-value:+.2f}"  # a removal effect as the change of log P it measures


def tested_line(expl: Explanation, lang: str = "en") -> str:
    """What the pair test covered (and what it did not); "" when none ran."""
    test = expl.pair_test
    if test is None:
        return ""
    t = _table(lang)
    if test.tested >= test.parts:
        line = t["tested_all"].format(pairs=test.pairs, parts=test.parts)
    else:
        inert = t["tested_inert"] if test.inert_tested and test.inert_joint else ""
        line = t["tested_some"].format(
            pairs=test.pairs,
            tested=test.tested,
            parts=test.parts,
            inert=inert,
            similar=_similar(t, test.similar),
            untested=test.parts - test.tested,
        )
    if not test.inert_tested and test.inert_joint is not None:
        line += t["inert_untested"].format(inert=test.inert, joint=_nats(test.inert_joint))
    return line


def _similar(t: dict[str, str], count: int) -> str:
    if count == 0:
        return ""
    return t["tested_similar_one" if count == 1 else "tested_similar"].format(similar=count)


def pair_lines(expl: Explanation, lang: str = "en", source: str | None = None) -> list[str]:
    """The full report's lines on pairs: one per pair (`pair_sentence`), then what was
    tested."""
    lines = [pair_sentence(expl, pair, lang, source) for pair in expl.pairs]
    tested = tested_line(expl, lang)
    return lines + ([tested] if tested else [])
