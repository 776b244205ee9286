"""The plain data of a diff: one `PartChange` per part of either version, the `Mismatch`es
that make two explanations' scores incomparable, and the `ExplanationDiff` that holds them
(JSON both ways)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from promptxray.explainers.details import ScoreKind

STATUSES = ("new", "removed", "gained", "lost", "same")
# what two explanations must share for their part scores to be subtracted, in the order the
# mismatches are reported
MATCHED = ("target", "foil", "method", "granularity", "model", "score_kind")


@dataclass
class PartChange:
    """One part of the prompt in either version or both, and how its score changed."""

    status: str  # one of STATUSES
    text: str  # the new text (the old one for a removed part)
    change: float  # new_score - old_score (an absent side counts 0)
    old_score: float | None = None
    new_score: float | None = None
    old_text: str | None = None
    new_text: str | None = None
    old_start: int | None = None  # offsets into the old file
    old_end: int | None = None
    new_start: int | None = None  # offsets into the new file
    new_end: int | None = None
    old_index: int | None = None  # index of the span in old.spans / new.spans
    new_index: int | None = None
    edited: bool = False  # in both versions, with a different text
    old_line: int | None = None  # 1-based line of old_start in the old file
    new_line: int | None = None  # 1-based line of new_start in the new file


@dataclass
class Mismatch:
    """One of MATCHED that differs between the two explanations: their part scores are then
    not comparable (the target and foil by their text; None: no foil)."""

    what: str  # one of MATCHED
    old: str | None
    new: str | None


@dataclass
class ExplanationDiff:
    """Two explanations of two versions of a prompt, part by part (see the package's doc)."""

    method: str
    granularity: str
    model: str
    score_kind: ScoreKind
    comparable: bool  # same method, granularity, model and target: scores can be subtracted
    same_target: bool  # both versions were explained against the same answer
    answer_changed: bool  # the new version's own answer differs from the old answer
    old_answer: str  # the answer the old explanation explains (its own)
    old_prob: float  # its probability in the old version
    new_answer: str  # the answer the new explanation explains
    new_prob: float  # its probability in the new version
    new_own_answer: str  # the new version's own answer (= new_answer when not known apart)
    new_own_prob: float
    threshold: float  # |change| under this: "same"
    parts: list[PartChange] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)  # why not comparable, if not
    forward_passes: dict[str, int] = field(default_factory=dict)  # per run ("old", "new", ...)
    sequences_scored: dict[str, int] = field(default_factory=dict)
    old_path: str | None = None
    new_path: str | None = None

    def counts(self) -> dict[str, int]:
        """How many parts have each status (in STATUSES order)."""
        return {s: sum(1 for p in self.parts if p.status == s) for s in STATUSES}

    def changes(self) -> list[PartChange]:
        """The parts that are not "same", largest |change| first (ties: document order)."""
        moved = [p for p in self.parts if p.status != "same"]
        return sorted(moved, key=lambda p: -abs(p.change))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"score_kind": self.score_kind.value}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExplanationDiff:
        data = dict(data)
        data["parts"] = [PartChange(**p) for p in data.get("parts", [])]
        data["mismatches"] = [Mismatch(**m) for m in data.get("mismatches", [])]
        data["score_kind"] = ScoreKind(data["score_kind"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ExplanationDiff:
        return cls.from_dict(json.loads(text))
