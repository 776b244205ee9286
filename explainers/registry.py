"""The table of explainer methods: `@register("occlusion", ...)` adds one, with the capability
flags that say which backends can run it. Front ends list methods from here; tests parametrise
over `list_methods()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptxray.explainers.backends.capabilities import Scoring
from promptxray.explainers.details import Counterfactuals, HierarchyInfo, ScoreKind
from promptxray.explainers.errors import UnknownMethodError, UnsupportedMethodError

if TYPE_CHECKING:
    import numpy as np

    from promptxray.explainers.context import MethodContext


@dataclass
class MethodResult:
    """What a method returns: scores per user token and/or per unit, plus figures to report.

    A method that scores tokens leaves `unit_scores` None and units get the sum of their
    tokens; a method that scores units directly (occlusion) leaves `token_scores` None unless
    the units are tokens."""

    token_scores: np.ndarray | None = None
    unit_scores: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # typed figures that front ends read (copied onto the Explanation)
    ablated_logprob: list[float] | None = None
    hierarchy: HierarchyInfo | None = None
    counterfactuals: Counterfactuals | None = None
    # why the method could not run as asked (e.g. memory) and what ran instead
    degraded: str | None = None

    def scores_per_unit(self, units: list[list[int]]) -> np.ndarray:
        """The unit scores, or each unit's sum of token scores when the method gave only those."""
        import numpy as np

        if self.unit_scores is not None:
            return np.asarray(self.unit_scores, dtype=np.float64)
        if self.token_scores is None:
            raise RuntimeError("the method returned no scores")
        return np.array([sum(self.token_scores[i] for i in unit) for unit in units])


MethodFn = Callable[["MethodContext"], MethodResult]


@dataclass(frozen=True)
class AutoCost:
    """A method that `method="auto"` tries: its rough cost in sequences scored (`per_unit` ×
    units + `fixed`), used only to predict whether it fits the time budget, and its place in
    the order of trial (lowest first: the usually most faithful per second, so a good answer
    exists early)."""

    per_unit: float
    fixed: float
    order: int


@dataclass(frozen=True)
class MethodSpec:
    """A registered method and what it needs from a backend."""

    name: str
    fn: MethodFn
    summary: str
    needs_gradients: bool = False
    needs_attentions: bool = False
    # the backend's top next tokens and a chosen token's log-probability (counterfactual)
    needs_next_tokens: bool = False
    # what a span's score means; the wording of sentences follows from it
    score_kind: ScoreKind = ScoreKind.ESTIMATE
    # scores the contrastive quantity log P(target) − log P(foil) when the request has a foil
    contrastive: bool = True
    # each unit's score is its own removal effect in the whole prompt, whatever the other units:
    # any subset of units can be scored alone, so granularity "auto" refines lines into words
    # and tokens with it, the anytime stages run it, and its line scores are the editor's
    # "no measurable effect" hints (no second run)
    leave_one_out: bool = False
    # set for the cheap methods that method "auto" compares on the user's prompt
    auto_cost: AutoCost | None = None

    def __post_init__(self) -> None:
        # a plug-in may name its kind by its string value
        object.__setattr__(self, "score_kind", ScoreKind(self.score_kind))
        if self.leave_one_out and self.score_kind is not ScoreKind.REMOVAL:
            raise ValueError(f"method {self.name!r}: leave_one_out scores are removal effects")

    @property
    def attributes_target(self) -> bool:
        """False for scores that are not about the answer (activation_max): no faithfulness."""
        return self.score_kind.about_answer

    @property
    def alters_model(self) -> bool:
        """True when running changes the model for the time (attention switches it to eager
        attention, activation_max hooks its layers): it must not share the model with a
        generation."""
        return self.needs_attentions or not self.attributes_target

    def runs_on(self, backend: Any) -> bool:
        """Whether `backend`'s declared capabilities give what this method needs. A backend
        whose scores are not all exact log-probabilities (generated-token log-probabilities,
        text only) runs only leave-one-out methods: each of their scores is one variant's own
        bound or estimate, which a method combining many variants would blur."""
        caps = backend.capabilities
        if not self.leave_one_out and caps.scoring is not Scoring.PROMPT:
            return False
        return not (
            (self.needs_gradients and not caps.gradients)
            or (self.needs_attentions and not caps.attentions)
            or (self.needs_next_tokens and not (caps.next_tokens or caps.logits))
        )

    def missing(self, backend: Any) -> str:
        """What this method needs that `backend` lacks, in words."""
        caps = backend.capabilities
        if not self.leave_one_out and caps.scoring is not Scoring.PROMPT:
            return (
                f"exact log-probabilities of a given answer (the backend has {caps.scoring.value})"
            )
        if self.needs_gradients and not caps.gradients:
            return "gradients"
        if self.needs_attentions and not caps.attentions:
            return "attention weights"
        return "next-token logits (or a server's top next tokens)"


_METHODS: dict[str, MethodSpec] = {}

AUTO = "auto"  # not a method but a choice among them (explainers/auto.py)
AUTO_SUMMARY = (
    "runs the cheap methods, measures each one's faithfulness on this prompt, and keeps the "
    "most faithful within the time budget"
)


def register(
    name: str,
    summary: str,
    needs_gradients: bool = False,
    needs_attentions: bool = False,
    needs_next_tokens: bool = False,
    score_kind: ScoreKind | str = ScoreKind.ESTIMATE,
    contrastive: bool = True,
    leave_one_out: bool = False,
    auto_cost: AutoCost | None = None,
) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding a method function to the table under `name` (see MethodSpec for what
    each flag means and which machinery it opts the method into)."""

    def add(fn: MethodFn) -> MethodFn:
        _METHODS[name] = MethodSpec(
            name,
            fn,
            summary,
            needs_gradients=needs_gradients,
            needs_attentions=needs_attentions,
            needs_next_tokens=needs_next_tokens,
            score_kind=ScoreKind(score_kind),
            contrastive=contrastive,
            leave_one_out=leave_one_out,
            auto_cost=auto_cost,
        )
        return fn

    return add


def _load_builtin_methods() -> None:
    import promptxray.explainers.methods  # noqa: F401  (each module registers itself)


def list_methods() -> list[MethodSpec]:
    _load_builtin_methods()
    return sorted(_METHODS.values(), key=lambda m: m.name)


def get_method(name: str) -> MethodSpec:
    _load_builtin_methods()
    try:
        return _METHODS[name]
    except KeyError:
        known = ", ".join(sorted(_METHODS))
        raise UnknownMethodError(f"unknown method {name!r}; available: {known}") from None


def unregister(name: str) -> None:
    """Remove a method from the table (a method registered for a test or a plug-in session)."""
    _METHODS.pop(name, None)


def auto_candidates() -> list[MethodSpec]:
    """The methods `method="auto"` compares, in their order of trial."""
    found = [m for m in list_methods() if m.auto_cost is not None]
    return sorted(found, key=lambda m: m.auto_cost.order if m.auto_cost else 0)


DEFAULT_LEAVE_ONE_OUT = "occlusion"  # the removal method hints fall back on


def leave_one_out_method(name: str) -> str:
    """`name` when it is a leave-one-out method, else the default one: the method whose line
    scores serve as "no measurable effect" hints beside an explanation by `name`."""
    if name != AUTO and get_method(name).leave_one_out:
        return name
    return DEFAULT_LEAVE_ONE_OUT


def validate_method(name: str) -> None:
    """Raise UnknownMethodError unless `name` is a registered method or "auto"."""
    if name == AUTO:
        return
    try:
        get_method(name)
    except UnknownMethodError:
        known = ", ".join([*sorted(_METHODS), AUTO])
        raise UnknownMethodError(f"unknown method {name!r}; available: {known}") from None


def check_contrastive(spec: MethodSpec) -> None:
    """Raise UnsupportedMethodError when a request with a foil asks for a method that cannot
    score log P(target) − log P(foil), naming the methods that can."""
    if spec.contrastive:
        return
    usable = ", ".join(m.name for m in list_methods() if m.contrastive)
    raise UnsupportedMethodError(
        f"method {spec.name!r} cannot explain a foil (why the target rather than another "
        f"answer): its scores are not a difference of log-probabilities; use one of: {usable}"
    )


def check_supported(spec: MethodSpec, backend: Any) -> None:
    """Raise UnsupportedMethodError naming the methods that do run on this backend."""
    if spec.runs_on(backend):
        return
    usable = ", ".join(m.name for m in list_methods() if m.runs_on(backend))
    raise UnsupportedMethodError(
        f"method {spec.name!r} needs {spec.missing(backend)}, which the {backend.name} backend "
        f"does not provide; use the torch backend, or one of: {usable}"
    )
