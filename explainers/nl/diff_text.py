"""Every sentence about a diff of two explanations (`promptxray diff`, the server's
diffWithSaved), in English and Chinese: the answer old → new, why the scores are not
comparable, the largest changes, and a tally; as plain text or Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptxray.explainers.nl.describe import templates as describe_templates
from promptxray.explainers.nl.figures import format_prob, format_signed, short

if TYPE_CHECKING:  # the diff package's data (imported only for types: no import cycle)
    from promptxray.explainers.diff.types import ExplanationDiff, Mismatch, PartChange

QUOTE = 36  # the longest quote of a part in the text rendering
EDITED_QUOTE = 24  # ... of an edited part's old text
TABLE_QUOTE = 60  # ... of a part in the Markdown table
MARK = {"new": "+", "removed": "-", "gained": "↑", "lost": "↓", "same": "="}

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "head": "promptxray diff · {method} · {granularity} · {model}",
        "title": "promptxray: what the edit changed",
        "answer_changed": "The answer changed: {old!r} (P={old_p}) → {own!r} (P={own_p}).",
        "old_target": (
            "Parts are scored against the old answer {old!r}, whose probability moved "
            "{old_p} → {new_p}."
        ),
        "own_targets": "Each version is scored against its own answer: not comparable.",
        "answers": "Answers: {old!r} (P={old_p}) → {new!r} (P={new_p}).",
        "same_answer": "Same answer {old!r}: P {old_p} → {new_p}.",
        "mismatch_target": (
            "The versions were explained against different targets ({old!r}, {new!r}): "
            "the part scores are not comparable."
        ),
        "mismatch_foil": "The foils differ ({old!r} vs {new!r}): not comparable.",
        "mismatch": "The {what} differ ({old} vs {new}): not comparable.",
        "what_method": "methods",
        "what_granularity": "granularities",
        "what_model": "models",
        "what_score_kind": "score kinds",
        "quote": "{text!r}",
        "top": "Top changes:",
        "none_moved": "No part's score moved by {threshold:.3g} or more.",
        "part_new": "{part} {where} new, {new}",
        "part_removed": "{part} (was {where}) removed, was {old}",
        "part_moved": "{part} {where}{edited} {status} {old} → {new} ({change}){flip}",
        "edited_from": " (edited from {text})",
        "flipped": ", sign flipped",
        "status_new": "new",
        "status_removed": "removed",
        "status_gained": "gained",
        "status_lost": "lost",
        "status_same": "same",
        "tally_item": "{n} {status}",
        "list_sep": ", ",
        "run": "{n} ({run})",
        "parts": "Parts: {tally} · forward passes: {passes}",
        "more_change": "1 more change; every part and score: --format json",
        "more_changes": "{n} more changes; every part and score: --format json",
        "more": "Every part and score: --format json",
        "table_head": "| | Part | Where | Old | New | Change |",
        "was_at": "was {where}",
        "edited": " (edited)",
        "not_shown_one": "1 smaller change not shown.",
        "not_shown": "{n} smaller changes not shown.",
        "parts_md": "Parts: {tally}.",
    },
    "zh": {
        "head": "promptxray diff · {method} · {granularity} · {model}",
        "title": "promptxray：这次修改改变了什么",
        "answer_changed": "回答变了：“{old}”（P={old_p}）→“{own}”（P={own_p}）。",
        "old_target": "各部分按旧回答“{old}”计分，其概率从 {old_p} 变为 {new_p}。",
        "own_targets": "每个版本按各自的回答计分：不可比较。",
        "answers": "回答：“{old}”（P={old_p}）→“{new}”（P={new_p}）。",
        "same_answer": "回答相同“{old}”：P {old_p} → {new_p}。",
        "mismatch_target": "两个版本针对不同的目标解释（“{old}”，“{new}”）：各部分得分不可比较。",
        "mismatch_foil": "备选不同（“{old}”与“{new}”）：不可比较。",
        "mismatch": "{what}不同（{old} 与 {new}）：不可比较。",
        "what_method": "方法",
        "what_granularity": "粒度",
        "what_model": "模型",
        "what_score_kind": "得分类型",
        "quote": "“{text}”",
        "top": "变化最大的部分：",
        "none_moved": "没有任何部分的得分变化达到 {threshold:.3g}。",
        "part_new": "{part} {where} 新增，{new}",
        "part_removed": "{part}（原在 {where}）已删除，原为 {old}",
        "part_moved": "{part} {where}{edited} {status} {old} → {new}（{change}）{flip}",
        "edited_from": "（由{text}修改而来）",
        "flipped": "，符号反转",
        "status_new": "新增",
        "status_removed": "删除",
        "status_gained": "增强",
        "status_lost": "减弱",
        "status_same": "不变",
        "tally_item": "{status} {n}",
        "list_sep": "，",
        "run": "{n}（{run}）",
        "run_old": "旧版",
        "run_new": "新版",
        "run_new_own_answer": "新版自身回答",
        "parts": "各部分：{tally} · 前向计算：{passes}",
        "more_change": "另有 1 处变化；全部部分和得分：--format json",
        "more_changes": "另有 {n} 处变化；全部部分和得分：--format json",
        "more": "全部部分和得分：--format json",
        "table_head": "| | 部分 | 位置 | 旧 | 新 | 变化 |",
        "was_at": "原在 {where}",
        "edited": "（已修改）",
        "not_shown_one": "另有 1 处较小的变化未列出。",
        "not_shown": "另有 {n} 处较小的变化未列出。",
        "parts_md": "各部分：{tally}。",
    },
}


def templates(lang: str) -> dict[str, str]:
    """The diff's template table of `lang` (an unknown language: the error `nl` raises)."""
    describe_templates(lang)
    return TEMPLATES[lang]


def _fmt(x: float | None) -> str:
    return "—" if x is None else format_signed(x)


def _where(source: str | None, offset: int | None) -> str:
    """line:column of `offset` (1-based), "" when the source or the offset is unknown."""
    if source is None or offset is None:
        return ""
    line = source.count("\n", 0, offset) + 1
    return f"{line}:{offset - source.rfind(chr(10), 0, offset)}"


def answer_lines(diff: ExplanationDiff, lang: str = "en") -> list[str]:
    """The answer and its probability, old → new; a changed answer first."""
    t = templates(lang)
    old_p, new_p = format_prob(diff.old_prob), format_prob(diff.new_prob)
    old, new = diff.old_answer, diff.new_answer
    if diff.answer_changed:
        own_p = format_prob(diff.new_own_prob)
        lines = [
            t["answer_changed"].format(old=old, old_p=old_p, own=diff.new_own_answer, own_p=own_p)
        ]
        if diff.same_target:
            lines.append(t["old_target"].format(old=old, old_p=old_p, new_p=new_p))
        else:
            lines.append(t["own_targets"])
        return lines
    if not diff.same_target:
        return [t["answers"].format(old=old, old_p=old_p, new=new, new_p=new_p)]
    return [t["same_answer"].format(old=old, old_p=old_p, new_p=new_p)]


def mismatch_line(mismatch: Mismatch, lang: str = "en") -> str:
    """Why the part scores are not comparable: one thing the two explanations differ in."""
    t = templates(lang)
    old, new = mismatch.old, mismatch.new
    if mismatch.what in ("target", "foil"):
        return t[f"mismatch_{mismatch.what}"].format(old=old, new=new)
    what = t.get(f"what_{mismatch.what}", mismatch.what)
    return t["mismatch"].format(what=what, old=old, new=new)


def notes(diff: ExplanationDiff, lang: str = "en") -> list[str]:
    """What limits the comparison, beyond `answer_lines` (which already says that a changed
    answer scored against its own makes the scores not comparable)."""
    return [
        mismatch_line(m, lang)
        for m in diff.mismatches
        if not (m.what == "target" and diff.answer_changed)
    ]


def _flip(t: dict[str, str], part: PartChange) -> str:
    """A note when a part now pushes the other way."""
    a, b = part.old_score or 0.0, part.new_score or 0.0
    return t["flipped"] if a * b < 0 else ""


def _quote(t: dict[str, str], text: str, limit: int = QUOTE) -> str:
    return t["quote"].format(text=short(text, limit))


def _describe(
    t: dict[str, str], part: PartChange, old_source: str | None, new_source: str | None
) -> str:
    quoted = _quote(t, part.text)
    if part.status == "new":
        where = _where(new_source, part.new_start)
        return t["part_new"].format(part=quoted, where=where, new=_fmt(part.new_score))
    if part.status == "removed":
        where = _where(old_source, part.old_start)
        return t["part_removed"].format(part=quoted, where=where, old=_fmt(part.old_score))
    edited = ""
    if part.edited:
        edited = t["edited_from"].format(text=_quote(t, part.old_text or "", EDITED_QUOTE))
    return t["part_moved"].format(
        part=quoted,
        where=_where(new_source, part.new_start),
        edited=edited,
        status=t[f"status_{part.status}"],
        old=_fmt(part.old_score),
        new=_fmt(part.new_score),
        change=_fmt(part.change),
        flip=_flip(t, part),
    )


def _tally(t: dict[str, str], diff: ExplanationDiff) -> str:
    items = [
        t["tally_item"].format(n=n, status=t[f"status_{status}"])
        for status, n in diff.counts().items()
        if n
    ]
    return t["list_sep"].join(items)


def render_diff_text(
    diff: ExplanationDiff,
    old_source: str | None = None,
    new_source: str | None = None,
    top_k: int = 5,
    more: bool = True,
    lang: str = "en",
) -> str:
    """A few lines: the answer (a changed one first), what limits the comparison, then the
    `top_k` largest changes, a tally, and (with `more`) where the details are."""
    t = templates(lang)
    head = t["head"].format(method=diff.method, granularity=diff.granularity, model=diff.model)
    lines = [head, *answer_lines(diff, lang), *notes(diff, lang)]
    changes = diff.changes()
    if changes:
        lines.append(t["top"])
        for part in changes[: max(0, top_k)]:
            lines.append(f"  {MARK[part.status]} {_describe(t, part, old_source, new_source)}")
    else:
        lines.append(t["none_moved"].format(threshold=diff.threshold))
    passes = " + ".join(
        t["run"].format(n=n, run=t.get(f"run_{run}", run)) for run, n in diff.forward_passes.items()
    )
    lines.append(t["parts"].format(tally=_tally(t, diff), passes=passes))
    if more and len(changes) > top_k:
        left = len(changes) - top_k
        lines.append(t["more_change" if left == 1 else "more_changes"].format(n=left))
    elif more:
        lines.append(t["more"])
    return "\n".join(lines) + "\n"


def _md_code(text: str) -> str:
    """Text as inline code in a Markdown table cell."""
    text = short(text, TABLE_QUOTE).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def render_diff_markdown(
    diff: ExplanationDiff,
    old_source: str | None = None,
    new_source: str | None = None,
    title: str | None = None,
    limit: int = 30,
    lang: str = "en",
) -> str:
    """The diff for an editor: the answer first, then a table of the changed parts (largest
    change first, at most `limit`) and a tally."""
    t = templates(lang)
    out = [f"# {title or t['title']}", "", f"{diff.method} · {diff.granularity} · {diff.model}", ""]
    out += [f"- {line}" for line in [*answer_lines(diff, lang), *notes(diff, lang)]]
    out.append("")
    changes = diff.changes()
    if changes:
        out += [t["table_head"], "|---|---|---|---:|---:|---:|"]
        for part in changes[:limit]:
            if part.status == "removed":
                where = t["was_at"].format(where=_where(old_source, part.old_start))
            else:
                where = _where(new_source, part.new_start)
            label = (
                t[f"status_{part.status}"] + (t["edited"] if part.edited else "") + _flip(t, part)
            )
            out.append(
                f"| {MARK[part.status]} {label} | {_md_code(part.text)} | {where} | "
                f"{_fmt(part.old_score)} | {_fmt(part.new_score)} | {_fmt(part.change)} |"
            )
        if len(changes) > limit:
            left = len(changes) - limit
            out.append("\n" + t["not_shown_one" if left == 1 else "not_shown"].format(n=left))
    else:
        out.append(t["none_moved"].format(threshold=diff.threshold))
    out += ["", t["parts_md"].format(tally=_tally(t, diff))]
    return "\n".join(out) + "\n"
