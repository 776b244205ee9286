"""Assertions in a prompt's front matter, checked against its explanation (`promptxray check`,
and Error diagnostics in the language server).

Syntax. A `.prompt.md` or `.prompty` file lists its checks under `checks:` in the front matter,
either as a plain list of assertions or as a mapping with settings and an `assert:` list::

    ---
    checks:
      method: occlusion        # optional: how `promptxray check` explains this prompt
      granularity: line        # optional: any granularity of `promptxray explain`
      max_new_tokens: 4        # optional: length of the generated answer
      no_effect_threshold: 0.05  # optional: nats; |effect| under this is "no effect"
      assert:
        - answer_contains: Paris           # the model's answer contains this text (case-sensitive)
        - min_probability: 0.2             # P(answer) is at least this (0..1)
        - no_effect: {line: 9}             # this part has no measurable effect
        - no_effect: "## Examples"         # ... a Markdown section, by its heading
        - min_share: {part: "{{country}}", share: 0.2}   # at least 20% of the total |effect|
        - min_share: {text: "Answer in one word.", share: 0.1}
    ---

Each assertion is a mapping with one key, its kind: `answer_contains` (a text),
`min_probability` (a number in 0..1), `no_effect` (a part) or `min_share` (a mapping with a
part and `share`, a number in 0..1; the part is either under `part:` or given by its own key
next to `share:`, as in `{section: Examples, share: 0.3}`).

A part of the prompt is named by exactly one of
  `{line: N}`          line N of the file (1-based, as editors number lines), in the prompt body;
  `{section: TITLE}`   a Markdown section: its heading line (`# TITLE`, any level, the `#`s may
                       be included) up to the next heading of the same or a higher level;
  `{variable: NAME}`   every `{{NAME}}` marker in the body (the sample value the model reads);
  `{text: TEXT}`       every occurrence of TEXT in the body;
or by a string: `"{{NAME}}"` is a variable, `"# TITLE"` (leading `#`) a section, any other
string a text. Only the prompt body counts (never the front matter), and a part must hold some
text the model reads, else the assertion is invalid.

Evidence. A part is resolved to ranges of file offsets; its *effect* is the sum of the scores
of the explanation's spans that overlap any of its ranges (each span once, whole: a span that
crosses the part's edge counts entirely, so at line granularity a quoted text gets its line's
score). For a whole line at line granularity with occlusion, that is the line's exact removal
effect; at finer granularities it is the sum of the finer units' effects, not a removal of the
part at once. The part's *share* is |effect| / the sum of |score| over all spans (0 when every
score is 0). `no_effect` passes when |effect| < `no_effect_threshold` nats; it needs scores
in nats (removal effects or signed estimates): on saliences or activations it is an error.
The answer is the explanation's target (the model's greedy answer), P(answer) its probability
(all its tokens together).

Invalid input (a malformed assertion, an unknown kind or setting, a part that is not in the
prompt, a share or probability outside 0..1) gives a `CheckError` with its line in the file;
all of them are collected, and the valid assertions are still checked.

No torch here (but validating a `method:` setting loads the method registry).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from promptxray.explainers.documents import (
    BOM,
    PromptDocument,
    document_kind,
    parse_document,
)
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import NO_EFFECT_NATS
from promptxray.explainers.render import format_prob
from promptxray.explainers.types import GRANULARITIES, Explanation

KEY = "checks"
ASSERT_KEY = "assert"
KINDS: tuple[str, ...] = ("answer_contains", "min_probability", "no_effect", "min_share")
PART_KEYS: tuple[str, ...] = ("line", "section", "variable", "text")
SETTINGS: tuple[str, ...] = ("method", "granularity", "max_new_tokens", "no_effect_threshold")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^\W\d]\w*)\s*\}\}")
_HEADING_RE = re.compile(r"[ ]{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")

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
    value: str | float | None = None  # answer_contains: the text; min_probability: the floor
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


# --- parsing -----------------------------------------------------------------------------------


def has_checks(source: str) -> bool:
    """Whether a prompt file declares checks (cheap: a `checks:` key at the start of a line in a
    leading `---` block); `load_checks` says whether they are valid."""
    return _checks_line(source) is not None


def _checks_line(source: str) -> int | None:
    """The line of a `checks:` key in a leading `---` block, if there is one."""
    start = 1 if source.startswith(BOM) else 0
    first = source.find("\n", start)
    if first < 0 or source[start:first].rstrip("\r") != "---":
        return None
    close = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE).search(source, first + 1)
    end = close.start() if close else len(source)
    key = re.compile(rf"^{KEY}[ \t]*:", re.MULTILINE).search(source, first + 1, end)
    return None if key is None else source.count("\n", 0, key.start()) + 1


def load_checks(source: str, path: str | None = None) -> CheckSpec | None:
    """The checks of a prompt file, or None when it has none. A prompt that does not parse
    raises its DocumentError (with its line); invalid checks are `CheckSpec.errors`."""
    kind = document_kind(path)
    if kind == "text":
        line = _checks_line(source)
        if line is None:
            return None
        return CheckSpec(
            path,
            line,
            errors=[
                CheckError(
                    line,
                    "plain-text prompts (.prompt, .txt) have no front matter: the model would "
                    "read these checks as prompt text; rename the file to .prompt.md (or "
                    ".prompty)",
                )
            ],
        )
    doc = parse_document(source, path)
    if KEY not in doc.front_matter:
        return None
    root, yaml_start = _compose(doc)
    return _Parser(doc, path, yaml_start).parse(root)


def _compose(doc: PromptDocument) -> tuple[yaml.MappingNode, int]:
    """The front matter's YAML node tree (with marks) and where its text starts in the file."""
    source = doc.source
    first = 1 if source.startswith(BOM) else 0
    yaml_start = source.index("\n", first) + 1
    close_start = source.rfind("\n", 0, doc.body_start - 1) + 1
    node = yaml.compose(source[yaml_start:close_start], Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)  # parse_document checked it is a mapping
    return node, yaml_start


class _Parser:
    """Turns the `checks:` node into a CheckSpec, collecting every error with its line."""

    def __init__(self, doc: PromptDocument, path: str | None, yaml_start: int) -> None:
        self.doc, self.path, self.yaml_start = doc, path, yaml_start
        self.errors: list[CheckError] = []
        self._constructor = yaml.SafeLoader("")

    # positions
    def offset(self, node: yaml.Node) -> int:
        return self.yaml_start + node.start_mark.index

    def line(self, node: yaml.Node) -> int:
        return self.doc.source.count("\n", 0, self.offset(node)) + 1

    def error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(CheckError(self.line(node), message, self.offset(node)))

    def value(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    # the block
    def parse(self, root: yaml.MappingNode) -> CheckSpec:
        key, node = next((k, v) for k, v in root.value if self.value(k) == KEY)
        spec = CheckSpec(self.path, self.line(key))
        entries: yaml.Node | None = None
        if isinstance(node, yaml.SequenceNode):
            entries = node
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = self.value(k)
                if name == ASSERT_KEY:
                    entries = v
                elif name in SETTINGS:
                    self.setting(spec, str(name), v)
                else:
                    known = ", ".join([ASSERT_KEY, *SETTINGS])
                    self.error(k, f"unknown key {name!r} under {KEY}:; expected one of {known}")
            if entries is None:
                self.error(key, f"{KEY}: has no `{ASSERT_KEY}:` list of assertions")
        else:
            self.error(
                node,
                f"{KEY}: must be a list of assertions, or a mapping with an `{ASSERT_KEY}:` list",
            )
        if entries is not None:
            if not isinstance(entries, yaml.SequenceNode):
                self.error(entries, f"`{ASSERT_KEY}:` must be a list of assertions (`- kind: …`)")
            elif not entries.value:
                self.error(entries, "the list of assertions is empty")
            else:
                for entry in entries.value:
                    found = self.assertion(entry)
                    if found is not None:
                        spec.assertions.append(found)
        spec.errors = self.errors
        return spec

    def setting(self, spec: CheckSpec, name: str, node: yaml.Node) -> None:
        value = self.value(node)
        if name == "method":
            if not isinstance(value, str):
                self.error(node, f"method must be a method name, not {value!r}")
                return
            try:
                from promptxray.explainers.registry import validate_method

                validate_method(value)
            except PromptXrayError as exc:
                self.error(node, str(exc))
                return
            spec.method = value
        elif name == "granularity":
            if value not in GRANULARITIES:
                self.error(
                    node, f"granularity must be one of {', '.join(GRANULARITIES)}, not {value!r}"
                )
                return
            spec.granularity = value
        elif name == "max_new_tokens":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.error(node, f"max_new_tokens must be a whole number >= 1, not {value!r}")
                return
            spec.max_new_tokens = value
        else:
            number = _number(value)
            if number is None or number < 0:
                self.error(node, f"no_effect_threshold must be a number >= 0 (nats), not {value!r}")
                return
            spec.no_effect_threshold = number

    # one assertion
    def assertion(self, entry: yaml.Node) -> Assertion | None:
        if not isinstance(entry, yaml.MappingNode) or len(entry.value) != 1:
            self.error(
                entry,
                f"an assertion is a mapping with one key, its kind ({', '.join(KINDS)}), "
                f"e.g. `- answer_contains: Paris`; got {_snippet(self.value(entry))}",
            )
            return None
        key, node = entry.value[0]
        kind = self.value(key)
        line, offset = self.line(entry), self.offset(entry)
        value = self.value(node)
        if kind == "answer_contains":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
                self.error(node, f"answer_contains needs a non-empty text, got {_snippet(value)}")
                return None
            text = str(value)
            return Assertion(kind, line, offset, f"answer_contains: {text!r}", value=text)
        if kind == "min_probability":
            floor = self.fraction(node, "min_probability")
            if floor is None:
                return None
            return Assertion(kind, line, offset, f"min_probability: {floor:g}", value=floor)
        if kind == "no_effect":
            part = self.part(node)
            if part is None:
                return None
            return Assertion(kind, line, offset, f"no_effect: {part.label}", part=part)
        if kind == "min_share":
            return self.min_share(node, line, offset)
        self.error(key, f"unknown assertion {_snippet(kind)}; expected one of {', '.join(KINDS)}")
        return None

    def min_share(self, node: yaml.Node, line: int, offset: int) -> Assertion | None:
        usage = (
            "min_share needs a part and a share, e.g. "
            "`min_share: {part: {line: 3}, share: 0.2}` or "
            "`min_share: {section: Intro, share: 0.2}`"
        )
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{usage}; got {_snippet(self.value(node))}")
            return None
        share_node = next((v for k, v in node.value if self.value(k) == "share"), None)
        rest = [(k, v) for k, v in node.value if self.value(k) != "share"]
        part_node: yaml.Node | None = None
        if len(rest) == 1 and self.value(rest[0][0]) == "part":
            part_node = rest[0][1]
        elif rest and all(self.value(k) in PART_KEYS for k, _ in rest):
            part_node = yaml.MappingNode("tag:yaml.org,2002:map", rest, node.start_mark)
        elif rest:
            for k, _ in rest:
                if self.value(k) not in (*PART_KEYS, "part"):
                    self.error(k, f"unknown key {_snippet(self.value(k))} in min_share; {usage}")
                    return None
            self.error(node, f"give the part either under `part:` or by its own key; {usage}")
            return None
        if share_node is None or part_node is None:
            self.error(node, f"{usage} (missing {'share' if share_node is None else 'part'})")
            return None
        share = self.fraction(share_node, "share")
        part = self.part(part_node)
        if share is None or part is None:
            return None
        text = f"min_share: {part.label} >= {share:g}"
        return Assertion("min_share", line, offset, text, part=part, share=share)

    def fraction(self, node: yaml.Node, name: str) -> float | None:
        value = self.value(node)
        number = _number(value)
        if number is None:
            self.error(node, f"{name} must be a number between 0 and 1, not {_snippet(value)}")
            return None
        if not 0 <= number <= 1:
            self.error(node, f"{name} must be between 0 and 1, not {number:g}")
            return None
        return number

    # parts
    def part(self, node: yaml.Node) -> Part | None:
        value = self.value(node)
        usage = "a part is {line: N}, {section: TITLE}, {variable: NAME}, {text: TEXT} or a string"
        if isinstance(value, str):
            stripped = value.strip()
            m = _PLACEHOLDER_RE.fullmatch(stripped)
            if m:
                return self.resolve(node, "variable", m.group(1))
            if stripped.startswith("#"):
                return self.resolve(node, "section", stripped)
            return self.resolve(node, "text", value)
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name in PART_KEYS:
                return self.resolve(node, str(name), arg)
        hint = " (a line is `{line: N}`)" if isinstance(value, int) else ""
        self.error(node, f"{usage}; got {_snippet(value)}{hint}")
        return None

    def resolve(self, node: yaml.Node, how: str, arg: Any) -> Part | None:
        doc = self.doc
        source, body = doc.source, doc.body_start
        ranges: list[tuple[int, int]] = []
        if how == "line":
            if isinstance(arg, bool) or not isinstance(arg, int):
                self.error(node, f"line must be a line number, not {_snippet(arg)}")
                return None
            label = f"line {arg}"
            found = line_range(source, arg)
            if found is None:
                lines = source.count("\n") + 1
                self.error(node, f"line {arg} is not in the file (it has {lines} lines)")
                return None
            if found[1] <= body:
                self.error(node, f"line {arg} is in the front matter, not in the prompt")
                return None
            ranges = [found]
        elif how == "section":
            title = str(arg).strip().lstrip("#").strip()
            label = f"section {title!r}"
            sections = _sections(source, body, title)
            if len(sections) > 1:
                lines = ", ".join(str(source.count("\n", 0, s) + 1) for s, _ in sections)
                self.error(
                    node,
                    f"section {title!r} has {len(sections)} headings (lines {lines}); "
                    "name the part by {line: N} or {text: ...} instead",
                )
                return None
            if not sections:
                self.error(node, f"no Markdown heading {title!r} in the prompt")
                return None
            ranges = sections
        elif how == "variable":
            name = str(arg).strip().strip("{}").strip()
            label = f"{{{{{name}}}}}"
            ranges = [
                (m.start(), m.end())
                for m in _PLACEHOLDER_RE.finditer(source, body)
                if m.group(1) == name
            ]
            if not ranges:
                self.error(node, f"no {label} in the prompt")
                return None
        else:
            text = str(arg)
            label = f"text {_short(text)!r}"
            if not text.strip():
                self.error(node, "a text part must not be empty")
                return None
            ranges = _occurrences(source, body, text)
            if not ranges:
                self.error(node, f"the text {_short(text)!r} is not in the prompt")
                return None
        if not _reads(doc, ranges):
            self.error(node, f"{label} holds no text the model reads (blank or a role marker)")
            return None
        return Part(label, tuple(ranges))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _snippet(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_range(source: str, line: int) -> tuple[int, int] | None:
    """File offsets of line `line` (1-based), without its line break."""
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        nl = source.find("\n", start)
        if nl < 0:
            return None
        start = nl + 1
    end = source.find("\n", start)
    end = len(source) if end < 0 else end
    if end > start and source[end - 1] == "\r":
        end -= 1
    return start, end


def _body_lines(source: str, body: int) -> list[tuple[int, int, int]]:
    """(start, end without the line break, next start) of each line from `body` on."""
    lines = []
    pos = body
    while pos < len(source):
        nl = source.find("\n", pos)
        nxt = len(source) if nl < 0 else nl + 1
        end = len(source) if nl < 0 else nl
        if end > pos and source[end - 1] == "\r":
            end -= 1
        lines.append((pos, end, nxt))
        pos = nxt
    return lines


def _sections(source: str, body: int, title: str) -> list[tuple[int, int]]:
    """The ranges of the sections headed `title` (heading line to the next heading of the same
    or a higher level); fenced code blocks are skipped."""
    headings: list[tuple[int, int, str]] = []  # (start, level, title)
    fence = False
    for start, end, _ in _body_lines(source, body):
        line = source[start:end]
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        m = None if fence else _HEADING_RE.fullmatch(line)
        if m:
            headings.append((start, len(m.group(1)), (m.group(2) or "").strip()))
    found = []
    for i, (start, level, name) in enumerate(headings):
        if name != title:
            continue
        end = next((s for s, lv, _ in headings[i + 1 :] if lv <= level), len(source))
        found.append((start, end))
    return found


def _occurrences(source: str, body: int, text: str) -> list[tuple[int, int]]:
    found = []
    pos = source.find(text, body)
    while pos >= 0:
        found.append((pos, pos + len(text)))
        pos = source.find(text, pos + len(text))
    return found


def _reads(doc: PromptDocument, ranges: list[tuple[int, int]]) -> bool:
    """Whether any of `ranges` overlaps text the model reads (a segment of a message)."""
    return any(
        doc.source[max(start, seg.start) : min(end, seg.end)].strip()
        for m in doc.messages
        for seg in m.segments
        for start, end in ranges
    )


# --- evaluation --------------------------------------------------------------------------------


def _score(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def part_effect(expl: Explanation, part: Part) -> tuple[float, float, int]:
    """(effect, share, spans): the sum of the scores of the spans overlapping the part, its
    |effect| over the total |score| of all spans, and how many spans overlap it."""
    total = sum(abs(_score(s.score)) for s in expl.spans)
    overlapping = [
        s for s in expl.spans if any(s.start < end and start < s.end for start, end in part.ranges)
    ]
    effect = sum(_score(s.score) for s in overlapping)
    share = abs(effect) / total if total > 0 else 0.0
    return effect, share, len(overlapping)


def evaluate(spec: CheckSpec, expl: Explanation) -> list[CheckResult]:
    """Check every valid assertion of `spec` on `expl` (an explanation of the same text)."""
    return [check(a, expl, spec.no_effect_threshold) for a in spec.assertions]


def check(
    assertion: Assertion, expl: Explanation, threshold: float = NO_EFFECT_NATS
) -> CheckResult:
    """One assertion on one explanation, with its evidence."""
    answer, prob = expl.target.text, expl.target.prob
    said = f"answer {answer!r} (P={format_prob(prob)})"
    if assertion.kind == "answer_contains":
        wanted = str(assertion.value)
        ok = wanted in answer
        verb = "contains" if ok else "does not contain"
        return CheckResult(
            assertion, _status(ok), Evidence(answer, prob), f"{said} {verb} {wanted!r}"
        )
    if assertion.kind == "min_probability":
        floor = float(assertion.value or 0.0)
        ok = prob >= floor
        relation = ">=" if ok else "<"
        detail = f"P(answer)={format_prob(prob)} {relation} {floor:g}; answer {answer!r}"
        return CheckResult(assertion, _status(ok), Evidence(answer, prob), detail)
    assert assertion.part is not None
    effect, share, count = part_effect(expl, assertion.part)
    evidence = Evidence(answer, prob, effect, share, count)
    figures = f"effect {effect:+.3g} ({expl.score_kind}, {expl.method}/{expl.granularity}), "
    figures += f"share {share:.0%} of the total |effect|, {count} span{'s' if count != 1 else ''}"
    if count == 0:
        detail = f"no span of the explanation overlaps {assertion.part.label}"
        return CheckResult(assertion, "error", evidence, detail)
    if assertion.kind == "no_effect":
        if not expl.score_kind.in_nats:
            detail = (
                f"no_effect needs scores in nats (removal or estimate methods); {expl.method} "
                f"gives {expl.score_kind} scores: {figures}"
            )
            return CheckResult(assertion, "error", evidence, detail)
        ok = abs(effect) < threshold
        relation = "<" if ok else ">="
        detail = f"{figures}; |effect| {relation} {threshold:g} nats"
        return CheckResult(assertion, _status(ok), evidence, detail)
    floor = assertion.share or 0.0
    ok = share >= floor
    relation = ">=" if ok else "<"
    detail = f"{figures}; share {share:.1%} {relation} {floor:.0%}"
    return CheckResult(assertion, _status(ok), evidence, detail)


def _status(ok: bool) -> Status:
    return "pass" if ok else "fail"
