"""Every sentence about which edit broke a check (`checks.blame`: `promptxray check --since`,
the server's diffWithSaved), in English and Chinese: a one-sentence verdict that names the
responsible hunks by their lines and text, then what was tried (each hunk reverted alone,
together, the older version) and what it cost; as plain text lines or Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptxray.explainers.nl import tables
from promptxray.explainers.nl.figures import format_prob, short

if TYPE_CHECKING:  # the checks package's data (imported only for types: no import cycle)
    from promptxray.explainers.checks.blame import Blame, Trial
    from promptxray.explainers.diff.hunks import Hunk

QUOTE = 40  # the longest quote of a hunk's text

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "line": "line {a}",
        "lines": "lines {a}–{b}",
        "added": "{new} added",
        "removed": "{old} removed",
        "changed": "{old} → {new}",
        "quote": "'{text}'",
        "blank": "a blank line",
        "edit": "the edit at {where} ({what})",
        "and": " and ",
        "sep": ", ",
        "alone_one": (
            "The check fails because of {edit}: reverting it alone makes {checks} pass again."
        ),
        "alone_many": (
            "The check fails because of each of {n} edits: {edits}; reverting any one of them "
            "alone makes {checks} pass again."
        ),
        "together": (
            "No single edit is to blame: reverting {edits} together makes {checks} pass again "
            "(each alone does not)."
        ),
        "whole": (
            "The edit's {n} hunks could not be separated: only reverting all of them (the "
            "version at {since}) makes {checks} pass again."
        ),
        "already_failed": ("{checks} already failed at {since}: nothing in the edit to blame."),
        "no_edit": "The file is the same as at {since}: no edit to blame.",
        "inseparable": (
            "Reverting {edit} alone leaves a prompt that cannot be checked ({error}); it was "
            "tried only together with others."
        ),
        "tried_alone": "{n} hunks since {since}, each reverted alone:",
        "tried_one": "1 hunk since {since}, reverted:",
        "tried_together": "reverted together ({edits}):",
        "tried_old": "the version at {since} (every hunk reverted):",
        "passes": "passes",
        "fails": "still fails",
        "cannot": "cannot be checked: {error}",
        "said": "answer {answer!r} (P={prob})",
        "cost": (
            "cost: {answers} variants run ({generations} answers or explanations generated), "
            "{passes} forward passes, {seconds:.1f} s"
        ),
        "saved": "the saved version",
        "md_title": "Why the check fails now",
        "md_details": "What was tried",
    },
    "zh": {
        "line": "第 {a} 行",
        "lines": "第 {a}–{b} 行",
        "added": "添加了{new}",
        "removed": "删除了{old}",
        "changed": "{old} → {new}",
        "quote": "“{text}”",
        "blank": "一个空行",
        "edit": "{where}的修改（{what}）",
        "and": "和",
        "sep": "、",
        "alone_one": "检查未通过是因为{edit}：单独撤销这处修改，{checks} 就会重新通过。",
        "alone_many": (
            "检查未通过是因为 {n} 处修改中的每一处：{edits}；单独撤销其中任意一处，"
            "{checks} 就会重新通过。"
        ),
        "together": (
            "没有哪一处修改单独负责：同时撤销{edits}，{checks} 才会重新通过"
            "（单独撤销任何一处都不行）。"
        ),
        "whole": (
            "这次修改的 {n} 处改动无法分开：只有全部撤销（即 {since} 的版本），"
            "{checks} 才会重新通过。"
        ),
        "already_failed": "{checks} 在 {since} 时就已未通过：这次修改没有可归咎之处。",
        "no_edit": "文件与 {since} 时相同：没有可归咎的修改。",
        "inseparable": (
            "单独撤销{edit}会得到无法检查的提示词（{error}）；它只与其他修改一起尝试过。"
        ),
        "tried_alone": "自 {since} 以来共 {n} 处改动，逐一单独撤销：",
        "tried_one": "自 {since} 以来共 1 处改动，已撤销：",
        "tried_together": "同时撤销（{edits}）：",
        "tried_old": "{since} 的版本（撤销全部改动）：",
        "passes": "通过",
        "fails": "仍未通过",
        "cannot": "无法检查：{error}",
        "said": "回答“{answer}”（P={prob}）",
        "cost": (
            "开销：运行了 {answers} 个变体（生成了 {generations} 次回答或解释），"
            "{passes} 次前向计算，{seconds:.1f} 秒"
        ),
        "saved": "已保存的版本",
        "md_title": "检查现在为何未通过",
        "md_details": "尝试了哪些变体",
    },
}


def templates(lang: str) -> dict[str, str]:
    """The blame template table of `lang` (an unknown language: the error `nl` raises)."""
    return tables.templates(lang, TEMPLATES)


def saved_label(lang: str = "en") -> str:
    """What the language server calls the version it compares with."""
    return templates(lang)["saved"]


def _quote(t: dict[str, str], text: str) -> str:
    first = _first(text)
    return t["quote"].format(text=short(first, QUOTE)) if first else t["blank"]


def _first(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _changed(t: dict[str, str], old: str, new: str) -> tuple[str, str]:
    """Quotes of a changed line's old and new text from where they start to differ (after
    "…" when a long common beginning is left out), so the change itself shows."""
    a, b = " ".join(_first(old).split()), " ".join(_first(new).split())
    same = 0
    while same < min(len(a), len(b)) and a[same] == b[same]:
        same += 1
    cut = a.rfind(" ", 0, same) + 1 if same > QUOTE // 2 else 0
    if cut == 0:
        return _quote(t, old), _quote(t, new)
    return (
        t["quote"].format(text="…" + short(a[cut:], QUOTE)) if a else t["blank"],
        t["quote"].format(text="…" + short(b[cut:], QUOTE)) if b else t["blank"],
    )


def where(hunk: Hunk, lang: str = "en") -> str:
    """The hunk's lines in the new file: "line 3" or "lines 12–14"."""
    t = templates(lang)
    a, b = hunk.lines
    return t["line"].format(a=a) if a == b else t["lines"].format(a=a, b=b)


def edit(hunk: Hunk, lang: str = "en") -> str:
    """The hunk as a phrase: "the edit at lines 12–14 ('Answer in French' added)"."""
    t = templates(lang)
    old, new = _quote(t, hunk.old_text), _quote(t, hunk.new_text)
    if hunk.kind == "changed":
        old, new = _changed(t, hunk.old_text, hunk.new_text)
    what = t[hunk.kind].format(old=old, new=new)
    return t["edit"].format(where=where(hunk, lang), what=what)


def _edits(t: dict[str, str], blame: Blame, indices: tuple[int, ...], lang: str) -> str:
    phrases = [edit(blame.hunks[i], lang) for i in indices]
    if len(phrases) <= 1:
        return "".join(phrases)
    return t["sep"].join(phrases[:-1]) + t["and"] + phrases[-1]


def _checks(blame: Blame) -> str:
    return ", ".join(f"`{a.text}`" for a in blame.failing)


def verdict(blame: Blame, lang: str = "en") -> str:
    """The one sentence: which edit broke the check, or why none is to blame."""
    t = templates(lang)
    checks, since = _checks(blame), blame.since
    if blame.verdict == "no_edit":
        return t["no_edit"].format(since=since)
    if blame.verdict == "already_failed":
        return t["already_failed"].format(checks=checks, since=since)
    if blame.verdict == "whole":
        return t["whole"].format(n=len(blame.hunks), since=since, checks=checks)
    edits = _edits(t, blame, blame.responsible, lang)
    if blame.verdict == "together":
        return t["together"].format(edits=edits, checks=checks)
    if len(blame.responsible) == 1:
        return t["alone_one"].format(edit=edits, checks=checks)
    return t["alone_many"].format(n=len(blame.responsible), edits=edits, checks=checks)


def notes(blame: Blame, lang: str = "en") -> list[str]:
    """A sentence for each hunk that could not be reverted alone (the prompt it leaves cannot
    be read or checked)."""
    t = templates(lang)
    return [
        t["inseparable"].format(edit=edit(blame.hunks[i], lang), error=short(trial.error, 80))
        for i, trial in enumerate(blame.alone)
        if trial.error is not None and len(blame.hunks) > 1
    ]


def _outcome(t: dict[str, str], trial: Trial) -> str:
    if trial.error is not None:
        return t["cannot"].format(error=short(trial.error, 80))
    state = t["passes" if trial.passed else "fails"]
    if trial.answer is None:
        return state
    said = t["said"].format(answer=trial.answer.text, prob=format_prob(trial.answer.prob))
    return f"{state} — {said}"


def tried(blame: Blame, lang: str = "en") -> list[str]:
    """What was run, one line a variant: each hunk alone, the greedy steps, the combination,
    the older version; then the cost."""
    t = templates(lang)
    lines: list[str] = []
    if blame.verdict not in ("already_failed", "no_edit"):
        n = len(blame.hunks)
        key = "tried_alone" if n > 1 else "tried_one"
        lines.append(t[key].format(n=n, since=blame.since))
        for hunk, trial in zip(blame.hunks, blame.alone, strict=False):
            lines.append(f"  {edit(hunk, lang)}: {_outcome(t, trial)}")
        steps = list(blame.searched)
        extra = blame.together
        if extra is not None and extra is not blame.old and all(x is not extra for x in steps):
            steps.append(extra)
        for step in steps:
            edits = t["sep"].join(where(blame.hunks[i], lang) for i in step.reverted)
            lines.append(f"{t['tried_together'].format(edits=edits)} {_outcome(t, step)}")
    lines.append(f"{t['tried_old'].format(since=blame.since)} {_outcome(t, blame.old)}")
    lines.append(
        t["cost"].format(
            answers=blame.answers,
            generations=blame.generations,
            passes=blame.forward_passes,
            seconds=blame.seconds,
        )
    )
    return lines


def blame_lines(blame: Blame, lang: str = "en") -> list[str]:
    """The verdict, the notes, then what was tried (the text report and JUnit's body)."""
    return [verdict(blame, lang), *notes(blame, lang), *tried(blame, lang)]


def blame_markdown(blame: Blame, lang: str = "en") -> str:
    """A Markdown section: the verdict up front (read in three seconds), what was tried one
    click away (a <details> block)."""
    t = templates(lang)
    out = [f"## {t['md_title']}", "", f"**{verdict(blame, lang)}**", ""]
    out += [f"- {line}" for line in notes(blame, lang)]
    out += ["<details>", f"<summary>{t['md_details']}</summary>", "", "```text"]
    out += tried(blame, lang)
    out += ["```", "", "</details>", ""]
    return "\n".join(out)
