"""The interpretation layer: every sentence promptxray says about an explanation (span line,
summary, full report; English and Chinese) and the check of the model's own account of it.
Front ends call these and compose no sentences of their own."""

from __future__ import annotations

from promptxray.explainers.details import Claim, SelfExplanation
from promptxray.explainers.nl.auto_text import auto_reason, pruning_lines
from promptxray.explainers.nl.describe import describe, describe_facts
from promptxray.explainers.nl.figures import (
    finite_score,
    format_metric,
    format_prob,
    format_signed,
    format_value,
    short,
)
from promptxray.explainers.nl.pairs_text import (
    pair_lines,
    pair_related,
    pair_sentence,
    redundancy_of,
)
from promptxray.explainers.nl.self_explain import (
    check_claims,
    describe_self_explanation,
    extract_named,
    self_explain,
    self_explanation_line,
    support_k,
    top_drivers,
)
from promptxray.explainers.nl.stage_text import stage_note, stage_tag, timed_stage_tag
from promptxray.explainers.nl.summary_text import (
    NO_EFFECT_NATS,
    no_effect,
    no_effect_line,
    span_line,
    summary,
    verdict,
)
from promptxray.explainers.nl.templates import LANGUAGES, TEMPLATES

__all__ = [
    "LANGUAGES",
    "NO_EFFECT_NATS",
    "TEMPLATES",
    "Claim",
    "SelfExplanation",
    "auto_reason",
    "check_claims",
    "describe",
    "describe_facts",
    "describe_self_explanation",
    "extract_named",
    "finite_score",
    "format_metric",
    "format_prob",
    "format_signed",
    "format_value",
    "no_effect",
    "no_effect_line",
    "pair_lines",
    "pair_related",
    "pair_sentence",
    "pruning_lines",
    "redundancy_of",
    "self_explain",
    "self_explanation_line",
    "short",
    "span_line",
    "stage_note",
    "stage_tag",
    "summary",
    "support_k",
    "timed_stage_tag",
    "top_drivers",
    "verdict",
]
