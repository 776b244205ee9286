"""What an edit changed: the explanation of one version of a prompt against another's.

`diff_explanations(old, new, old_source, new_source)` aligns the scored parts (spans) of the
two versions by their text and reports, per part, its old and new score, the change and a
status:

- "new": only in the new version (an added or rewritten part with no counterpart);
- "removed": only in the old version;
- "same": in both, the score moved by less than the threshold;
- "gained" / "lost": in both, and its influence (|score|) grew / shrank; a part whose text
  was edited is paired with its old text when the two are similar (`edited` is then true).

Offsets of the new version (`new_start`, `new_end`) point into the new file, those of the old
version into the old file. Parts come in document order (removed ones where they were).
`change` is always `new_score - old_score`, an absent side counting 0.

Comparable scores. Part scores are comparable only when both explanations used the same
method, granularity, model and target: a part's score says how much it raised the probability
of *that* answer. The choice made here: the default `explain_versions` (what `promptxray
diff` runs) explains the new version against the OLD version's answer ("same target"), so
every change is a change in support for one and the same answer, and it also generates the
new version's own answer and reports it (`new_own_answer`, `new_own_prob`). When the answer
changed, that is said first, before any part. With `same_target=False` each version is
explained against its own answer; when those differ the diff says its scores are not
comparable (`comparable` false, `notes` say why) but still lists them.

Everything here is plain data and pure functions except `own_answer` and
`explain_versions`, which run a backend (imported only then), so the language server and
the CLI share the alignment and the renderings.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from promptxray.explainers.details import ScoreKind
from promptxray.explainers.render import format_prob
from promptxray.explainers.types import Explanation, Span, Target, TargetToken

if TYPE_CHECKING:
    from promptxray.explainers.backends.base import Backend
    from promptxray.explainers.types import ExplainRequest

DEFAULT_THRESHOLD_NATS = 0.05  # |change| under this (nats): "same" (as nl.NO_EFFECT_NATS)
RELATIVE_THRESHOLD = 0.05  # unitless scores (salience): this share of the largest |score|
PAIR_SIMILARITY = 0.5  # an edited part is paired with its old text at least this similar
PAIR_LIMIT = 10_000  # a replaced block larger than this (old × new parts) is not paired up
STATUSES = ("new", "removed", "gained", "lost", "same")
_MARK = {"new": "+", "removed": "-", "gained": "↑", "lost": "↓", "same": "="}


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

    @property
    def influence_change(self) -> float:
        """|new score| - |old score|: how much more (or less) the part matters now."""
        return abs(self.new_score or 0.0) - abs(self.old_score or 0.0)


@dataclass
class ExplanationDiff:
    """Two explanations of two versions of a prompt, part by part (see the module's doc)."""

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
    notes: list[str] = field(default_factory=list)  # what limits the comparison, first first
    forward_passes: dict[str, int] = field(default_factory=dict)  # per run ("old", "new", ...)
    sequences_scored: dict[str, int] = field(default_factory=dict)
    old_path: str | None = None
    new_path: str | None = None

    def counts(self) -> dict[str, int]:
        """How many parts have each status."""
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
        data["score_kind"] = ScoreKind(data["score_kind"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ExplanationDiff:
        return cls.from_dict(json.loads(text))


def _score(span: Span) -> float:
    s = span.score
    return float(s) if s is not None and math.isfinite(s) else 0.0


def _key(text: str) -> str:
    """What is compared when aligning: the text with white space folded."""
    return " ".join(text.split())


def default_threshold(old: Explanation, new: Explanation) -> float:
    """The smallest |change| that counts: 0.05 nats for scores in nats; for unitless scores,
    5% of the largest |score| of either version."""
    if old.score_kind.in_nats and new.score_kind.in_nats:
        return DEFAULT_THRESHOLD_NATS
    largest = max((abs(_score(s)) for s in [*old.spans, *new.spans]), default=0.0)
    return RELATIVE_THRESHOLD * largest


def align(old_spans: list[Span], new_spans: list[Span]) -> list[tuple[int | None, int | None]]:
    """Pairs (old index, new index) in document order; None where a part has no counterpart.
    Equal texts align by difflib; inside a replaced block, an old part pairs with the most
    similar later new part when they are at least PAIR_SIMILARITY alike (an edited part);
    blocks over PAIR_LIMIT comparisons are left unpaired (removed, then new)."""
    a = [_key(s.text) for s in old_spans]
    b = [_key(s.text) for s in new_spans]
    pairs: list[tuple[int | None, int | None]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
            continue
        if (i2 - i1) * (j2 - j1) > PAIR_LIMIT:
            pairs.extend((i, None) for i in range(i1, i2))
            pairs.extend((None, k) for k in range(j1, j2))
            continue
        j = j1
        for i in range(i1, i2):
            best, best_ratio = None, PAIR_SIMILARITY
            for k in range(j, j2):
                m = difflib.SequenceMatcher(None, a[i], b[k], autojunk=False)
                if m.real_quick_ratio() < best_ratio or m.quick_ratio() < best_ratio:
                    continue
                ratio = m.ratio()
                if ratio > best_ratio or (best is None and ratio == best_ratio):
                    best, best_ratio = k, ratio
            if best is None:
                pairs.append((i, None))
                continue
            pairs.extend((None, k) for k in range(j, best))
            pairs.append((i, best))
            j = best + 1
        pairs.extend((None, k) for k in range(j, j2))
    return pairs


def _status(old_score: float | None, new_score: float | None, threshold: float) -> str:
    if old_score is None:
        return "new"
    if new_score is None:
        return "removed"
    if abs(new_score - old_score) < threshold:
        return "same"
    return "gained" if abs(new_score) >= abs(old_score) else "lost"


def _notes(old: Explanation, new: Explanation, answer_changed: bool, own: Target) -> list[str]:
    notes = []
    if answer_changed:
        notes.append(
            f"The answer changed: {old.target.text!r} → {own.text!r}"
            + (
                f"; the new version is scored against the old answer {old.target.text!r}."
                if new.target.text == old.target.text
                else "; each version is scored against its own answer, so the part scores "
                "are not comparable."
            )
        )
    elif new.target.text != old.target.text:
        notes.append(
            f"The versions were explained against different targets ({old.target.text!r}, "
            f"{new.target.text!r}): the part scores are not comparable."
        )
    foils = [getattr(e, "foil", None) for e in (old, new)]  # contrastive: P(target) − P(foil)
    texts = [f.text if f is not None else None for f in foils]
    if texts[0] != texts[1]:
        notes.append(f"The foils differ ({texts[0]!r} vs {texts[1]!r}): not comparable.")
    for name in ("method", "granularity", "model", "score_kind"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            notes.append(f"The {name.replace('_', ' ')}s differ ({a} vs {b}): not comparable.")
    return notes


def diff_explanations(
    old: Explanation,
    new: Explanation,
    old_source: str,
    new_source: str,
    *,
    new_own: Target | None = None,
    threshold: float | None = None,
) -> ExplanationDiff:
    """Align the parts of two explanations (old and new version of a prompt) by their text
    and say how each part's score, and the answer, moved (see the module's doc).

    `new_own`: the new version's own answer when `new` was explained against another target
    (the old answer); without it the answer `new` explains counts as its own."""
    own = new_own if new_own is not None else new.target
    if threshold is None:
        threshold = default_threshold(old, new)
    answer_changed = own.text != old.target.text
    same_target = new.target.text == old.target.text
    notes = _notes(old, new, answer_changed, own)
    comparable = same_target and not any(n.endswith("not comparable.") for n in notes)
    parts = []
    for i, j in align(old.spans, new.spans):
        o = old.spans[i] if i is not None else None
        n = new.spans[j] if j is not None else None
        old_score = _score(o) if o is not None else None
        new_score = _score(n) if n is not None else None
        text = n.text if n is not None else o.text if o is not None else ""
        parts.append(
            PartChange(
                status=_status(old_score, new_score, threshold),
                text=text,
                change=(new_score or 0.0) - (old_score or 0.0),
                old_score=old_score,
                new_score=new_score,
                old_text=o.text if o is not None else None,
                new_text=n.text if n is not None else None,
                old_start=o.start if o is not None else None,
                old_end=o.end if o is not None else None,
                new_start=n.start if n is not None else None,
                new_end=n.end if n is not None else None,
                old_index=i,
                new_index=j,
                edited=o is not None and n is not None and _key(o.text) != _key(n.text),
                old_line=old_source.count("\n", 0, o.start) + 1 if o is not None else None,
                new_line=new_source.count("\n", 0, n.start) + 1 if n is not None else None,
            )
        )
    return ExplanationDiff(
        method=new.method,
        granularity=new.granularity,
        model=new.model,
        score_kind=new.score_kind,
        comparable=comparable,
        same_target=same_target,
        answer_changed=answer_changed,
        old_answer=old.target.text,
        old_prob=old.target.prob,
        new_answer=new.target.text,
        new_prob=new.target.prob,
        new_own_answer=own.text,
        new_own_prob=own.prob,
        threshold=threshold,
        parts=parts,
        notes=notes,
        forward_passes={"old": old.forward_passes, "new": new.forward_passes},
        sequences_scored={"old": old.sequences_scored, "new": new.sequences_scored},
        old_path=old.path,
        new_path=new.path,
    )


# --- running both versions ---------------------------------------------------------------------


def own_answer(request: ExplainRequest, backend: Backend) -> Target:
    """The model's own (greedy) answer to `request.text` and its probability: one generation
    and one scoring pass, no attribution."""
    from promptxray.explainers.documents import parse_document
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.targets import resolve_target

    doc = parse_document(request.text, request.path)
    model_input = build_input(doc, backend, request.chat_template)
    ids, generated = resolve_target(
        backend, model_input.ids, request.target, request.max_new_tokens, request.target_ids
    )
    row = backend.target_logprobs([model_input.ids], ids, reference=model_input.ids)[0]
    tokens = [
        TargetToken(backend.piece(t), int(t), float(lp)) for t, lp in zip(ids, row, strict=True)
    ]
    return Target(backend.decode(ids), tokens, float(sum(row)), generated)


def explain_versions(
    old_request: ExplainRequest,
    new_request: ExplainRequest,
    backend: Backend,
    same_target: bool = True,
    threshold: float | None = None,
) -> tuple[ExplanationDiff, Explanation, Explanation]:
    """Explain two versions of a prompt on one backend and diff them.

    With `same_target` (the default) and no target in `new_request`, the new version is
    explained against the old version's answer, and its own answer is generated once and
    reported. The backend's score cache is on for both runs (inputs scored for the old
    version are not rerun for the new) and left as it was found."""
    from dataclasses import replace

    from promptxray.explainers.explain import explain

    had_cache = backend.score_cache is not None
    backend.enable_score_cache()
    try:
        old = explain(old_request, backend=backend)
        fixed = new_request.target is None and not new_request.target_ids
        own: Target | None = None
        passes = 0
        if same_target and fixed:
            backend.counters.reset()
            own = own_answer(new_request, backend)
            passes = backend.counters.forward_passes
            ids = [t.token_id for t in old.target.tokens]
            new_request = replace(new_request, target_ids=ids)
        new = explain(new_request, backend=backend)
    finally:
        if not had_cache:
            backend.score_cache = None
    diff = diff_explanations(
        old, new, old_request.text, new_request.text, new_own=own, threshold=threshold
    )
    if own is not None:
        diff.forward_passes["new_own_answer"] = passes
    return diff, old, new


# --- renderings --------------------------------------------------------------------------------


def _short(text: str, limit: int = 36) -> str:
    text = " ".join(text.split()) or text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if x == 0 or abs(x) >= 1e-3 else f"{x:+.1e}"


def _where(source: str | None, offset: int | None) -> str:
    if source is None or offset is None:
        return ""
    line = source.count("\n", 0, offset) + 1
    return f"{line}:{offset - source.rfind(chr(10), 0, offset)}"


def answer_lines(diff: ExplanationDiff) -> list[str]:
    """The answer and its probability, old → new; a changed answer first."""
    old_p, new_p = format_prob(diff.old_prob), format_prob(diff.new_prob)
    if diff.answer_changed:
        lines = [
            f"The answer changed: {diff.old_answer!r} (P={old_p}) → {diff.new_own_answer!r} "
            f"(P={format_prob(diff.new_own_prob)})."
        ]
        if diff.same_target:
            lines.append(
                f"Parts are scored against the old answer {diff.old_answer!r}, whose "
                f"probability moved {old_p} → {new_p}."
            )
        else:
            lines.append("Each version is scored against its own answer: not comparable.")
        return lines
    if not diff.same_target:
        return [f"Answers: {diff.old_answer!r} (P={old_p}) → {diff.new_answer!r} (P={new_p})."]
    return [f"Same answer {diff.old_answer!r}: P {old_p} → {new_p}."]


def _describe(part: PartChange, old_source: str | None, new_source: str | None) -> str:
    if part.status == "new":
        where = _where(new_source, part.new_start)
        return f"{_short(part.text)!r} {where} new, {_fmt(part.new_score)}"
    if part.status == "removed":
        where = _where(old_source, part.old_start)
        return f"{_short(part.text)!r} (was {where}) removed, was {_fmt(part.old_score)}"
    where = _where(new_source, part.new_start)
    edited = f" (edited from {_short(part.old_text or '', 24)!r})" if part.edited else ""
    return (
        f"{_short(part.text)!r} {where}{edited} {part.status} "
        f"{_fmt(part.old_score)} → {_fmt(part.new_score)} ({_fmt(part.change)}){_flip(part)}"
    )


def _flip(part: PartChange) -> str:
    """A note when a part now pushes the other way."""
    a, b = part.old_score or 0.0, part.new_score or 0.0
    return ", sign flipped" if a * b < 0 else ""


def _tally(diff: ExplanationDiff) -> str:
    counts = diff.counts()
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])


def render_diff_text(
    diff: ExplanationDiff,
    old_source: str | None = None,
    new_source: str | None = None,
    top_k: int = 5,
    more: str | None = "every part and score: --format json",
) -> str:
    """A few lines: the answer (a changed one first), what limits the comparison, then the
    `top_k` largest changes, a tally, and where the details are (`more`)."""
    head = f"promptxray diff · {diff.method} · {diff.granularity} · {diff.model}"
    lines = [head, *answer_lines(diff)]
    lines += [n for n in diff.notes if not n.startswith("The answer changed")]
    changes = diff.changes()
    if changes:
        lines.append("Top changes:")
        for part in changes[: max(0, top_k)]:
            lines.append(f"  {_MARK[part.status]} {_describe(part, old_source, new_source)}")
    else:
        lines.append(f"No part's score moved by {diff.threshold:.3g} or more.")
    passes = " + ".join(f"{v} ({k})" for k, v in diff.forward_passes.items())
    lines.append(f"Parts: {_tally(diff)} · forward passes: {passes}")
    if more and len(changes) > top_k:
        lines.append(f"{len(changes) - top_k} more changes; {more}")
    elif more:
        lines.append(more[0].upper() + more[1:])
    return "\n".join(lines) + "\n"


def _md_code(text: str) -> str:
    """Text as inline code in a Markdown table cell."""
    text = _short(text, 60).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def render_diff_markdown(
    diff: ExplanationDiff,
    old_source: str | None = None,
    new_source: str | None = None,
    title: str = "promptxray: what the edit changed",
    limit: int = 30,
) -> str:
    """The diff for an editor: the answer first, then a table of the changed parts (largest
    change first, at most `limit`) and a tally."""
    out = [f"# {title}", "", f"{diff.method} · {diff.granularity} · {diff.model}", ""]
    out += [f"- {line}" for line in answer_lines(diff)]
    out += [f"- {n}" for n in diff.notes if not n.startswith("The answer changed")]
    out.append("")
    changes = diff.changes()
    if changes:
        out += [
            "| | Part | Where | Old | New | Change |",
            "|---|---|---|---:|---:|---:|",
        ]
        for part in changes[:limit]:
            if part.status == "removed":
                where = f"was {_where(old_source, part.old_start)}"
            else:
                where = _where(new_source, part.new_start)
            label = part.status + (" (edited)" if part.edited else "") + _flip(part)
            out.append(
                f"| {_MARK[part.status]} {label} | {_md_code(part.text)} | {where} | "
                f"{_fmt(part.old_score)} | {_fmt(part.new_score)} | {_fmt(part.change)} |"
            )
        if len(changes) > limit:
            out.append(f"\n{len(changes) - limit} smaller changes not shown.")
    else:
        out.append(f"No part's score moved by {diff.threshold:.3g} or more.")
    out += ["", f"Parts: {_tally(diff)}."]
    return "\n".join(out) + "\n"
