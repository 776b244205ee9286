"""Which hunks of an edit broke a check: a prompt's assertions fail now and passed at an older
version, so each hunk of the edit (`diff.hunks`, line hunks) is reverted alone and the failing
assertions are checked again on that version; the hunks whose reversal alone restores every
failing assertion are responsible, and are then reverted together once more.

What is rerun is what the failing assertions need: the greedy answer and its probability
(`diff.own_answer`: one generation and one scoring pass) for `answer_contains` and
`min_probability`, the explanation (`explain`, with the check's own method and granularity)
for `no_effect` and `min_share`, whose parts are carried over to the reverted file by
`diff.hunks.range_map`. For `answer_contains`, each variant also scores the answer that fails
now (one scoring pass), so hunks that do not flip the answer alone are still ranked by how far
they move it.

When no single hunk restores the check, hunks are added greedily, the ones that moved the
failing figure most first, until the reversal restores it (at most every hunk: that is the
older version, which passed). A hunk whose reversal alone leaves a prompt that cannot be read
(e.g. half of a template block) is reported as such and tried only together with others.

The plain data is here; the sentences (text, Markdown, JUnit, en and zh) are in
`nl/blame_text.py`. One backend runs every variant (the model loads once).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from promptxray.explainers.checks.evaluate import check
from promptxray.explainers.checks.spec import Assertion, CheckResult, CheckSpec, Part
from promptxray.explainers.diff.hunks import Hunk, line_hunks, range_map, revert
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.types import Explanation, Target

if TYPE_CHECKING:
    from promptxray.explainers.backends.base import Backend
    from promptxray.explainers.types import ExplainRequest

ANSWER_KINDS = ("answer_contains", "min_probability")


@dataclass
class Trial:
    """The failing assertions checked on the new file with the hunks `reverted` (indices into
    `Blame.hunks`) reverted: each one's result, or why the variant could not be checked."""

    reverted: tuple[int, ...]
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None  # the reverted file cannot be read, rendered or explained
    # how far from passing: how many still fail, then one figure per failing assertion
    figures: tuple[float, ...] = ()
    answer: Target | None = None  # the variant's own answer

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.status == "pass" for r in self.results)


@dataclass
class Blame:
    """The edit from the older version (`since`) to the file, and which of its hunks broke
    the failing assertions.

    verdict: "alone" (reverting each hunk of `responsible` alone restores the check),
    "together" (no single hunk does; reverting `responsible` together does), "whole" (only
    reverting every hunk does), "already_failed" (the older version fails too: nothing to
    blame), "no_edit" (the two versions are the same text)."""

    since: str
    failing: list[Assertion]
    hunks: list[Hunk]
    old: Trial
    alone: list[Trial] = field(default_factory=list)
    together: Trial | None = None  # the responsible hunks reverted together (when > 1 tried)
    responsible: tuple[int, ...] = ()
    verdict: str = "already_failed"
    searched: list[Trial] = field(default_factory=list)  # greedy steps beyond single hunks
    answers: int = 0  # variants run (an answer or an explanation each)
    generations: int = 0  # greedy answers generated
    forward_passes: int = 0
    seconds: float = 0.0


def blame_edit(
    request: ExplainRequest,
    explanation: Explanation,
    spec: CheckSpec,
    failed: list[CheckResult],
    old_text: str,
    since: str,
    backend: Backend,
    lang: str = "en",
) -> Blame:
    """Find the hunks of the edit `old_text` → `request.text` that make the `failed` results
    (of `spec`, checked on `explanation`, an explanation of `request`) fail."""
    started = time.perf_counter()
    backend.counters.reset()
    runner = _Runner(request, explanation, spec, [r.assertion for r in failed], backend, lang)
    hunks = line_hunks(old_text, request.text)
    runner.hunks = hunks
    every = tuple(range(len(hunks)))
    old = runner.trial(every)
    blame = Blame(since, runner.failing, hunks, old)
    if not hunks:
        blame.verdict = "no_edit"
    elif old.passed:
        _search(blame, runner)
    blame.answers = runner.answers
    blame.generations = runner.generations
    blame.forward_passes = backend.counters.forward_passes
    blame.seconds = time.perf_counter() - started
    return blame


def _search(blame: Blame, runner: _Runner) -> None:
    """Each hunk alone; then the responsible ones together, or a greedy set."""
    n = len(blame.hunks)
    blame.alone = [runner.trial((i,)) for i in range(n)] if n > 1 else [blame.old]
    singles = tuple(i for i, t in enumerate(blame.alone) if t.passed)
    if singles:
        blame.verdict, blame.responsible = "alone", singles
        if len(singles) > 1:
            blame.together = runner.trial(singles)
        return
    order = sorted(
        (i for i in range(n) if blame.alone[i].error is None), key=lambda i: blame.alone[i].figures
    )
    order += [i for i in range(n) if blame.alone[i].error is not None]
    for k in range(2, n):
        trial = runner.trial(tuple(sorted(order[:k])))
        blame.searched.append(trial)
        if trial.passed:
            blame.verdict, blame.responsible, blame.together = "together", trial.reverted, trial
            return
    blame.verdict, blame.responsible, blame.together = "whole", tuple(range(n)), blame.old


class _Runner:
    """Runs the failing assertions on reverted versions of the file, on one backend."""

    def __init__(
        self,
        request: ExplainRequest,
        explanation: Explanation,
        spec: CheckSpec,
        failing: list[Assertion],
        backend: Backend,
        lang: str,
    ) -> None:
        self.request, self.spec, self.failing = request, spec, failing
        self.backend, self.lang = backend, lang
        self.hunks: list[Hunk] = []
        self.failing_ids = [t.token_id for t in explanation.target.tokens]
        self.failing_answer = explanation.target.text
        self.explains = any(a.kind not in ANSWER_KINDS for a in failing)
        self.answers = self.generations = 0

    def trial(self, reverted: tuple[int, ...]) -> Trial:
        text = revert(self.request.text, self.hunks, reverted)
        variant = replace(self.request, text=text, target=None, target_ids=None)
        trial = Trial(reverted)
        self.answers += 1
        try:
            expl = self._explain(variant) if self.explains else None
            own = expl.target if expl is not None else self._answer(variant)
        except PromptXrayError as exc:
            trial.error = str(exc)
            return trial
        trial.answer = own
        stand_in = expl if expl is not None else _answer_only(own, self.backend)
        mapping = range_map(self.request.text, self.hunks, reverted)
        for a in self.failing:
            if a.part is not None:
                ranges = tuple(mapping(s, e) for s, e in a.part.ranges)
                a = replace(a, part=Part(a.part.label, ranges))
            trial.results.append(check(a, stand_in, self.spec.no_effect_threshold, self.lang))
        try:
            trial.figures = self._figures(variant, trial.results, own)
        except PromptXrayError as exc:  # pragma: no cover - the variant was just run
            trial.error = str(exc)
        return trial

    def _explain(self, variant: ExplainRequest) -> Explanation:
        from promptxray.explainers.explain import explain

        self.generations += 1
        return explain(replace(variant, faithfulness=False), backend=self.backend)

    def _answer(self, variant: ExplainRequest) -> Target:
        from promptxray.explainers.diff.versions import own_answer

        self.generations += 1
        return own_answer(variant, self.backend)

    def _figures(
        self, variant: ExplainRequest, results: list[CheckResult], own: Target
    ) -> tuple[float, ...]:
        """How far each failing assertion is from passing (0 when it passes; lower is closer):
        the log-probability of the answer that fails now (answer_contains), or the shortfall
        of the probability, effect or share against its bound. The count of those still
        failing comes first, so a variant that restores more ranks first."""
        from promptxray.explainers.diff.versions import own_answer

        figures: list[float] = []
        for res in results:
            a, ev = res.assertion, res.evidence
            if res.status == "pass":
                figures.append(-math.inf)
            elif a.kind == "answer_contains":
                if own.text == self.failing_answer:
                    figures.append(own.logprob)
                else:  # the failing answer's log-probability here: one scoring pass
                    fixed = replace(variant, target_ids=self.failing_ids)
                    figures.append(own_answer(fixed, self.backend).logprob)
            elif a.kind == "min_probability":
                figures.append(float(a.value or 0.0) - ev.probability)
            elif a.kind == "no_effect":
                figures.append(abs(ev.effect or 0.0) - self.spec.no_effect_threshold)
            elif a.kind == "no_redundant":
                figures.append(0.0)  # passes or not: no figure of closeness
            else:
                figures.append((a.share or 0.0) - (ev.share or 0.0))
        failing = sum(1 for r in results if r.status != "pass")
        return (float(failing), *figures)


def _answer_only(own: Target, backend: Backend) -> Explanation:
    """What answer assertions are checked on when no explanation was run: the variant's
    answer and nothing else (no spans, no figures)."""
    return Explanation(
        method="answer",
        backend=backend.name,
        model=backend.model_id,
        granularity="line",
        target=own,
        tokens=[],
        spans=[],
        input_tokens=0,
        context_length=0,
        wall_time_s=0.0,
        forward_passes=0,
        sequences_scored=0,
    )
