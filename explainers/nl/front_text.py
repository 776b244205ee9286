"""The words of the front ends' own controls, in English and Chinese: the editor's code lenses
and hover link, and the chat's what-if paragraph (Markdown: the chat renders it). The
sentences about an explanation itself are `summary_text.py`'s and `describe.py`'s."""

from __future__ import annotations

import math

from promptxray.explainers.nl.figures import format_prob
from promptxray.explainers.nl.stage_text import stage_tag
from promptxray.explainers.nl.tables import templates
from promptxray.explainers.types import Explanation

FRONT_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "lens_result": "promptxray: {tag}{target} P={prob} · {method} · {seconds}s",
        "lens_foil": " · rather than {foil} P={prob}",
        "lens_state": "promptxray: {state}",
        "lens_reexplain": "Re-explain",
        "lens_explain_prompt": "promptxray: Explain this prompt",
        "lens_explain_with": "Explain with…",
        "lens_set_target": "Set target…",
        "lens_why_not": "why not {foil}?",
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
        "lens_why_not": "为什么不是 {foil}？",
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


def why_not_title(foil: str, lang: str = "en") -> str:
    """The code lens offering a contrastive explanation against `foil`."""
    return front_words(lang)["lens_why_not"].format(foil=repr(foil))


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
