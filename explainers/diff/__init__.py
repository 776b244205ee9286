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
of *that* answer. The choice made here ("same target", `versions.rescore_target`): the default
`explain_versions` (what `promptxray diff` runs) and the language server's diffWithSaved
explain the new version against the OLD version's answer, so every change is a change in
support for one and the same answer, and report the new version's own answer too
(`new_own_answer`, `new_own_prob`). When the answer changed, that is said first, before any
part. With `same_target=False` each version is explained against its own answer; when those
differ the diff says its scores are not comparable (`comparable` false, `mismatches` say why)
but still lists them.

Modules: `types.py` (the plain data, JSON both ways), `align.py` (pairing parts and scoring
the changes: pure functions), `versions.py` (running both versions on a backend, imported only
then). The sentences (text and Markdown renderings, in English and Chinese) are in
`promptxray.explainers.nl.diff_text`.
"""

from promptxray.explainers.diff.align import align, default_threshold, diff_explanations
from promptxray.explainers.diff.types import STATUSES, ExplanationDiff, Mismatch, PartChange
from promptxray.explainers.diff.versions import explain_versions, own_answer, rescore_target

__all__ = [
    "STATUSES",
    "ExplanationDiff",
    "Mismatch",
    "PartChange",
    "align",
    "default_threshold",
    "diff_explanations",
    "explain_versions",
    "own_answer",
    "rescore_target",
]
