"""Diffing two explanations: the parts of the old and new version paired by their text
(`align`), and each pair's scores, change and status (`diff_explanations`). Pure functions
on plain data: no backend, no wording (the sentences are in `nl/diff_text.py`)."""

from __future__ import annotations

import difflib

from promptxray.explainers.diff.types import MATCHED, ExplanationDiff, Mismatch, PartChange
from promptxray.explainers.nl.figures import finite_score
from promptxray.explainers.types import Explanation, Span, Target

DEFAULT_THRESHOLD_NATS = 0.05  # |change| under this (nats): "same" (as nl.NO_EFFECT_NATS)
RELATIVE_THRESHOLD = 0.05  # unitless scores (salience): this share of the largest |score|
PAIR_SIMILARITY = 0.5  # an edited part is paired with its old text at least this similar
PAIR_LIMIT = 10_000  # a replaced block larger than this (old × new parts) is not paired up


def _key(text: str) -> str:
    """What is compared when aligning: the text with white space folded."""
    return " ".join(text.split())


def default_threshold(old: Explanation, new: Explanation) -> float:
    """The smallest |change| that counts: 0.05 nats for scores in nats; for unitless scores,
    5% of the largest |score| of either version."""
    if old.score_kind.in_nats and new.score_kind.in_nats:
        return DEFAULT_THRESHOLD_NATS
    largest = max((abs(finite_score(s.score)) for s in [*old.spans, *new.spans]), default=0.0)
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


def _matched(expl: Explanation, what: str) -> str | None:
    """The value of one of MATCHED in an explanation (the target and foil by their text)."""
    if what == "target":
        return expl.target.text
    if what == "foil":
        foil = getattr(expl, "foil", None)  # contrastive: P(target) − P(foil)
        return foil.text if foil is not None else None
    value = getattr(expl, what)
    return value if isinstance(value, str) else str(value)


def mismatches(old: Explanation, new: Explanation) -> list[Mismatch]:
    """What the two explanations differ in, of what their part scores must share."""
    found = []
    for what in MATCHED:
        a, b = _matched(old, what), _matched(new, what)
        if a != b:
            found.append(Mismatch(what, a, b))
    return found


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
    and say how each part's score, and the answer, moved (see the package's doc).

    `new_own`: the new version's own answer when `new` was explained against another target
    (the old answer); without it the answer `new` explains counts as its own."""
    own = new_own if new_own is not None else new.target
    if threshold is None:
        threshold = default_threshold(old, new)
    found = mismatches(old, new)
    parts = []
    for i, j in align(old.spans, new.spans):
        o = old.spans[i] if i is not None else None
        n = new.spans[j] if j is not None else None
        old_score = finite_score(o.score) if o is not None else None
        new_score = finite_score(n.score) if n is not None else None
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
        comparable=not found,
        same_target=new.target.text == old.target.text,
        answer_changed=own.text != old.target.text,
        old_answer=old.target.text,
        old_prob=old.target.prob,
        new_answer=new.target.text,
        new_prob=new.target.prob,
        new_own_answer=own.text,
        new_own_prob=own.prob,
        threshold=threshold,
        parts=parts,
        mismatches=found,
        forward_passes={"old": old.forward_passes, "new": new.forward_passes},
        sequences_scored={"old": old.sequences_scored, "new": new.sequences_scored},
        old_path=old.path,
        new_path=new.path,
    )
