"""Plain-data types shared by every front end and explainer.

Nothing here imports torch: the language server, the chat UI and the CLI exchange these
objects (and their JSON form) without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.details import (
    AnswerCheck,
    AutoReport,
    Counterfactuals,
    FaithfulnessCurves,
    HierarchyInfo,
    PairTest,
    PartPair,
    RemoteInfo,
    ScoreKind,
    SelfExplanation,
    StageInfo,
)

# what one part of the prompt is: a fixed unit (units.group_units makes it), or "auto" (lines,
# refined into words and tokens where they matter: explainers/hierarchy.py)
FixedGranularity = Literal[
    "token", "word", "line", "sentence", "section", "message", "example", "variable"
]
Granularity = Literal[FixedGranularity, "auto"]
FIXED_GRANULARITIES: tuple[FixedGranularity, ...] = get_args(FixedGranularity)
GRANULARITIES: tuple[Granularity, ...] = (*FIXED_GRANULARITIES, "auto")
# the prompt's structure-level parts (explainers/structure.py)
STRUCTURE_GRANULARITIES: tuple[FixedGranularity, ...] = FIXED_GRANULARITIES[3:]
# 2: typed fields (ablated_logprob, hierarchy, faithfulness, auto, counterfactuals,
# self_explanation, score_kind, body_start) instead of keys of `details`; 3: `answer_check`
# (with fp32's answer in it) instead of details["answer_check"] and details["reference_answer"];
# 4: `redundant`, `remote`; 5: `pairs` (redundant or conflicting, with `pair_test`) instead of
# `redundant`. Older versions still read.
SCHEMA_VERSION = 5
# version-1 keys of `details` that became typed fields, and how each is read
_TYPED_DETAILS: dict[str, Any] = {
    "ablated_logprob": list,
    "hierarchy": HierarchyInfo.from_dict,
    "faithfulness": FaithfulnessCurves.from_dict,
    "auto": AutoReport.from_dict,
    "self_explanation": SelfExplanation.from_dict,
    "stage": StageInfo.from_dict,
}


@dataclass
class Token:
    """One model token of the user's prompt; `text` is exactly `source[start:end]`."""

    index: int
    text: str
    start: int
    end: int
    token_id: int
    piece: str
    score: float | None = None


@dataclass
class Span:
    """One attribution unit (a token, word or line) with its score and the tokens it covers."""

    text: str
    start: int
    end: int
    score: float
    token_indices: list[int] = field(default_factory=list)


@dataclass
class TargetToken:
    """One token of the explained continuation and its teacher-forced log-probability."""

    text: str
    token_id: int
    logprob: float


@dataclass
class Target:
    """The continuation being explained; `logprob` is the sum over its tokens."""

    text: str
    tokens: list[TargetToken]
    logprob: float
    generated: bool

    @property
    def prob(self) -> float:
        import math

        return math.exp(self.logprob)


@dataclass
class Foil:
    """Contrastive explanations ("why the target rather than the foil?"): the alternative
    continuation, teacher-forced after the unmodified prompt like the target; every score
    is then about log P(target) − log P(foil)."""

    text: str
    tokens: list[TargetToken]
    logprob: float

    @property
    def prob(self) -> float:
        import math

        return math.exp(self.logprob)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Foil:
        tokens = [TargetToken(**t) for t in data.get("tokens", [])]
        return cls(text=data["text"], tokens=tokens, logprob=float(data["logprob"]))


@dataclass
class ExplainRequest:
    """What to explain: the text the user wrote (and its path, for the file type) plus settings."""

    text: str
    path: str | None = None
    method: str = "occlusion"
    target: str | None = None
    granularity: Granularity = "token"
    model: str | None = None
    backend: str = "torch"
    max_new_tokens: int = 8
    chat_template: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    faithfulness: bool = True  # measure deletion/insertion and ERASER figures (a few forwards)
    target_ids: list[int] | None = None  # explain exactly these target tokens (overrides target)
    self_explain: bool = False  # also ask the model why it answered so (one generation)
    lang: str = "en"  # language of the self-explanation question
    # how the backend is reached and run (the vllm engine; torch's device and dtype)
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    # explain log P(target) − log P(foil): why the target rather than this text (tokenised
    # like a given target)
    foil: str | None = None
    # values for template variables (over the file's own and its sidecar's), and which prompt
    # of a code file to explain (1-based line; the only one when None)
    samples: dict[str, Any] = field(default_factory=dict)
    prompt_line: int | None = None


@dataclass
class Explanation:
    """The result of one explainer run; serialises to JSON losslessly (`to_json`/`from_json`)."""

    method: str
    backend: str
    model: str
    granularity: Granularity
    target: Target
    tokens: list[Token]
    spans: list[Span]
    input_tokens: int
    context_length: int
    wall_time_s: float
    forward_passes: int
    sequences_scored: int
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # method-specific extras
    path: str | None = None
    schema_version: int = SCHEMA_VERSION
    # what a span's score means; None (made by hand, version-1 files): the method's kind
    score_kind: ScoreKind = None
    body_start: int = 0  # where the prompt's body starts in the file (after front matter)
    # removal methods: the target's log-probability with each span removed (same order)
    ablated_logprob: list[float] | None = None
    hierarchy: HierarchyInfo | None = None  # granularity "auto": levels and the line pass
    faithfulness: FaithfulnessCurves | None = None  # curves behind the faithfulness metrics
    auto: AutoReport | None = None  # method "auto": what it chose and why
    counterfactuals: Counterfactuals | None = None
    self_explanation: SelfExplanation | None = None
    stage: StageInfo | None = None  # anytime explanations: which stage (None: a single result)
    # why the requested method could not run as asked (e.g. memory) and what ran instead
    degraded: str | None = None
    # a contrastive explanation: the alternative; scores are about log P(target) − log P(foil)
    foil: Foil | None = None
    # a quantized model: would fp32 answer the same? (explainers/answer_check.py)
    answer_check: AnswerCheck | None = None
    # pairs of parts leave-one-out cannot see: redundant (either alone keeps the answer) or
    # in conflict (pulling against each other); `pair_test` says what was tested
    pairs: list[PartPair] = field(default_factory=list)
    pair_test: PairTest | None = None
    # scored by a server: which model and tier, its cost, the figures that are not exact
    remote: RemoteInfo | None = None

    def __post_init__(self) -> None:
        self.score_kind = _score_kind(self.score_kind, self.method)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score_kind"] = self.score_kind.value
        data["target"]["prob"] = self.target.prob
        if self.foil is not None:
            data["foil"]["prob"] = self.foil.prob
        return data

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        data = dict(data)
        target = dict(data.pop("target"))
        target.pop("prob", None)
        target["tokens"] = [TargetToken(**t) for t in target["tokens"]]
        data["target"] = Target(**target)
        data["tokens"] = [Token(**t) for t in data["tokens"]]
        data["spans"] = [Span(**s) for s in data["spans"]]
        details = dict(data.get("details") or {})
        if data.get("schema_version", 1) < 2:  # typed fields were keys of `details`
            for key in _TYPED_DETAILS:
                if key in details and key != "stage":
                    data[key] = details.pop(key)
            if "counterfactuals" in details:
                data["counterfactuals"] = {
                    "found": details.pop("counterfactuals"),
                    "original_target_prob": details.pop("original_target_prob", 0.0),
                    "ranked_units": details.pop("ranked_units", []),
                    "rejected_on_verification": details.pop("rejected_on_verification", 0),
                }
        if data.get("schema_version", 1) < 3 and "answer_check" in details:
            check = dict(details.pop("answer_check"))
            check["reference"] = details.pop("reference_answer", None)
            data["answer_check"] = check
        data["schema_version"] = SCHEMA_VERSION
        data["details"] = details
        for key, read in _TYPED_DETAILS.items():
            if isinstance(data.get(key), dict):
                data[key] = read(data[key])
        if isinstance(data.get("counterfactuals"), dict):
            data["counterfactuals"] = Counterfactuals.from_dict(data["counterfactuals"])
        if isinstance(data.get("foil"), dict):
            data["foil"] = Foil.from_dict(data["foil"])
        legacy = data.pop("redundant", None) or []  # schema 4: redundant pairs only
        data["pairs"] = [
            PartPair.from_dict(r) if isinstance(r, dict) else r for r in data.get("pairs") or legacy
        ]
        if isinstance(data.get("pair_test"), dict):
            data["pair_test"] = PairTest.from_dict(data["pair_test"])
        if isinstance(data.get("answer_check"), dict):
            data["answer_check"] = AnswerCheck.from_dict(data["answer_check"])
        if isinstance(data.get("remote"), dict):
            data["remote"] = RemoteInfo.from_dict(data["remote"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        return cls.from_dict(json.loads(text))

    @property
    def contrast(self) -> float | None:
        """log P(target) − log P(foil), what a contrastive explanation's scores are about."""
        return None if self.foil is None else self.target.logprob - self.foil.logprob

    def ablated_prob(self, index: int) -> float | None:
        """The target's probability with span `index` removed (removal methods only)."""
        import math

        values = self.ablated_logprob
        if values is None or not 0 <= index < len(values):
            return None
        return math.exp(values[index])

    def unit_of(self, index: int) -> str:
        """What span `index` is: its level (line, word, token) under granularity "auto"."""
        kinds = self.hierarchy.unit_kinds if self.hierarchy else None
        if kinds is not None and len(kinds) == len(self.spans):
            return kinds[index]
        return self.granularity

    def rank_of(self, index: int) -> int:
        """1-based rank of span `index` by |score|."""
        own = abs(self.spans[index].score)
        return 1 + sum(1 for s in self.spans if abs(s.score) > own)

    def span_at(self, offset: int) -> int | None:
        """The index of the span under a character offset of the file, if any (a part over
        several places, such as a variable used twice, is found at each of its uses)."""
        for i, span in enumerate(self.spans):
            if span.start <= offset < span.end:
                return i
        for i, span in enumerate(self.spans):
            for t in span.token_indices:
                if t < len(self.tokens) and self.tokens[t].start <= offset < self.tokens[t].end:
                    return i
        return None

    def ranked_spans(self) -> list[Span]:
        """Spans from most to least influential (by absolute score)."""
        return sorted(self.spans, key=lambda s: abs(s.score), reverse=True)


def _score_kind(value: ScoreKind | str | None, method: str) -> ScoreKind:
    """`value` as a ScoreKind (JSON gives its string); when absent or unknown, the registered
    method's kind (loading the methods, so torch, only then), "estimate" for an unknown one."""
    try:
        return ScoreKind(value)
    except ValueError:
        pass
    from promptxray.explainers.errors import UnknownMethodError
    from promptxray.explainers.registry import get_method

    try:
        return get_method(method).score_kind
    except UnknownMethodError:
        return ScoreKind.ESTIMATE
