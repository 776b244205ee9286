"""The words about how an `auto` result was reached, in English and Chinese: why method "auto"
chose its method (`AutoReport`), and what granularity "auto" left unrefined and why
(`HierarchyInfo.pruned`). The data carries the figures; only this module words them."""

from __future__ import annotations

from promptxray.explainers.details import AutoReport, HierarchyInfo, Pruning
from promptxray.explainers.nl.tables import templates

AUTO_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "chosen": (
            "{method} was the most faithful on this prompt: comprehensiveness − sufficiency "
            "{score} nats"
        ),
        "versus": " (vs {others})",
        "tried": "; {n} method(s) tried in {elapsed} s of a {budget} s budget",
        "skipped_time": "; skipped for time: {names}",
        "skipped_memory": "; skipped for memory: {names}",
        "names_sep": ", ",
        "level_line": "line",
        "level_word": "word",
        "pruned_floor": "{n} {level}(s) not refined: no measurable effect (|Δ log P| under "
        "{bound} nats)",
        "pruned_cover": "{n} {level}(s) not refined: outside the top {level}s that hold "
        "{share} of the effect",
        "pruned_limit": "{n} {level}(s) not refined: beyond the limit of {limit} {level}s "
        "(option refine_{level}s)",
        "pruned_budget": "{n} {level}(s) not refined: over the time budget ({bound}× the line "
        "pass; option refine_budget)",
    },
    "zh": {
        "chosen": "{method} 在此提示上最忠实：comprehensiveness − sufficiency 为 {score} 奈特",
        "versus": "（对比 {others}）",
        "tried": "；在 {budget} 秒的预算中用 {elapsed} 秒尝试了 {n} 个方法",
        "skipped_time": "；因时间跳过：{names}",
        "skipped_memory": "；因内存跳过：{names}",
        "names_sep": "、",
        "level_line": "行",
        "level_word": "词",
        "pruned_floor": "{n} 个{level}未细化：没有可测量的影响（|Δ log P| 小于 {bound} 奈特）",
        "pruned_cover": "{n} 个{level}未细化：不在占影响 {share} 的前几个{level}之内",
        "pruned_limit": "{n} 个{level}未细化：超出 {limit} 个{level}的上限"
        "（选项 refine_{level_en}s）",
        "pruned_budget": "{n} 个{level}未细化：超出时间预算（行级计算的 {bound} 倍；"
        "选项 refine_budget）",
    },
}


def _table(lang: str) -> dict[str, str]:
    templates(lang)  # an unknown language: the error every nl function raises
    return AUTO_TEMPLATES[lang]


def auto_reason(report: AutoReport, lang: str = "en") -> str:
    """Why method "auto" chose its method: its faithfulness against the others', how many it
    tried in how long of its budget, and what it skipped for time or memory."""
    t = _table(lang)
    scores = {str(c["method"]): float(c["score"]) for c in report.candidates}
    text = t["chosen"].format(method=report.chosen, score=f"{scores.get(report.chosen, 0.0):.3f}")
    others = [f"{name} {score:.3f}" for name, score in scores.items() if name != report.chosen]
    if others:
        text += t["versus"].format(others=t["names_sep"].join(others))
    text += t["tried"].format(
        n=len(report.candidates), elapsed=f"{report.elapsed_s:.1f}", budget=f"{report.budget_s:g}"
    )
    if report.skipped:
        text += t["skipped_time"].format(names=t["names_sep"].join(report.skipped))
    if report.skipped_memory:
        text += t["skipped_memory"].format(names=t["names_sep"].join(report.skipped_memory))
    return text


def pruning_line(pruning: Pruning, lang: str = "en") -> str:
    """One sentence: how many lines or words refinement left unsplit, and by which rule."""
    t = _table(lang)
    return t[f"pruned_{pruning.rule}"].format(
        n=pruning.count,
        level=t.get(f"level_{pruning.level}", pruning.level),
        level_en=pruning.level,
        bound=f"{pruning.bound:g}",
        share=f"{pruning.bound:.0%}",
        limit=int(pruning.bound),
    )


def pruning_lines(info: HierarchyInfo, lang: str = "en") -> list[str]:
    """What granularity "auto" left unrefined and why, one sentence per rule and level."""
    return [pruning_line(p, lang) for p in info.pruned]
