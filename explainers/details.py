"""Typed parts of an `Explanation` that front ends read: the removal effect of each span, the
levels of a hierarchical run, faithfulness curves, `auto`'s choice, counterfactuals and the
model's self-explanation. Plain dataclasses (no torch), JSON-able with `dataclasses.asdict`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any, Literal


class ScoreKind(str, enum.Enum):
    """What a method's span score means (MethodSpec.score_kind): the wording of every sentence
    and the "no measurable effect" rule follow from it. The values are the JSON strings."""

    REMOVAL = "removal"  # the measured drop in the answer's log-probability without the span
    ESTIMATE = "estimate"  # a signed estimate of that effect (nats, not measured by a removal)
    SALIENCE = "salience"  # an unsigned magnitude (gradient norm, attention): no direction
    ACTIVATION = "activation"  # not about the answer at all (a neuron's activation)
    # a server that returns text only: the drop in how similar sampled answers stay to the
    # original answer (0..1) without the span, an estimate with a confidence interval
    AGREEMENT = "agreement"

    def __str__(self) -> str:
        return self.value

    @property
    def in_nats(self) -> bool:
        """Scores in nats of the answer's log-probability: "no measurable effect" applies."""
        return self in (ScoreKind.REMOVAL, ScoreKind.ESTIMATE)

    @property
    def signed(self) -> bool:
        """The sign says which way a span moves the answer (raises or lowers it)."""
        return self in (ScoreKind.REMOVAL, ScoreKind.ESTIMATE, ScoreKind.AGREEMENT)

    @property
    def about_answer(self) -> bool:
        """The score is about the answer, so faithfulness figures and a verdict apply."""
        return self is not ScoreKind.ACTIVATION

    @property
    def family(self) -> str:
        """How the full report reads the scores: "removal", "signed" or "unsigned"."""
        if self is ScoreKind.REMOVAL:
            return "removal"
        return "signed" if self.signed else "unsigned"


def _build(cls: type, data: dict[str, Any]) -> Any:
    """A dataclass from a dict, ignoring keys it does not know (newer files stay readable)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class HierarchyInfo:
    """granularity "auto": each span's level and the whole line-level pass it started from."""

    unit_kinds: list[str]
    line_scores: list[float]
    line_token_indices: list[list[int]]
    refined_lines: list[int] = field(default_factory=list)
    refined_words: int = 0
    # what was not refined and why (nl/auto_text.py says it in words)
    pruned: list[Pruning] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HierarchyInfo:
        made = _build(cls, data)
        made.pruned = [_build(Pruning, p) if isinstance(p, dict) else p for p in made.pruned]
        return made


@dataclass
class Pruning:
    """How many lines or words refinement left unsplit by one rule: "floor" (|effect| under
    `bound` nats), "cover" (outside the top parts holding the share `bound` of the effect),
    "limit" (beyond `bound` parts, option refine_lines/refine_words) or "budget" (over `bound`×
    the line pass's work, option refine_budget)."""

    level: str  # "line" or "word"
    rule: str
    count: int
    bound: float


@dataclass
class StageFidelity:
    """How far an early stage's scores may be from the exact ones at its granularity: `exact`
    (leave-one-out of those parts, as the final result would give them), or approximate with
    the largest |error| in nats `max_error` measured against exact values of `checked` of its
    parts on this prompt (`precision`: the cheaper arithmetic that made them, e.g. "bf16")."""

    exact: bool = True
    max_error: float = 0.0
    checked: int = 0
    precision: str = "fp32"


@dataclass
class StageInfo:
    """Which stage of an anytime explanation this is (explainers/anytime.py): `name` is
    "blocks" (the prompt's natural blocks, exact), "lines_bf16" (lines in cheaper arithmetic,
    error stated), "top_lines" (exact lines of the blocks that matter most), "lines" (exact
    lines of every block that matters) or "refined" (all lines, then words and tokens where
    they matter); `final` marks the last, complete one.
    `granularity` names the stage's parts ("block", "line", "auto"), `fidelity` how exact its
    figures are, `pending_lines` how many lines it leaves inside unsplit blocks (their block's
    own score stands for them until the final stage)."""

    name: str
    index: int  # 1-based
    total: int
    final: bool
    seconds: float = 0.0  # since the explanation started
    granularity: str = ""
    fidelity: StageFidelity = field(default_factory=StageFidelity)
    pending_lines: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageInfo:
        made = _build(cls, data)
        if isinstance(made.fidelity, dict):
            made.fidelity = _build(StageFidelity, made.fidelity)
        return made


PairKind = Literal["redundant", "conflict"]


@dataclass
class PartPair:
    """Two parts whose joint effect leave-one-out cannot see (explainers/interactions.py says
    when): "redundant", they say the same thing (removing either alone costs little, both a
    lot); "conflict", they pull against each other (one supports the answer, the other works
    against it, and they do not add up). Figures are removal
    effects in nats; ranges are file offsets, so the pair stays true for any granularity's
    spans inside them."""

    first: list[int]  # [start, end)
    second: list[int]
    first_alone: float
    second_alone: float
    both: float
    kind: PairKind = "redundant"

    @property
    def interaction(self) -> float:
        """What removing both costs beyond the sum of removing each alone (nats)."""
        return self.both - self.first_alone - self.second_alone

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartPair:
        return _build(cls, data)


@dataclass
class PairTest:
    """What the pair test covered, so a report can say what was not tested: `parts` in all,
    `tested` of them in pairs (`pairs` pairs, each one removal of both; `similar` of them
    because the two share most of their words), and the parts with no measurable effect alone
    (`inert`) removed together (`inert_joint` nats; None: not removed together)."""

    parts: int
    tested: int
    pairs: int
    inert: int = 0
    inert_joint: float | None = None
    inert_tested: bool = True  # False: too many inert parts to test in pairs
    similar: int = 0  # pairs of other parts tested because they share most of their words

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairTest:
        return _build(cls, data)


@dataclass
class FaithfulnessCurves:
    """Deletion and insertion curves (target log-probability after removing / keeping the top
    `counts` units) and the ERASER bins; the headline figures are in `Explanation.metrics`."""

    fractions: list[float]
    counts: list[int]
    deletion_logprob: list[float]
    insertion_logprob: list[float]
    bins: dict[str, dict[str, float]]
    units: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaithfulnessCurves:
        return _build(cls, data)


@dataclass
class AutoReport:
    """method "auto": which method it chose, the candidates it compared and what it skipped
    (nl/auto_text.py says why in words)."""

    chosen: str
    criterion: str
    candidates: list[dict[str, float | str]]
    skipped: list[str] = field(default_factory=list)  # not tried: over the time budget
    budget_s: float = 0.0
    elapsed_s: float = 0.0
    skipped_memory: list[str] = field(default_factory=list)  # not tried: over the memory

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AutoReport:
        return _build(cls, data)


@dataclass
class Edit:
    """One change of a counterfactual: a unit removed, or replaced by a token's text."""

    unit: int
    text: str
    action: Literal["remove", "replace"]
    replacement: str | None = None
    replacement_id: int | None = None


@dataclass
class Counterfactual:
    """A verified edit of the prompt that changes the model's greedy answer."""

    edits: list[Edit]
    prompt: str
    ids: list[int]
    new_target: str
    new_target_ids: list[int]
    new_target_prob: float = 0.0
    original_target_prob: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counterfactual:
        made = _build(cls, data)
        made.edits = [_build(Edit, e) if isinstance(e, dict) else e for e in made.edits]
        return made


@dataclass
class Counterfactuals:
    """What the counterfactual search found, in the order it found them."""

    found: list[Counterfactual]
    original_target_prob: float
    ranked_units: list[int] = field(default_factory=list)
    rejected_on_verification: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counterfactuals:
        made = _build(cls, data)
        made.found = [Counterfactual.from_dict(c) for c in data.get("found", [])]
        return made


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
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelfExplanation:
        made = _build(cls, data)
        made.claims = [_build(Claim, c) if isinstance(c, dict) else c for c in made.claims]
        return made


@dataclass
class ReferenceAnswer:
    """fp32 torch's greedy answer where it differs from the quantized export's."""

    text: str
    token_ids: list[int]
    backend: str = "torch"
    precision: str = "fp32"
    export_answer_agreement: float | None = None  # the export's share of same answers


@dataclass
class AnswerCheck:
    """Would fp32 answer the same as a quantized model (explainers/answer_check.py)? The
    export's record, the answer token with the smallest margin, and whether that margin lies
    within the export's measured logit error; `checked` when fp32 was run (option
    `reference_answer`), with its answer in `reference` when it differs."""

    quantization: str
    prompts: int  # the export's answer-agreement prompts
    same_answer: int  # of which fp32 and the export answered alike
    max_logit_stray: float  # the export's measured max |logit − fp32 logit|
    closest_token: str
    closest_prob: float
    margin_bound: float  # nats: a lower bound on that token's margin over the runner-up
    may_differ: bool  # margin_bound <= 2 × max_logit_stray
    checked: bool = False
    reference: ReferenceAnswer | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerCheck:
        made = _build(cls, data)
        if isinstance(made.reference, dict):
            made.reference = _build(ReferenceAnswer, made.reference)
        return made


@dataclass
class PartFigure:
    """How one span's figure from a server was obtained, where it is not exact: "bound" (the
    drop is at least the score; `answer`: what the model answers without the span),
    "estimate" (text only: the 95% interval `low`..`high` of the drop in agreement) or
    "proxy" (not sent to the server: the local proxy model's figure, a part it found minor)."""

    index: int
    kind: Literal["bound", "estimate", "proxy"]  # proxy: the local proxy model's figure
    answer: str | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class RemoteInfo:
    """An explanation scored by a server (the `openai` backend): which model answered and
    where, the tier of its figures (`Scoring` values) and why a lesser tier was used, what it
    cost, and the spans whose figure is a bound or an estimate (all others are exact)."""

    endpoint: str
    model: str
    tier: str
    requests: int = 0
    tokens_sent: int = 0
    rate_limited: int = 0
    tier_note: str | None = None
    price: float | None = None  # in dollars, when the user set a price per million tokens
    parts: list[PartFigure] = field(default_factory=list)
    # text only: the original prompt's own agreement with its greedy answer (95% interval)
    base_low: float | None = None
    base_high: float | None = None
    # --proxy: a local model explained first and chose the parts the server scored
    proxy: ProxyAgreement | None = None

    def figure(self, index: int) -> PartFigure | None:
        """The span's figure note, or None when its figure is exact."""
        return next((p for p in self.parts if p.index == index), None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemoteInfo:
        info: RemoteInfo = _build(cls, data)
        info.parts = [_build(PartFigure, p) if isinstance(p, dict) else p for p in info.parts]
        if isinstance(info.proxy, dict):
            info.proxy = _build(ProxyAgreement, info.proxy)
        return info


@dataclass
class ProxyAgreement:
    """Proxy, then verify: how a local model's explanation agreed with the server's on the
    parts the server scored (the proxy's `scored` largest of `total`): Spearman over them
    and the share of the top 3 both name."""

    model: str
    scored: int
    total: int
    spearman: float | None
    top_shared: float
