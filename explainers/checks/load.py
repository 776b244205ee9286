"""Reading a prompt's `checks:` from its front matter: the settings and the assertions, each
validated, every invalid one collected as a `CheckError` with its line in the file."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from promptxray.explainers.checks.parts import InvalidPart, name_part
from promptxray.explainers.checks.spec import (
    ASSERT_KEY,
    KEY,
    KINDS,
    OWN_KEY,
    PART_KEYS,
    SETTINGS,
    Assertion,
    CheckError,
    CheckSpec,
    Part,
    snippet,
)
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.prompt.document import (
    BOM,
    PromptDocument,
    document_kind,
    front_matter_bounds,
    parse_document,
)
from promptxray.explainers.types import GRANULARITIES


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
    if key is None:  # under `promptxray:`, where Dotprompt and Copilot ignore it
        own = re.compile(rf"^{OWN_KEY}[ \t]*:", re.MULTILINE).search(source, first + 1, end)
        nested = re.compile(rf"^[ \t]+{KEY}[ \t]*:", re.MULTILINE)
        key = None if own is None else nested.search(source, own.end(), end)
    return None if key is None else source.count("\n", 0, key.start()) + 1


def load_checks(source: str, path: str | None = None) -> CheckSpec | None:
    """The checks of a prompt file, or None when it has none. A prompt that does not parse
    raises its DocumentError (with its line); invalid checks are `CheckSpec.errors`."""
    kind = document_kind(path, source)
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
                    "plain-text prompts (.txt, a .prompt without front matter) have no front "
                    "matter: the model would read these checks as prompt text; rename the file "
                    "to .prompt.md (or .prompty)",
                )
            ],
        )
    doc = parse_document(source, path)
    own = doc.front_matter.get(OWN_KEY)
    if KEY not in doc.front_matter and not (isinstance(own, dict) and KEY in own):
        return None
    root, yaml_start = _compose(doc)
    return _Parser(doc, path, yaml_start).parse(root)


def _compose(doc: PromptDocument) -> tuple[yaml.MappingNode, int]:
    """The front matter's YAML node tree (with marks) and where its text starts in the file."""
    source = doc.source
    bounds = front_matter_bounds(source, 1 if source.startswith(BOM) else 0)
    assert bounds is not None  # parse_document read the front matter from these very bounds
    yaml_start, close_start, _ = bounds
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
        found = [(k, v) for k, v in root.value if self.value(k) == KEY]
        for k, v in root.value:
            if self.value(k) == OWN_KEY and isinstance(v, yaml.MappingNode):
                found += [(kk, vv) for kk, vv in v.value if self.value(kk) == KEY]
        key, node = found[0]
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
                    assertion = self.assertion(entry)
                    if assertion is not None:
                        spec.assertions.append(assertion)
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
                f"e.g. `- answer_contains: Paris`; got {snippet(self.value(entry))}",
            )
            return None
        key, node = entry.value[0]
        kind = self.value(key)
        line, offset = self.line(entry), self.offset(entry)
        value = self.value(node)
        if kind == "answer_contains":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
                self.error(node, f"answer_contains needs a non-empty text, got {snippet(value)}")
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
        if kind == "no_redundant":
            nats = _number(value)
            if nats is None or nats < 0:
                self.error(
                    node,
                    "no_redundant needs the nats a redundant pair may cost (removing both), "
                    f"a number >= 0, e.g. `- no_redundant: 1.0`; got {snippet(value)}",
                )
                return None
            return Assertion(kind, line, offset, f"no_redundant: {nats:g}", value=nats)
        self.error(key, f"unknown assertion {snippet(kind)}; expected one of {', '.join(KINDS)}")
        return None

    def min_share(self, node: yaml.Node, line: int, offset: int) -> Assertion | None:
        usage = (
            "min_share needs a part and a share, e.g. "
            "`min_share: {part: {line: 3}, share: 0.2}` or "
            "`min_share: {section: Intro, share: 0.2}`"
        )
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{usage}; got {snippet(self.value(node))}")
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
                    self.error(k, f"unknown key {snippet(self.value(k))} in min_share; {usage}")
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
            self.error(node, f"{name} must be a number between 0 and 1, not {snippet(value)}")
            return None
        if not 0 <= number <= 1:
            self.error(node, f"{name} must be between 0 and 1, not {number:g}")
            return None
        return number

    # parts
    def part(self, node: yaml.Node) -> Part | None:
        try:
            return name_part(self.doc, self.value(node))
        except InvalidPart as exc:
            self.error(node, str(exc))
            return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)
