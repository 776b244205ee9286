"""Plain-language summaries of an `Explanation`, and a check of the model's own account of it.

`describe` turns the measured numbers into a few sentences (English or Chinese, from template
tables) and says nothing the numbers do not show. `self_explain` asks the model which words made
it answer as it did and checks each word it names against the measured attributions, since a
model's account of itself is a claim to test, not an explanation.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.render import format_prob
from promptxray.explainers.targets import check_context
from promptxray.explainers.types import Explanation, Span

LANGUAGES: tuple[str, ...] = ("en", "zh")
NO_EFFECT_RELATIVE = 0.05  # |score| below this fraction of the largest |score|: no effect
MAX_NO_EFFECT_NAMED = 3
SUPPORT_FRACTION = 0.2  # self-explanation: the top max(3, 20% of spans) drivers count
SUPPORT_MIN = 3

# Methods whose unit score is the measured drop in the answer's log-probability when that unit
# alone is removed. Every other method's score is reported as a score of that method.
REMOVAL_METHODS = frozenset({"occlusion", "counterfactual"})
# Methods whose scores carry no sign: a large score is influence, not support for the answer.
UNSIGNED_METHODS = frozenset({"saliency", "attention", "attention_rollout"})

# Figures in Explanation.metrics that `describe` reads, in the order it states them, with how
# each is formatted: "prob" (format_prob, a probability change whose sign is in the wording),
# "p" (format_prob), "value" (format_value) or "count" (an integer).
FIGURES: dict[str, str] = {
    "comprehensiveness": "prob",
    "sufficiency": "prob",
    "deletion_auc": "p",
    "insertion_auc": "p",
    "comprehensiveness_logprob": "value",
    "sufficiency_logprob": "value",
    "surrogate_r2": "value",
    "surrogate_lds": "value",
    "shapley_efficiency_gap": "value",
    "completeness_error": "value",
    "completeness_relative_error": "value",
    "ig_completeness_gap": "value",
    "counterfactuals_found": "count",
    "counterfactual_min_edits": "count",
}
# Bookkeeping a method reports next to its figures (sample counts, inputs to a figure above):
# not a statement about faithfulness, so not stated.
BOOKKEEPING = frozenset(
    {
        "f_input_minus_f_baseline",
        "shapley_exact",
        "shapley_samples",
        "surrogate_samples",
        "counterfactual_candidates_checked",
    }
)

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "quote": '"{text}"',
        "sep": "; ",
        "list_sep": ", ",
        "target": (
            "The model's answer {target} has probability {prob} "
            "(log-probability {logprob}; {method} on {model}, {granularity} level)."
        ),
        "auto": (
            "The method was chosen automatically from {n} tried, as the most faithful by "
            "comprehensiveness minus sufficiency (in log-probability)."
        ),
        "drivers": "Top drivers: {items}.",
        "unsigned_drivers": "Highest scores: {items}.",
        "no_drivers": "No part of the prompt raises the answer measurably.",
        "against": "Pushing against the answer: {items}.",
        "no_against": "No part of the prompt pushes measurably against the answer.",
        "unsigned": (
            "{method} scores are unsigned: they do not say whether a part raises or lowers "
            "the answer."
        ),
        "removal_pos": "removing {span} lowers the answer's log-probability by {value}",
        "removal_neg": "removing {span} raises the answer's log-probability by {value}",
        "removal_pos_more": "removing {span} lowers it by {value}",
        "removal_neg_more": "removing {span} raises it by {value}",
        "score_item": "{span} score {value} ({method})",
        "score_item_more": "{span} score {value}",
        "score_note": (
            "These are {method} scores, not the measured effect of removing each part alone."
        ),
        "no_effect": (
            "No measurable effect (|score| under {pct}% of the largest): "
            "{count} of {total} parts{named}."
        ),
        "no_effect_named": ", e.g. {items}",
        "no_effect_none": "Every part has a measurable effect ({total} parts).",
        "all_zero": "Every score is zero: the method found no effect of any of the {total} parts.",
        "faith": "Faithfulness: {items}.",
        "faith_none": "No faithfulness figures were computed for this explanation.",
        "top_bins": "the top-ranked {bins} of the prompt",
        "top_parts": "the top-ranked parts of the prompt",
        "comprehensiveness_logprob": (
            "in log-probability, removing the top-ranked parts lowers it by {value} on average"
        ),
        "sufficiency_logprob": (
            "in log-probability, keeping only the top-ranked parts lowers it by {value} on average"
        ),
        "comprehensiveness_pos": (
            "removing {parts} lowers the answer's probability by {value} on average "
            "(comprehensiveness; higher = more faithful)"
        ),
        "comprehensiveness_neg": (
            "removing {parts} raises the answer's probability by {value} on average "
            "(comprehensiveness; higher = more faithful)"
        ),
        "sufficiency_pos": (
            "keeping only {parts} lowers the answer's probability by {value} on average "
            "(sufficiency; lower = more faithful)"
        ),
        "sufficiency_neg": (
            "keeping only {parts} raises the answer's probability by {value} on average "
            "(sufficiency; lower = more faithful)"
        ),
        "deletion_auc": (
            "removing parts from the top-ranked down, the answer's probability averages "
            "{value} (deletion AUC; lower = more faithful)"
        ),
        "insertion_auc": (
            "adding parts back from the top-ranked down, the answer's probability averages "
            "{value} (insertion AUC; higher = more faithful)"
        ),
        "surrogate_r2": "the surrogate predicts held-out ablations with R² = {value}",
        "surrogate_lds": "its rank correlation with them is {value} (LDS)",
        "shapley_efficiency_gap": (
            "the Shapley values' sum misses the full change by {value} (efficiency gap)"
        ),
        "completeness_error": (
            "the scores' sum misses the log-probability change from the baseline by {value} "
            "(completeness error)"
        ),
        "completeness_relative_error": (
            "the miss is {value} of that change (relative completeness error)"
        ),
        "ig_completeness_gap": (
            "the scores' sum misses the log-probability change from the baseline by {value} "
            "(completeness gap)"
        ),
        "counterfactuals_found": "{value} verified edits change the model's answer",
        "counterfactual_min_edits": "the smallest of them touches {value} part(s)",
        "other_metric": "{name} = {value}",
        # self-explanation
        "question": "Which words of my message made you answer that way? List them in quotes.",
        "se_head": "Asked which words made it answer that way, the model said: {answer}",
        "se_none": "It named no words of the prompt.",
        "se_supported": "{span}: supported — it overlaps {matched}, among the top {k} drivers",
        "se_not_supported": "{span}: not supported by the measured attributions{score}",
        "se_score": " (score {value})",
        "se_not_in_prompt": "{span}: not in the prompt",
        "se_summary": "{supported} of {checked} named parts of the prompt are supported.",
    },
    "zh": {
        "quote": "“{text}”",
        "sep": "；",
        "list_sep": "、",
        "target": (
            "模型的回答{target}的概率为 {prob}"
            "（对数概率 {logprob}；方法 {method}，模型 {model}，粒度 {granularity}）。"
        ),
        "auto": (
            "该方法是从尝试的 {n} 个方法中自动选出的，"
            "按 comprehensiveness 减 sufficiency（以对数概率计）最忠实。"
        ),
        "drivers": "主要驱动：{items}。",
        "unsigned_drivers": "得分最高：{items}。",
        "no_drivers": "提示中没有任何部分可测地提高该回答。",
        "against": "与回答相反的部分：{items}。",
        "no_against": "提示中没有任何部分可测地压低该回答。",
        "unsigned": "{method} 的得分没有正负：它不表明某部分是提高还是压低回答。",
        "removal_pos": "删去{span}使回答的对数概率降低 {value}",
        "removal_neg": "删去{span}使回答的对数概率升高 {value}",
        "removal_pos_more": "删去{span}使其降低 {value}",
        "removal_neg_more": "删去{span}使其升高 {value}",
        "score_item": "{span}得分 {value}（{method}）",
        "score_item_more": "{span}得分 {value}",
        "score_note": "这些是 {method} 的得分，并非单独删去各部分的实测效果。",
        "no_effect": (
            "无可测效果（|得分| 低于最大值的 {pct}%）：{total} 个部分中有 {count} 个{named}。"
        ),
        "no_effect_named": "，例如{items}",
        "no_effect_none": "每个部分都有可测效果（共 {total} 个部分）。",
        "all_zero": "所有得分均为零：该方法未发现 {total} 个部分中任何一个有效果。",
        "faith": "忠实度：{items}。",
        "faith_none": "此解释未计算忠实度指标。",
        "top_bins": "排名前 {bins} 的部分",
        "top_parts": "排名靠前的部分",
        "comprehensiveness_logprob": "以对数概率计，删去排名靠前的部分平均降低 {value}",
        "sufficiency_logprob": "以对数概率计，只保留排名靠前的部分平均降低 {value}",
        "comprehensiveness_pos": (
            "删去{parts}平均使回答的概率降低 {value}（comprehensiveness，越高越忠实）"
        ),
        "comprehensiveness_neg": (
            "删去{parts}平均使回答的概率升高 {value}（comprehensiveness，越高越忠实）"
        ),
        "sufficiency_pos": ("只保留{parts}平均使回答的概率降低 {value}（sufficiency，越低越忠实）"),
        "sufficiency_neg": ("只保留{parts}平均使回答的概率升高 {value}（sufficiency，越低越忠实）"),
        "deletion_auc": (
            "从排名最高处起逐步删除，回答的概率平均为 {value}（deletion AUC，越低越忠实）"
        ),
        "insertion_auc": (
            "从排名最高处起逐步加回，回答的概率平均为 {value}（insertion AUC，越高越忠实）"
        ),
        "surrogate_r2": "代理模型预测留出消融的 R² = {value}",
        "surrogate_lds": "与其秩相关为 {value}（LDS）",
        "shapley_efficiency_gap": "Shapley 值之和与总变化相差 {value}（efficiency gap）",
        "completeness_error": (
            "得分之和与相对基线的对数概率变化相差 {value}（completeness error）"
        ),
        "completeness_relative_error": "差值为该变化的 {value}（相对 completeness error）",
        "ig_completeness_gap": ("得分之和与相对基线的对数概率变化相差 {value}（completeness gap）"),
        "counterfactuals_found": "{value} 个经验证的编辑会改变模型的回答",
        "counterfactual_min_edits": "其中最小的改动 {value} 个部分",
        "other_metric": "{name} = {value}",
        "question": "我的消息中哪些词让你这样回答？请用引号列出它们。",
        "se_head": "被问及哪些词让它这样回答时，模型说：{answer}",
        "se_none": "它没有说出提示中的任何词。",
        "se_supported": "{span}：有依据——与{matched}重合，属于前 {k} 个主要驱动",
        "se_not_supported": "{span}：实测归因不支持{score}",
        "se_score": "（得分 {value}）",
        "se_not_in_prompt": "{span}：不在提示中",
        "se_summary": "在提示中被点名的 {checked} 个部分里，有 {supported} 个有依据。",
    },
}


def _templates(lang: str) -> dict[str, str]:
    """The template table of `lang`; an unknown language is a request error naming the known."""
    table = TEMPLATES.get(lang)
    if table is None:
        raise InvalidRequestError(
            f"unknown language {lang!r}; supported languages: {', '.join(LANGUAGES)}"
        )
    return table


def format_value(x: float) -> str:
    """A score or figure with three fixed decimals (scientific when smaller than 0.001, so it
    does not read 0); the text and the tests both format numbers with this."""
    if not math.isfinite(x):
        return str(x)
    if x == 0.0 or abs(x) >= 1e-3:
        return f"{x:.3f}"
    return f"{x:.2e}"


def format_signed(x: float) -> str:
    """`format_value` with an explicit sign, for scores whose sign carries meaning."""
    text = format_value(x)
    return text if text.startswith(("-", "n", "i")) else "+" + text


def _score(span: Span) -> float:
    """A span's score as a finite float (None, NaN and inf count as 0), as the renderers do."""
    s = span.score
    return float(s) if s is not None and math.isfinite(s) else 0.0


def _family(method: str) -> str:
    """How a method's scores may be read: "removal" (measured effect of removing the span),
    "signed" (a score whose sign is meaningful) or "unsigned" (magnitude only)."""
    if method in REMOVAL_METHODS:
        return "removal"
    return "unsigned" if method in UNSIGNED_METHODS else "signed"


def _span_fact(span: Span) -> dict[str, Any]:
    return {"text": span.text, "start": span.start, "end": span.end, "score": _score(span)}


def format_metric(name: str, value: float) -> str:
    """A figure of Explanation.metrics as `describe` writes it (probability changes unsigned:
    their direction is in the wording)."""
    kind = FIGURES.get(name, "value")
    if kind == "prob":
        return format_prob(abs(value))
    if kind == "p":
        return format_prob(value)
    if kind == "count" and math.isfinite(value):
        return str(round(value))
    return format_value(value)


def _stated_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The known figures present, in FIGURES order, then any unknown ones by name; bookkeeping
    and a zero-size counterfactual are left out."""
    out = {k: float(metrics[k]) for k in FIGURES if k in metrics}
    if out.get("counterfactuals_found", 1.0) == 0.0:
        out.pop("counterfactual_min_edits", None)
    for k in sorted(metrics):
        if k not in FIGURES and k not in BOOKKEEPING:
            out[k] = float(metrics[k])
    return out


def _auto_tried(report: Any) -> int | None:
    """How many methods `method="auto"` compared, when it chose this one."""
    if not isinstance(report, dict):
        return None
    candidates = report.get("candidates")
    return len(candidates) if isinstance(candidates, list) else None


def describe_facts(explanation: Explanation, top: int = 3) -> dict[str, Any]:
    """The numbers `describe` states, unformatted: target, top drivers, spans against, spans
    with no measurable effect and the faithfulness figures. The text is made from this only."""
    spans = explanation.spans
    max_abs = max((abs(_score(s)) for s in spans), default=0.0)
    threshold = NO_EFFECT_RELATIVE * max_abs
    measurable = [max_abs > 0 and abs(_score(s)) >= threshold for s in spans]
    effective = [s for s, m in zip(spans, measurable, strict=True) if m]
    no_effect = [s for s, m in zip(spans, measurable, strict=True) if not m]
    drivers = sorted((s for s in effective if _score(s) > 0), key=lambda s: (-_score(s), s.start))
    against = sorted((s for s in effective if _score(s) < 0), key=lambda s: (_score(s), s.start))
    named = [s for s in no_effect if s.text.strip()][:MAX_NO_EFFECT_NAMED]
    faith = explanation.details.get("faithfulness")
    bins = faith.get("bins") if isinstance(faith, dict) else None
    return {
        "method": explanation.method,
        "family": _family(explanation.method),
        "model": explanation.model,
        "granularity": explanation.granularity,
        "target_text": explanation.target.text,
        "target_prob": explanation.target.prob,
        "target_logprob": explanation.target.logprob,
        "drivers": [_span_fact(s) for s in drivers[: max(0, top)]],
        "against": [_span_fact(s) for s in against[: max(0, top)]],
        "no_effect": {
            "count": len(no_effect),
            "total": len(spans),
            "threshold": threshold,
            "relative": NO_EFFECT_RELATIVE,
            "named": [_span_fact(s) for s in named],
        },
        "max_abs_score": max_abs,
        "metrics": _stated_metrics(explanation.metrics),
        "aopc_bins": list(bins) if isinstance(bins, dict) and bins else None,
        "auto_tried": _auto_tried(explanation.details.get("auto")),
    }


def _quote(t: dict[str, str], text: str) -> str:
    return t["quote"].format(text=text)


def _items(t: dict[str, str], facts: dict[str, Any], spans: list[dict[str, Any]]) -> str:
    """One phrase per span in the method family's wording; after the first, the short form."""
    parts = []
    for i, s in enumerate(spans):
        more = "_more" if i else ""
        span = _quote(t, s["text"])
        if facts["family"] == "removal":
            key = ("removal_pos" if s["score"] > 0 else "removal_neg") + more
            parts.append(t[key].format(span=span, value=format_value(abs(s["score"]))))
        else:
            value = format_signed(s["score"])
            parts.append(
                t["score_item" + more].format(span=span, value=value, method=facts["method"])
            )
    return t["sep"].join(parts)


def _metric_phrase(t: dict[str, str], facts: dict[str, Any], name: str, value: float) -> str:
    text = format_metric(name, value)
    if FIGURES.get(name) == "prob":
        bins = facts["aopc_bins"]
        parts = t["top_bins"].format(bins="/".join(bins)) if bins else t["top_parts"]
        return t[f"{name}_pos" if value >= 0 else f"{name}_neg"].format(value=text, parts=parts)
    if name in FIGURES:
        return t[name].format(value=text)
    return t["other_metric"].format(name=name, value=text)


def describe(explanation: Explanation, lang: str = "en", top: int = 3) -> str:
    """A few sentences stating what the explanation's numbers show, in `lang` ("en" or "zh"):
    the answer and its probability, top drivers, spans against, no-effect spans, faithfulness."""
    t = _templates(lang)
    facts = describe_facts(explanation, top)
    lines = [
        t["target"].format(
            target=_quote(t, facts["target_text"]),
            prob=format_prob(facts["target_prob"]),
            logprob=format_value(facts["target_logprob"]),
            method=facts["method"],
            model=facts["model"],
            granularity=facts["granularity"],
        )
    ]
    if facts["auto_tried"] is not None:
        lines.append(t["auto"].format(n=facts["auto_tried"]))
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
            lines.append(t["against"].format(items=_items(t, facts, against)))
        else:
            lines.append(t["no_against"])
        if facts["family"] != "removal":
            lines.append(t["score_note"].format(method=facts["method"]))
        if ne["count"]:
            named = t["list_sep"].join(_quote(t, s["text"]) for s in ne["named"])
            lines.append(
                t["no_effect"].format(
                    pct=round(100 * ne["relative"]),
                    count=ne["count"],
                    total=ne["total"],
                    named=t["no_effect_named"].format(items=named) if named else "",
                )
            )
        else:
            lines.append(t["no_effect_none"].format(total=ne["total"]))
    figures = [_metric_phrase(t, facts, k, v) for k, v in facts["metrics"].items()]
    lines.append(t["faith"].format(items=t["sep"].join(figures)) if figures else t["faith_none"])
    return "\n".join(lines)


# --- self-explanation -------------------------------------------------------------------------

ClaimStatus = Literal["supported", "not_supported", "not_in_prompt"]


@dataclass
class Claim:
    """One part of the prompt the model named, and whether the attributions bear it out."""

    text: str
    supported: bool
    status: ClaimStatus
    score: float | None = None  # the largest score among the spans it overlaps
    matched: list[str] = field(default_factory=list)  # top drivers it overlaps


@dataclass
class SelfExplanation:
    """The model's answer to "which words made you answer that way?" and the check of it."""

    question: str
    answer: str
    claims: list[Claim]
    chat: bool
    top_k: int  # how many top drivers a claim could overlap to be supported
    drivers: list[str]  # those drivers' texts, highest score first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfExplanation:
        """Back from `to_dict` (e.g. from Explanation.details["self_explanation"])."""
        return cls(**{**data, "claims": [Claim(**c) for c in data["claims"]]})


# Quoted strings: straight, curly, CJK and back quotes; single quotes only when they are not
# apostrophes (not preceded or followed by a word character).
_QUOTED = re.compile(
    r'"([^"\n]+)"|“([^”\n]+)”|「([^」\n]+)」|『([^』\n]+)』|`([^`\n]+)`|‘([^’\n]+)’'
    r"|(?<!\w)'([^'\n]+)'(?!\w)"
)
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z0-9_]")


def extract_named(answer: str, prompt_text: str) -> list[str]:
    """The strings the model names: quoted strings in its answer, else its words that occur as
    words in the prompt. Case-insensitively de-duplicated, in order of appearance."""
    found = [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(answer)]
    found = [f for f in found if f]
    if not found:
        prompt_words = {w.lower() for w in _WORD.findall(prompt_text)}
        found = [w for w in _WORD.findall(answer) if w.lower() in prompt_words]
    seen: set[str] = set()
    out = []
    for f in found:
        if f.lower() not in seen:
            seen.add(f.lower())
            out.append(f)
    return out


def _occurrences(needle: str, haystack: str) -> list[tuple[int, int]]:
    """Case-insensitive places of `needle` in `haystack`, not inside a longer Latin word (so
    "a" is not found in "capital"); edges in scripts written without spaces match anywhere."""
    if not needle:
        return []
    head = r"(?<![A-Za-z0-9_])" if _LATIN.match(needle[0]) else ""
    tail = r"(?![A-Za-z0-9_])" if _LATIN.match(needle[-1]) else ""
    pattern = head + re.escape(needle) + tail
    return [m.span() for m in re.finditer(pattern, haystack, flags=re.IGNORECASE)]


def _span_places(span: Span, prompt_text: str) -> list[tuple[int, int]]:
    """Where a span lies in `prompt_text`: its own offsets when they match, else where its
    text occurs (the prompt may be given without the file's front matter)."""
    if prompt_text[span.start : span.end] == span.text and span.text:
        return [(span.start, span.end)]
    return [m.span() for m in re.finditer(re.escape(span.text), prompt_text)] if span.text else []


def support_k(n_spans: int) -> int:
    """How many top drivers a named part may overlap to count as supported."""
    return max(SUPPORT_MIN, math.ceil(SUPPORT_FRACTION * n_spans))


def top_drivers(explanation: Explanation) -> list[Span]:
    """The spans a named part must overlap to be supported: the top `support_k` by positive
    score (ties: earlier first)."""
    positive = [s for s in explanation.spans if _score(s) > 0]
    positive.sort(key=lambda s: (-_score(s), s.start))
    return positive[: support_k(len(explanation.spans))]


def check_claims(named: list[str], explanation: Explanation, prompt_text: str) -> list[Claim]:
    """Check each named string against the measured attributions: supported when it overlaps
    one of the top-k spans by positive score; absent from the prompt is reported as such."""
    top = {id(s) for s in top_drivers(explanation)}
    located = [(s, _span_places(s, prompt_text)) for s in explanation.spans]
    claims = []
    for text in named:
        places = _occurrences(text, prompt_text)
        if not places:
            claims.append(Claim(text, False, "not_in_prompt"))
            continue
        touched = [
            s for s, spots in located if any(a < d and c < b for a, b in places for c, d in spots)
        ]
        score = max((_score(s) for s in touched), default=None)
        touched.sort(key=lambda s: (-_score(s), s.start))
        matched = [s.text for s in touched if id(s) in top]
        status: ClaimStatus = "supported" if matched else "not_supported"
        claims.append(Claim(text, bool(matched), status, score, matched))
    return claims


def _clean_decode(backend: Backend, ids: list[int]) -> str:
    """Generated text without special tokens (end of turn, end of sequence)."""
    special = set(getattr(backend.tokenizer, "all_special_ids", None) or []) | backend.eos_ids()
    return backend.decode([i for i in ids if i not in special]).strip()


def self_explain(
    backend: Backend,
    explanation: Explanation,
    prompt_text: str,
    lang: str = "en",
    max_new_tokens: int = 48,
) -> SelfExplanation:
    """Ask the model (greedily, through its chat template when it has one) which words of the
    prompt made it give the explained answer, and check what it names against the attributions."""
    t = _templates(lang)
    question = t["question"]
    answer_text = explanation.target.text
    chat = backend.has_chat_template
    if chat:
        rendered = backend.render_chat(
            [
                {"role": "user", "content": prompt_text},
                {"role": "assistant", "content": answer_text},
                {"role": "user", "content": question},
            ]
        )
    else:
        rendered = f"User: {prompt_text}\nAssistant: {answer_text}\nUser: {question}\nAssistant:"
    ids, _ = backend.encode(rendered, add_special_tokens=not chat)
    check_context(backend, len(ids), max_new_tokens)
    answer = _clean_decode(backend, backend.generate(ids, max_new_tokens))
    claims = check_claims(extract_named(answer, prompt_text), explanation, prompt_text)
    drivers = [s.text for s in top_drivers(explanation)]
    return SelfExplanation(
        question, answer, claims, chat, support_k(len(explanation.spans)), drivers
    )


def describe_self_explanation(se: SelfExplanation, lang: str = "en") -> str:
    """The model's answer and, one line each, whether what it named is borne out."""
    t = _templates(lang)
    lines = [t["se_head"].format(answer=_quote(t, " ".join(se.answer.split())))]
    if not se.claims:
        lines.append(t["se_none"])
    for c in se.claims:
        span = _quote(t, c.text)
        if c.status == "supported":
            matched = t["list_sep"].join(_quote(t, m) for m in c.matched)
            lines.append("- " + t["se_supported"].format(span=span, matched=matched, k=se.top_k))
        elif c.status == "not_supported":
            score = "" if c.score is None else t["se_score"].format(value=format_signed(c.score))
            lines.append("- " + t["se_not_supported"].format(span=span, score=score))
        else:
            lines.append("- " + t["se_not_in_prompt"].format(span=span))
    checked = [c for c in se.claims if c.status != "not_in_prompt"]
    if checked:
        lines.append(
            t["se_summary"].format(
                supported=sum(c.supported for c in checked), checked=len(checked)
            )
        )
    return "\n".join(lines)
