"""Plain-data types shared by every front end and explainer.

Nothing here imports torch: the language server, the chat UI and the CLI exchange these
objects (and their JSON form) without loading a model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Granularity = Literal["token", "word", "line"]
GRANULARITIES: tuple[str, ...] = ("token", "word", "line", "auto")
FIXED_GRANULARITIES: tuple[str, ...] = ("token", "word", "line")  # what units.group_units makes
SCHEMA_VERSION = 1


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
class ExplainRequest:
    """What to explain: the text the user wrote (and its path, for the file type) plus settings."""

    text: str
    path: str | None = None
    method: str = "occlusion"
    target: str | None = None
    granularity: str = "token"
    model: str | None = None
    backend: str = "torch"
    max_new_tokens: int = 8
    chat_template: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    faithfulness: bool = True  # measure deletion/insertion and ERASER figures (a few forwards)
    target_ids: list[int] | None = None  # explain exactly these target tokens (overrides target)


@dataclass
class Explanation:
    """The result of one explainer run; serialises to JSON losslessly (`to_json`/`from_json`)."""

    method: str
    backend: str
    model: str
    granularity: str
    target: Target
    tokens: list[Token]
    spans: list[Span]
    input_tokens: int
    context_length: int
    wall_time_s: float
    forward_passes: int
    sequences_scored: int
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"]["prob"] = self.target.prob
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
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        return cls.from_dict(json.loads(text))

    def ranked_spans(self) -> list[Span]:
        """Spans from most to least influential (by absolute score)."""
        return sorted(self.spans, key=lambda s: abs(s.score), reverse=True)
