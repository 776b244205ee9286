"""How numbers and quoted text are written wherever promptxray shows them (sentences, the
terminal, HTML, the editor): scores, probabilities, the figures of `Explanation.metrics` (which
are stated, in what order, and which are bookkeeping) and shortened quotes."""

from __future__ import annotations

import math

# Figures in Explanation.metrics that the full report states, in this order, with how each is
# formatted: "prob" (format_prob, a probability change whose sign is in the wording), "p"
# (format_prob), "value" (format_value) or "count" (an integer).
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


def finite_score(value: float | None) -> float:
    """A score as a finite float: None, NaN and inf count as 0 (nothing to show or rank)."""
    return float(value) if value is not None and math.isfinite(value) else 0.0


def short(text: str, limit: int = 40) -> str:
    """`text` for a one-line view: white space folded, cut to `limit` characters with "…"."""
    text = " ".join(text.split()) or text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_prob(p: float) -> str:
    """A probability for people: two decimals, or two significant digits when small, never a
    bare 0.00 (shared by the terminal, HTML, the server's hovers and the chat)."""
    if p >= 0.01:
        return f"{p:.2f}"
    return "0" if p == 0 else f"{p:.1e}"


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


def format_metric(name: str, value: float) -> str:
    """A figure of Explanation.metrics as the report writes it (probability changes unsigned:
    their direction is in the wording)."""
    kind = FIGURES.get(name, "value")
    if kind == "prob":
        return format_prob(abs(value))
    if kind == "p":
        return format_prob(value)
    if kind == "count" and math.isfinite(value):
        return str(round(value))
    return format_value(value)


def stated_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The known figures present, in FIGURES order, then any unknown ones by name; bookkeeping
    and a zero-size counterfactual are left out."""
    out = {k: float(metrics[k]) for k in FIGURES if k in metrics}
    if out.get("counterfactuals_found", 1.0) == 0.0:
        out.pop("counterfactual_min_edits", None)
    for k in sorted(metrics):
        if k not in FIGURES and k not in BOOKKEEPING:
            out[k] = float(metrics[k])
    return out
