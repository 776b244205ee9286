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

Modules: `spec.py` (the plain data), `load.py` (reading and validating the front matter),
`parts.py` (a named part → file ranges), `evaluate.py` (checking the assertions on an
explanation); the sentences about results, in English and Chinese, are in
`promptxray.explainers.nl.check_text`. No torch here (but validating a `method:` setting loads
the method registry).
"""

from promptxray.explainers.checks.evaluate import check, evaluate, part_effect
from promptxray.explainers.checks.load import has_checks, load_checks
from promptxray.explainers.checks.parts import line_range
from promptxray.explainers.checks.spec import (
    Assertion,
    CheckError,
    CheckResult,
    CheckSpec,
    Evidence,
    Part,
)

__all__ = [
    "Assertion",
    "CheckError",
    "CheckResult",
    "CheckSpec",
    "Evidence",
    "Part",
    "check",
    "evaluate",
    "has_checks",
    "line_range",
    "load_checks",
    "part_effect",
]
