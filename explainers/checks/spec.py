"""The plain data of a prompt's checks: the spec read from the front matter (its settings,
valid assertions and invalid ones) and each assertion's result with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from promptxray.explainers.nl.describe import NO_EFFECT_NATS

KEY = "checks"
OWN_KEY = "promptxray"  # checks may sit under it, where template runtimes ignore them
ASSERT_KEY = "assert"
KINDS: tuple[str, ...] = (
    "answer_contains",
    "min_probability",
    "no_effect",
    "min_share",
    "no_redundant",
)
PART_KEYS: tuple[str, ...] = ("line", "section", "variable", "text")
SETTINGS: tuple[str, ...] = ("method", "granularity", "max_new_tokens", "no_effect_threshold")

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class CheckError:
    """An invalid check: what is wrong, where (1-based line, and the offset in the file)."""

    line: int
    message: str
    offset: int = 0


@dataclass(frozen=True)
class Part:
    """A named part of the prompt: how the file names it and the file ranges it covers."""

    label: str  # e.g. 'line 9', 'section "Examples"', '{{country}}', 'text "in one word"'
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Assertion:
    """One valid assertion of a prompt's checks."""

    kind: str
    line: int  # 1-based line in the file
    offset: int  # where the entry starts in the file
    text: str  # the assertion as a short line, e.g. 'min_share: {{country}} >= 0.2'
    # answer_contains: the text; min_probability: the floor; no_redundant: the nats a pair may cost
    value: str | float | None = None
    part: Part | None = None
    share: float | None = None  # min_share: the floor


@dataclass
class CheckSpec:
    """A prompt's checks: its settings, its valid assertions and its invalid ones."""

    path: str | None
    line: int  # the line of the `checks:` key
    assertions: list[Assertion] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)
    method: str | None = None
    granularity: str | None = None
    max_new_tokens: int | None = None
    no_effect_threshold: float = NO_EFFECT_NATS


@dataclass(frozen=True)
class Evidence:
    """What an assertion was checked on."""

    answer: str
    probability: float
    effect: float | None = None  # the part's effect (sum of overlapping span scores)
    share: float | None = None  # |effect| / total |effect|
    spans: int = 0  # how many spans overlap the part


@dataclass(frozen=True)
class CheckResult:
    """One assertion, checked: pass, fail, or error (it cannot be checked on this explanation),
    with a one-line account of the evidence."""

    assertion: Assertion
    status: Status
    evidence: Evidence
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def snippet(value: Any) -> str:
    """A value of the front matter as an error message quotes it (repr, at most 60 chars)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
