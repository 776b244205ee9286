"""Every sentence about a prompt's checks once they are checked (`promptxray check`, the
server's diagnostics), in English and Chinese: each result's evidence, the settings a shown
explanation was made with, a file's header and the run's summary. Messages about invalid
check syntax stay where they are found (explainers/checks/load.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptxray.explainers.nl.describe import templates as describe_templates
from promptxray.explainers.nl.figures import format_prob, format_signed

if TYPE_CHECKING:  # the checks package's data (imported only for types: no import cycle)
    from promptxray.explainers.checks.spec import CheckSpec, Evidence
    from promptxray.explainers.types import Explanation

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "said": "answer {answer!r} (P={prob})",
        "contains": "{said} contains {wanted!r}",
        "not_contains": "{said} does not contain {wanted!r}",
        "probability": "P(answer)={prob} {relation} {floor:g}; answer {answer!r}",
        "figures": (
            "effect {effect} ({score_kind}, {method}/{granularity}), "
            "share {share:.0%} of the total |effect|, {spans}"
        ),
        "span": "{n} span",
        "spans": "{n} spans",
        "no_overlap": "no span of the explanation overlaps {part}",
        "needs_nats": (
            "no_effect needs scores in nats (removal or estimate methods); {method} "
            "gives {score_kind} scores: {figures}"
        ),
        "no_effect": "{figures}; |effect| {relation} {threshold:g} nats",
        "share": "{figures}; share {share:.1%} {relation} {floor:.0%}",
        "invalid": "invalid check: {message}",
        "failed": "check failed: {assertion} — {detail}{note}",
        "cannot": "cannot check: {assertion} — {detail}{note}",
        "shown_with": " (on the explanation shown: {items})",
        "other_method": "method {used}, not {asked}",
        "other_granularity": "granularity {used}, not {asked}",
        "other_length": "{used} answer tokens, not {asked}",
        "set_target": "a set target, not the model's answer",
        "sep": "; ",
        "file_head": "{path}: answer {answer!r} P={prob} · {method} · {granularity} · {seconds} s",
        "ok": "OK",
        "failed_run": "FAILED",
        "summary": (
            "promptxray check: {verdict}: {tests} checks in {files}: "
            "{passed} passed, {failures} failed, {errors} errors"
        ),
        "file": "{n} file",
        "files": "{n} files",
    },
    "zh": {
        "said": "回答“{answer}”（P={prob}）",
        "contains": "{said}包含“{wanted}”",
        "not_contains": "{said}不包含“{wanted}”",
        "probability": "P(回答)={prob} {relation} {floor:g}；回答“{answer}”",
        "figures": (
            "效应 {effect}（{score_kind}，{method}/{granularity}），"
            "占总 |效应| 的 {share:.0%}，{spans}"
        ),
        "span": "{n} 个片段",
        "spans": "{n} 个片段",
        "no_overlap": "解释中没有任何片段与 {part} 重叠",
        "needs_nats": (
            "no_effect 需要以 nats 为单位的得分（removal 或 estimate 类方法）；"
            "{method} 给出的是 {score_kind} 得分：{figures}"
        ),
        "no_effect": "{figures}；|效应| {relation} {threshold:g} nats",
        "share": "{figures}；占比 {share:.1%} {relation} {floor:.0%}",
        "invalid": "无效的检查：{message}",
        "failed": "检查未通过：{assertion} — {detail}{note}",
        "cannot": "无法检查：{assertion} — {detail}{note}",
        "shown_with": "（基于所显示的解释：{items}）",
        "other_method": "方法为 {used} 而非 {asked}",
        "other_granularity": "粒度为 {used} 而非 {asked}",
        "other_length": "回答有 {used} 个词元而非 {asked} 个",
        "set_target": "目标为指定文本而非模型自己的回答",
        "sep": "；",
        "file_head": "{path}：回答“{answer}” P={prob} · {method} · {granularity} · {seconds} 秒",
        "ok": "通过",
        "failed_run": "未通过",
        "summary": (
            "promptxray check：{verdict}：{files}中共 {tests} 项检查："
            "{passed} 项通过，{failures} 项未通过，{errors} 项出错"
        ),
        "file": "{n} 个文件",
        "files": "{n} 个文件",
    },
}


def templates(lang: str) -> dict[str, str]:
    """The checks' template table of `lang` (an unknown language: the error `nl` raises)."""
    describe_templates(lang)
    return TEMPLATES[lang]


def _relation(ok: bool, passing: str, failing: str) -> str:
    return passing if ok else failing


def contains_detail(evidence: Evidence, wanted: str, ok: bool, lang: str = "en") -> str:
    """answer_contains: the answer, its probability, and whether it contains `wanted`."""
    t = templates(lang)
    said = t["said"].format(answer=evidence.answer, prob=format_prob(evidence.probability))
    return t["contains" if ok else "not_contains"].format(said=said, wanted=wanted)


def probability_detail(evidence: Evidence, floor: float, ok: bool, lang: str = "en") -> str:
    """min_probability: P(answer) against its floor."""
    return templates(lang)["probability"].format(
        prob=format_prob(evidence.probability),
        relation=_relation(ok, ">=", "<"),
        floor=floor,
        answer=evidence.answer,
    )


def _figures(t: dict[str, str], expl: Explanation, evidence: Evidence) -> str:
    n = evidence.spans
    return t["figures"].format(
        effect=format_signed(evidence.effect or 0.0),
        score_kind=expl.score_kind,
        method=expl.method,
        granularity=expl.granularity,
        share=evidence.share or 0.0,
        spans=t["span" if n == 1 else "spans"].format(n=n),
    )


def no_overlap_detail(part: str, lang: str = "en") -> str:
    """Why a part cannot be checked: no span of the explanation overlaps it."""
    return templates(lang)["no_overlap"].format(part=part)


def needs_nats_detail(expl: Explanation, evidence: Evidence, lang: str = "en") -> str:
    """Why no_effect cannot be checked on this explanation: its scores are not in nats."""
    t = templates(lang)
    return t["needs_nats"].format(
        method=expl.method, score_kind=expl.score_kind, figures=_figures(t, expl, evidence)
    )


def no_effect_detail(
    expl: Explanation, evidence: Evidence, threshold: float, ok: bool, lang: str = "en"
) -> str:
    """no_effect: the part's effect and share against the threshold (nats)."""
    t = templates(lang)
    return t["no_effect"].format(
        figures=_figures(t, expl, evidence), relation=_relation(ok, "<", ">="), threshold=threshold
    )


def share_detail(
    expl: Explanation, evidence: Evidence, floor: float, ok: bool, lang: str = "en"
) -> str:
    """min_share: the part's share of the total |effect| against its floor."""
    t = templates(lang)
    return t["share"].format(
        figures=_figures(t, expl, evidence),
        share=evidence.share or 0.0,
        relation=_relation(ok, ">=", "<"),
        floor=floor,
    )


def invalid_line(message: str, lang: str = "en") -> str:
    """An invalid check, as a report line or a diagnostic says it."""
    return templates(lang)["invalid"].format(message=message)


def result_line(status: str, assertion: str, detail: str, note: str = "", lang: str = "en") -> str:
    """A failed ("fail") or uncheckable ("error") assertion as a diagnostic says it."""
    t = templates(lang)
    key = "failed" if status == "fail" else "cannot"
    return t[key].format(assertion=assertion, detail=detail, note=note)


def settings_note(spec: CheckSpec, expl: Explanation, lang: str = "en") -> str:
    """Where the shown explanation was made with other settings than the checks ask for (its
    figures may then differ from `promptxray check`'s); "" when none differ."""
    t = templates(lang)
    differ = []
    if spec.method and spec.method not in (expl.method, "auto"):
        differ.append(t["other_method"].format(used=expl.method, asked=spec.method))
    if spec.granularity and spec.granularity != expl.granularity:
        differ.append(t["other_granularity"].format(used=expl.granularity, asked=spec.granularity))
    if spec.max_new_tokens and spec.max_new_tokens < len(expl.target.tokens):
        differ.append(
            t["other_length"].format(used=len(expl.target.tokens), asked=spec.max_new_tokens)
        )
    if not expl.target.generated:
        differ.append(t["set_target"])
    return t["shown_with"].format(items=t["sep"].join(differ)) if differ else ""


def file_head(path: str, expl: Explanation, seconds: float, lang: str = "en") -> str:
    """A checked file's header line: its answer, the method and granularity, the time."""
    return templates(lang)["file_head"].format(
        path=path,
        answer=expl.target.text,
        prob=format_prob(expl.target.prob),
        method=expl.method,
        granularity=expl.granularity,
        seconds=f"{seconds:.1f}",
    )


def summary_line(counts: dict[str, int], files: int, lang: str = "en") -> str:
    """The run's last line: OK or FAILED, and how many checks passed, failed or errored
    (`counts`: tests, passed, failures, errors)."""
    t = templates(lang)
    verdict = t["failed_run"] if counts["failures"] or counts["errors"] else t["ok"]
    files_text = t["file" if files == 1 else "files"].format(n=files)
    return t["summary"].format(verdict=verdict, files=files_text, **counts)
