"""The interpretation layer: every sentence promptxray says about an explanation (span line,
summary, full report; English and Chinese) and the check of the model's own account of it.
Front ends call these and compose no sentences of their own."""

from __future__ import annotations

from promptxray.explainers.details import Claim, SelfExplanation
from promptxray.explainers.nl.describe import (
    NO_EFFECT_NATS,
    describe,
    describe_facts,
    no_effect,
    no_effect_line,
    span_line,
    stage_note,
    stage_tag,
    summary,
    verdict,
)
from promptxray.explainers.nl.figures import format_metric, format_signed, format_value
from promptxray.explainers.nl.self_explain import (
    check_claims,
    describe_self_explanation,
    extract_named,
    self_explain,
    self_explanation_line,
    support_k,
    top_drivers,
)
from promptxray.explainers.nl.templates import LANGUAGES, TEMPLATES
from promptxray.explainers.render import format_prob

__all__ = [
    "LANGUAGES",
    "NO_EFFECT_NATS",
    "TEMPLATES",
    "Claim",
    "SelfExplanation",
    "check_claims",
    "describe",
    "describe_facts",
    "describe_self_explanation",
    "extract_named",
    "format_metric",
    "format_prob",
    "format_signed",
    "format_value",
    "no_effect",
    "no_effect_line",
    "self_explain",
    "self_explanation_line",
    "span_line",
    "stage_note",
    "stage_tag",
    "summary",
    "support_k",
    "top_drivers",
    "verdict",
]
