"""`promptxray check PATH...`: explain each prompt that has `checks:` in its front matter and
check its assertions (explainers/checks/), for CI.

Files are checked as given; folders are searched (recursively, hidden folders and
node_modules skipped) for .prompt, .prompty, .prompt.md and .txt files that declare checks.
One backend explains every prompt (the model loads once). A prompt's own `checks:` settings
(method, granularity, max_new_tokens) win over the flags, which apply to the prompts that set
none. The report has one line per assertion (PASS, FAIL or ERROR, with its evidence, worded in
`--lang`) and a summary line; `--junit FILE` also writes JUnit XML (one testsuite for the run,
one testcase per assertion, classname = the file). Exit status: 0 when every assertion passes,
1 when any fails, 2 on a usage error or invalid input (a prompt or a check that cannot be read,
checked or explained; the other prompts are still checked and reported).

With `--since REV` (a git revision of the repository that holds each file) or `--since FILE`
(an older copy of the one file checked), a prompt whose assertions fail is checked at that
version too, and when it passed there, each hunk of the edit is reverted alone to find the
ones that broke it (explainers/checks/blame.py); the report and the JUnit failures say which.
An older version that cannot be read (no such revision, the file not in it, not in git, its
front matter or template broken) is an error (exit 2); the checks are still reported.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from promptxray.cli.backend_flags import add_backend_flags, backend_options
from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.checks import CheckResult, CheckSpec, has_checks, load_checks
from promptxray.explainers.checks.blame import Blame
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import blame_text, check_text
from promptxray.explainers.nl.templates import LANGUAGES
from promptxray.explainers.types import GRANULARITIES, ExplainRequest, Explanation

SUFFIXES = (".prompt", ".prompty", ".prompt.md", ".txt")
SKIP_DIRS = ("node_modules", "__pycache__")
SUITE = "promptxray check"


def add_check_parser(sub: Any) -> None:
    """Register `promptxray check` on the main parser's subparsers."""
    ck = sub.add_parser(
        "check",
        help="check the assertions in prompts' front matter (`checks:`) for CI",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    ck.add_argument("paths", nargs="+", metavar="PATH", help="prompt files or folders")
    ck.add_argument("--method", "-m", default="occlusion", help="for prompts whose checks set none")
    ck.add_argument(
        "--granularity",
        "-g",
        default="token",
        choices=GRANULARITIES,
        help="for prompts whose checks set none",
    )
    ck.add_argument("--model", help="a Hugging Face model folder or hub id (default: SmolLM2-135M)")
    ck.add_argument("--backend", default="torch", choices=BACKENDS)
    add_backend_flags(ck)
    ck.add_argument(
        "--max-new-tokens",
        type=int,
        default=8,
        help="length of the generated answer (for prompts whose checks set none)",
    )
    ck.add_argument(
        "--lang", default="en", choices=LANGUAGES, help="language of the evidence and summary"
    )
    ck.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    ck.add_argument(
        "--since",
        metavar="REV|FILE",
        help="on a failure, find the edit since this git revision (or older copy) that broke it",
    )
    ck.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model folder's own Python code to run (off by default)",
    )


@dataclass
class FileRun:
    """One prompt file: its checks, the explanation they were checked on, the results, and
    what went wrong (a file that cannot be read or explained)."""

    path: str
    spec: CheckSpec | None = None
    explanation: Explanation | None = None
    results: list[CheckResult] = field(default_factory=list)
    problem: str | None = None  # the file cannot be read, parsed or explained
    seconds: float = 0.0
    blame: Blame | None = None  # --since: which edit broke the failing assertions
    since_problem: str | None = None  # --since: the older version cannot be read

    @property
    def cases(self) -> int:
        """Testcases: one per assertion and invalid check (one for an unreadable file)."""
        if self.spec is None:
            return 1
        return max(1, len(self.spec.assertions) + len(self.spec.errors))


def find_prompts(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files to check, usage errors): files as given, folders searched for prompt files
    that declare checks."""
    files: list[str] = []
    problems: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [str(p) for p in sorted(_walk(path)) if _declares_checks(p)]
            if not found:
                problems.append(f"no prompt files with checks: under {given}")
            files.extend(found)
        elif path.is_file():
            files.append(given)
        else:
            problems.append(f"{given}: no such file or folder")
    return list(dict.fromkeys(files)), problems


def _walk(folder: Path) -> list[Path]:
    found = []
    for p in folder.rglob("*"):
        parts = p.relative_to(folder).parts
        if any(part.startswith(".") or part in SKIP_DIRS for part in parts[:-1]):
            continue
        if p.is_file() and p.name.lower().endswith(SUFFIXES):
            found.append(p)
    return found


def _declares_checks(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return True  # reported when it is read
    if b"checks" not in data:
        return False
    return has_checks(data.decode("utf-8", errors="replace"))


def load(path: str) -> FileRun:
    """Read a prompt's checks; a file that cannot be read or parsed, or has none, is a problem."""
    from promptxray.explainers.prompt.document import read_prompt_file

    run = FileRun(path)
    try:
        run.spec = load_checks(read_prompt_file(path), path)
    except PromptXrayError as exc:
        run.problem = str(exc)
        return run
    if run.spec is None:
        run.problem = f"{path} has no checks: (a `checks:` key in its front matter)"
    return run


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    files, problems = find_prompts(args.paths)
    if args.since and Path(args.since).is_file() and len(files) > 1:
        problems.append(f"--since {args.since}: an older copy goes with one prompt file")
        args = argparse.Namespace(**{**vars(args), "since": None})
    for problem in problems:
        print(f"promptxray: error: {problem}", file=sys.stderr)
    if not files:
        return 2
    runs = [load(path) for path in files]
    started = time.perf_counter()
    if any(r.spec is not None and r.spec.assertions for r in runs):
        _explain_all(runs, args)
    seconds = time.perf_counter() - started
    report(runs, out, args.lang)
    if args.junit:
        write_junit(runs, args.junit, seconds, args)
    if problems or any(_invalid(r) or r.since_problem for r in runs):
        return 2
    failed = any(res.status == "fail" for r in runs for res in r.results)
    return 1 if failed else 0


def _invalid(run: FileRun) -> bool:
    return (
        run.problem is not None
        or (run.spec is not None and bool(run.spec.errors))
        or any(res.status == "error" for res in run.results)
    )


def _explain_all(runs: list[FileRun], args: argparse.Namespace) -> None:
    """Explain every prompt with assertions on one backend (loaded once) and check them."""
    from promptxray.cli.main import _say
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.checks import evaluate
    from promptxray.explainers.explain import explain
    from promptxray.explainers.prompt.document import read_prompt_file
    from promptxray.explainers.registry import validate_method

    validate_method(args.method)  # fail fast, before a model is loaded
    options = backend_options(args)
    backend = get_backend(
        args.backend,
        args.model,
        trust_remote_code=args.trust_remote_code,
        progress=_say,
        options=options,
    )
    for run in runs:
        spec = run.spec
        if spec is None or not spec.assertions:
            continue
        began = time.perf_counter()
        request = ExplainRequest(
            text=read_prompt_file(run.path),
            path=run.path,
            method=spec.method or args.method,
            granularity=spec.granularity or args.granularity,
            model=args.model,
            backend=args.backend,
            max_new_tokens=spec.max_new_tokens or args.max_new_tokens,
            faithfulness=False,
            backend_options=options,
        )
        try:
            run.explanation = explain(request, backend=backend)
        except PromptXrayError as exc:
            run.problem = f"could not explain {run.path}: {exc}"
        else:
            run.results = evaluate(spec, run.explanation, args.lang, request.text)
            if args.since:
                blame_run(run, request, args, backend)
        run.seconds = time.perf_counter() - began


def blame_run(
    run: FileRun, request: ExplainRequest, args: argparse.Namespace, backend: Any
) -> None:
    """--since: read the older version; when assertions fail, find the edit that broke them
    (an older version that cannot be read is the run's `since_problem`)."""
    from promptxray.explainers.checks.blame import blame_edit
    from promptxray.explainers.diff.revisions import read_version
    from promptxray.explainers.prompt.document import parse_document

    failed = [res for res in run.results if res.status == "fail"]
    try:
        old_text, label = read_version(args.since, run.path)
        parse_document(old_text, run.path)
    except PromptXrayError as exc:
        run.since_problem = f"the version --since {args.since} cannot be read: {exc}"
        return
    if failed and run.explanation is not None and run.spec is not None:
        run.blame = blame_edit(
            request, run.explanation, run.spec, failed, old_text, label, backend, args.lang
        )


# --- the report --------------------------------------------------------------------------------


def report(runs: list[FileRun], out: TextIO, lang: str = "en") -> None:
    """One header per file, one line per assertion (and invalid check), one summary line."""
    for run in runs:
        expl, spec = run.explanation, run.spec
        if expl is not None:
            head = check_text.file_head(run.path, expl, run.seconds, lang)
        else:
            head = f"{run.path}:"
        print(head, file=out)
        if spec is None:
            print(f"  ERROR {run.path}: {run.problem}", file=out)
            continue
        lines: list[tuple[int, str]] = []
        for err in spec.errors:
            invalid = check_text.invalid_line(err.message, lang)
            lines.append((err.line, f"  ERROR {run.path}:{err.line}: {invalid}"))
        if run.problem is not None:
            for a in spec.assertions:
                lines.append((a.line, f"  ERROR {run.path}:{a.line}: {a.text} — {run.problem}"))
        for res in run.results:
            a = res.assertion
            tag = res.status.upper()
            lines.append((a.line, f"  {tag:<5} {run.path}:{a.line}: {a.text} — {res.detail}"))
        for _, line in sorted(lines, key=lambda item: item[0]):
            print(line, file=out)
        if run.since_problem is not None:
            print(f"  ERROR {run.path}: {run.since_problem}", file=out)
        if run.blame is not None:
            head, *rest = blame_text.blame_lines(run.blame, lang)
            print(f"  {head}", file=out)
            for line in rest:
                print(f"    {line}", file=out)
    print(summary(runs, lang), file=out)


def counts(runs: list[FileRun]) -> dict[str, int]:
    """Testcases, passed, failures and errors over the run (JUnit's counting)."""
    tests = sum(r.cases for r in runs)
    passed = sum(1 for r in runs for res in r.results if res.status == "pass")
    failures = sum(1 for r in runs for res in r.results if res.status == "fail")
    return {
        "tests": tests,
        "passed": passed,
        "failures": failures,
        "errors": tests - passed - failures,
    }


def summary(runs: list[FileRun], lang: str = "en") -> str:
    """The run's last line: OK or FAILED, and how many checks passed, failed or errored."""
    return check_text.summary_line(counts(runs), len(runs), lang)


# --- JUnit XML ---------------------------------------------------------------------------------


def junit(
    runs: list[FileRun], seconds: float, args: argparse.Namespace | None = None
) -> ET.Element:
    """The run as JUnit XML: <testsuites> with one <testsuite>, a <testcase> per assertion
    (classname = the file) with a <failure> (failed) or an <error> (invalid, not explained)."""
    c = counts(runs)
    lang = getattr(args, "lang", "en") if args is not None else "en"
    totals = {
        "tests": str(c["tests"]),
        "failures": str(c["failures"]),
        "errors": str(c["errors"]),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE, **totals})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE,
            **totals,
            "skipped": "0",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        },
    )
    props = ET.SubElement(suite, "properties")
    model = next((r.explanation.model for r in runs if r.explanation is not None), None)
    for name, value in (
        ("model", model or (args.model if args else None)),
        ("backend", args.backend if args else None),
    ):
        if value:
            ET.SubElement(props, "property", {"name": name, "value": str(value)})
    for run in runs:
        share = f"{run.seconds / run.cases:.3f}"
        if run.spec is None:
            case = _case(suite, run.path, "checks", share)
            _element(case, "error", run.problem or "", "InvalidPrompt", run.problem or "")
            continue
        for err in run.spec.errors:
            case = _case(suite, run.path, f"line {err.line}: invalid check", share)
            _element(
                case, "error", err.message, "InvalidCheck", f"{run.path}:{err.line}: {err.message}"
            )
        if run.problem is not None:
            for a in run.spec.assertions:
                case = _case(suite, run.path, f"line {a.line}: {a.text}", share)
                _element(case, "error", run.problem, "ExplainError", run.problem)
        for res in run.results:
            a = res.assertion
            case = _case(suite, run.path, f"line {a.line}: {a.text}", share)
            if res.status == "pass":
                continue
            kind = "failure" if res.status == "fail" else "error"
            typ = "AssertionFailed" if res.status == "fail" else "CannotCheck"
            message, body = res.detail, evidence_text(run, res)
            if res.status == "fail" and run.blame is not None:
                message = f"{res.detail} — {blame_text.verdict(run.blame, lang)}"
                body += "\n" + "\n".join(blame_text.blame_lines(run.blame, lang))
            elif res.status == "fail" and run.since_problem is not None:
                body += "\n" + run.since_problem
            _element(case, kind, message, typ, body)
    return root


def _case(suite: ET.Element, classname: str, name: str, seconds: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": seconds})


def _element(case: ET.Element, tag: str, message: str, typ: str, text: str) -> None:
    ET.SubElement(case, tag, {"message": message, "type": typ}).text = text


def evidence_text(run: FileRun, res: CheckResult) -> str:
    """The evidence behind a result, one figure a line."""
    a, ev = res.assertion, res.evidence
    lines = [f"{run.path}:{a.line}: {a.text}", res.detail, f"answer: {ev.answer!r}"]
    lines.append(f"P(answer): {ev.probability:.6g}")
    if ev.effect is not None and a.part is not None:
        lines.append(f"part: {a.part.label} ({ev.spans} spans)")
        lines.append(f"effect: {ev.effect:+.6g}")
        lines.append(f"share: {ev.share:.4f}")
    expl = run.explanation
    if expl is not None:
        lines.append(f"method: {expl.method}, granularity: {expl.granularity}, model: {expl.model}")
    return "\n".join(lines)


def write_junit(
    runs: list[FileRun], path: str, seconds: float, args: argparse.Namespace | None = None
) -> None:
    tree = ET.ElementTree(junit(runs, seconds, args))
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise PromptXrayError(f"cannot write {path}: {exc.strerror or exc}") from None
