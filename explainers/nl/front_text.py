"""The words of the front ends' own controls, in English and Chinese: the editor's code lenses
and hover link, and the chat's what-if paragraph (Markdown: the chat renders it). The
sentences about an explanation itself are `summary_text.py`'s and `describe.py`'s."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence

from promptxray.explainers.nl.figures import format_prob
from promptxray.explainers.nl.stage_text import stage_tag
from promptxray.explainers.nl.tables import quote_short, templates
from promptxray.explainers.types import Explanation

LENS_CHARS = 28  # an alternative answer in a code lens (read in a glance)
CHOICE_CHARS = 60  # in the chat's choices

FRONT_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "lens_result": "promptxray: {tag}{target} P={prob} · {method} · {seconds}s",
        "lens_foil": " · rather than {foil} P={prob}",
        "lens_state": "promptxray: {state}",
        "lens_reexplain": "Re-explain",
        "lens_explain_prompt": "promptxray: Explain this prompt",
        "lens_explain_with": "Explain with…",
        "lens_set_target": "Set target…",
        "lens_why_not": "Why not {foil} (P={prob})?",
        "alternative_choice": "{foil} (P={prob})",
        "alternatives_head": (
            "Why not …? The model's own alternative answers (P: the probability that its "
            "answer begins with the text), for --foil:"
        ),
        "alternatives_none": "Why not …? This model offers no alternative answers here.",
        "alternative_line": "  P={prob}  --foil {foil}",
        "lens_drop_foil": "drop the foil",
        "report_link": "Full report",
        "what_if_remove": "removing {word}",
        "what_if_replace": "replacing {word} by {replacement}",
        "what_if_same": "the same reply",
        "what_if_different": "a different reply",
        "what_if": (
            "**What if** ({action}): the edited message is “{edited}”.\n\n"
            "The model now gives {same}: “{reply}”.\n\n"
            "The probability of the old reply went from {before} to {after} "
            "(log P {before_log} → {after_log})."
        ),
    },
    "zh": {
        "lens_result": "promptxray：{tag}{target} P={prob} · {method} · {seconds} 秒",
        "lens_foil": " · 而不是 {foil} P={prob}",
        "lens_state": "promptxray：{state}",
        "lens_reexplain": "重新解释",
        "lens_explain_prompt": "promptxray：解释这个提示词",
        "lens_explain_with": "换方法解释…",
        "lens_set_target": "设定目标…",
        "lens_why_not": "为什么不是{foil}（P={prob}）？",
        "alternative_choice": "{foil}（P={prob}）",
        "alternatives_head": (
            "为什么不是…？模型自己的备选回答（P：它的回答以该文本开头的概率），可用于 --foil："
        ),
        "alternatives_none": "为什么不是…？此模型在这里没有可提供的备选回答。",
        "alternative_line": "  P={prob}  --foil {foil}",
        "lens_drop_foil": "去掉备选",
        "report_link": "完整报告",
        "what_if_remove": "删去 {word}",
        "what_if_replace": "把 {word} 换成 {replacement}",
        "what_if_same": "相同的回复",
        "what_if_different": "不同的回复",
        "what_if": (
            "**假如**（{action}）：修改后的消息是“{edited}”。\n\n"
            "模型现在给出{same}：“{reply}”。\n\n"
            "旧回复的概率从 {before} 变为 {after}"
            "（log P {before_log} → {after_log}）。"
        ),
    },
}


def front_words(lang: str = "en") -> dict[str, str]:
    """The front-end words of `lang`; an unknown language is a request error naming the known."""
    return templates(lang, FRONT_TEMPLATES)


def lens_title(expl: Explanation | None, state: str, lang: str = "en") -> str:
    """The code lens on a prompt's first line: the answer, its probability, the method and the
    time (and the foil, for a contrastive explanation), or the document's state before one."""
    t = front_words(lang)
    if expl is None:
        return t["lens_state"].format(state=state)
    title = t["lens_result"].format(
        tag=stage_tag(expl, lang),
        target=repr(expl.target.text),
        prob=format_prob(expl.target.prob),
        method=expl.method,
        seconds=f"{expl.wall_time_s:.1f}",
    )
    if expl.foil is not None:
        title += t["lens_foil"].format(foil=repr(expl.foil.text), prob=format_prob(expl.foil.prob))
    return title


def shown_alternative(foil: str, start: int, limit: int, lang: str = "en") -> str:
    """An alternative answer quoted for a short view: from `start` (the sentence where it
    departs from the answer, after "…" when that is not its beginning), cut to `limit`."""
    part = foil[start:] if 0 < start < len(foil) else foil
    lead = "…" if part is not foil else ""
    return quote_short(templates(lang), lead + part, limit)


def why_not_title(foil: str, prob: float, lang: str = "en", start: int = 0) -> str:
    """The code lens offering a contrastive explanation against the alternative answer
    `foil` (of probability `prob`; `start`: where the sentence it departs in starts): read in
    a glance, so the answer is quoted shortened."""
    t = front_words(lang)
    foil = shown_alternative(foil, start, LENS_CHARS, lang)
    return t["lens_why_not"].format(foil=foil, prob=format_prob(prob))


def alternative_choice(foil: str, prob: float, lang: str = "en", start: int = 0) -> str:
    """One of the chat's "why not …?" choices: the alternative answer quoted (as
    `shown_alternative`), its probability."""
    t = front_words(lang)
    foil = shown_alternative(foil, start, CHOICE_CHARS, lang)
    return t["alternative_choice"].format(foil=foil, prob=format_prob(prob))


def alternatives_text(alternatives: Sequence[tuple[str, float]], lang: str = "en") -> str:
    """The terminal's list of alternative answers (text, probability), best first, each as the
    `--foil` argument that explains the answer against it (quoted for a POSIX shell)."""
    t = front_words(lang)
    if not alternatives:
        return t["alternatives_none"]
    lines = [t["alternatives_head"]]
    lines += [
        t["alternative_line"].format(prob=format_prob(prob), foil=shlex.quote(text))
        for text, prob in alternatives
    ]
    return "\n".join(lines)


def what_if_action(word: str, replacement: str, lang: str = "en") -> str:
    """What a what-if edit does: removing `word`, or replacing it by `replacement`."""
    t = front_words(lang)
    if replacement:
        return t["what_if_replace"].format(word=repr(word), replacement=repr(replacement))
    return t["what_if_remove"].format(word=repr(word))


def what_if_text(
    action: str,
    edited: str,
    reply: str,
    same: bool,
    before: float,
    after: float,
    lang: str = "en",
) -> str:
    """The what-if result: the edited message, the model's new reply (the same or not) and the
    old reply's probability before and after the edit (`before`, `after`: log-probabilities).
    `edited` and `reply` come escaped for Markdown."""
    t = front_words(lang)
    return t["what_if"].format(
        action=action,
        edited=edited,
        same=t["what_if_same" if same else "what_if_different"],
        reply=reply,
        before=format_prob(math.exp(before)),
        after=format_prob(math.exp(after)),
        before_log=f"{before:.2f}",
        after_log=f"{after:.2f}",
    )
