"""`promptxray diff OLD NEW`: what an edit changed in the explanation of a prompt.

Both versions are explained on one backend (its score cache on, so inputs the old version
scored are not rerun). By default the new version is explained against the old version's
answer, so part scores are comparable ("same target"), and the new version's own answer is
generated and reported too; `--target-mode own` explains each against its own answer
(explainers/diff/ says why and what that changes). `--lang` picks the language of the text
and Markdown renderings.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from promptxray.cli.backend_flags import add_backend_flags
from promptxray.cli.prompt_args import add_sample_flag
from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.nl.templates import LANGUAGES
from promptxray.explainers.types import GRANULARITIES


def add_diff_parser(sub: Any) -> None:
    """The `diff` subcommand and its flags (those of `explain` that matter for a diff)."""
    d = sub.add_parser("diff", help="compare the explanations of two versions of a prompt")
    d.add_argument("old", help="the old version of the prompt file")
    d.add_argument("new", help="the new version of the prompt file")
    add_sample_flag(d)
    d.add_argument("--method", "-m", default="occlusion", help="see `promptxray methods`")
    d.add_argument(
        "--granularity",
        "-g",
        default="line",
        choices=GRANULARITIES,
        help="what one part is (default line: edits are usually whole lines)",
    )
    d.add_argument("--target", "-t", help="explain both versions against this text")
    d.add_argument(
        "--target-mode",
        choices=("same", "own"),
        default="same",
        help="same: score the new version against the old answer (comparable scores; its own "
        "answer is reported too); own: each version against its own answer",
    )
    d.add_argument("--model", help="a Hugging Face model folder or hub id (default: SmolLM2-135M)")
    d.add_argument("--backend", default="torch", choices=BACKENDS)
    add_backend_flags(d)
    d.add_argument("--max-new-tokens", type=int, default=8, help="length of the generated answer")
    d.add_argument("--chat", choices=("auto", "on", "off"), default="auto")
    d.add_argument(
        "--option", "-O", action="append", default=[], metavar="KEY=VALUE", help="method option"
    )
    d.add_argument("--format", "-f", default="text", choices=("text", "json", "markdown"))
    d.add_argument("--output", "-o", help="write here instead of stdout")
    d.add_argument(
        "--lang", default="en", choices=LANGUAGES, help="language of the text and Markdown formats"
    )
    d.add_argument("--top", type=int, default=5, help="how many changes to list (text format)")
    d.add_argument(
        "--threshold",
        type=float,
        metavar="NATS",
        help="|change| under this counts as the same (default 0.05 nats)",
    )
    d.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model folder's own Python code to run (off by default)",
    )


def run_diff(args: argparse.Namespace) -> int:
    from promptxray.cli.main import _say, parse_options, request_from_args
    from promptxray.cli.prompt_args import read_prompt
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.diff import explain_versions
    from promptxray.explainers.nl.diff_text import render_diff_markdown, render_diff_text
    from promptxray.explainers.registry import validate_method

    validate_method(args.method)  # fail fast, before a model is loaded
    read = [read_prompt(arg, args) for arg in (args.old, args.new)]
    sources = [source for source, _, _ in read]
    old_request, new_request = (
        request_from_args(
            args,
            source,
            path,
            **where,
            options=parse_options(args.option),
            faithfulness=False,  # a diff shows scores, not faithfulness figures
        )
        for source, path, where in read
    )
    backend = get_backend(
        args.backend,
        args.model,
        trust_remote_code=args.trust_remote_code,
        progress=_say,
        options=old_request.backend_options,
    )
    diff, _, _ = explain_versions(
        old_request,
        new_request,
        backend,
        same_target=args.target_mode == "same",
        threshold=args.threshold,
    )
    if args.format == "json":
        text = diff.to_json(indent=2) + "\n"
    elif args.format == "markdown":
        text = render_diff_markdown(diff, *sources, lang=args.lang)
    else:
        text = render_diff_text(diff, *sources, top_k=args.top, lang=args.lang)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
