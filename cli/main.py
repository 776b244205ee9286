"""The `promptxray` command: explain a prompt file in the terminal, as JSON, or as an HTML page;
`promptxray lsp` and `promptxray chat` start the other front ends (imported only then).

Errors a user can fix print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from promptxray.cli.backend_flags import add_backend_flags, backend_options
from promptxray.cli.prompt_args import add_sample_flag, read_prompt
from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import LANGUAGES, NO_EFFECT_NATS
from promptxray.explainers.nl.front_text import alternatives_text
from promptxray.explainers.types import GRANULARITIES, ExplainRequest, Explanation

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative

DESCRIPTION = "Show which parts of a prompt drive a language model's answer."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptxray", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="explain a prompt file (- for stdin)")
    ex.add_argument(
        "file",
        help="a prompt file (.prompt, .prompty, .prompt.md, .md, .txt), FILE.py:LINE for a "
        "prompt in Python code, or - for stdin",
    )
    add_sample_flag(ex)
    ex.add_argument("--method", "-m", default="occlusion", help="see `promptxray methods`")
    ex.add_argument("--target", "-t", help="explain this text instead of the model's own answer")
    ex.add_argument(
        "--foil",
        help="explain why the answer (or --target) rather than this text: every score is "
        "about log P(answer) - log P(foil)",
    )
    ex.add_argument(
        "--alternatives",
        action="store_true",
        help="also list the model's own alternative answers with their probabilities, each a "
        "--foil to ask about (text: after the summary; json: an 'alternatives' key)",
    )
    ex.add_argument(
        "--granularity",
        "-g",
        choices=GRANULARITIES,
        help="default: token (line on a server whose tokenizer is not known here)",
    )
    ex.add_argument("--model", help="a Hugging Face model folder or hub id (default: SmolLM2-135M)")
    ex.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="onnx: an ONNX Runtime export (made once, on first use; the default model's own "
        "GGUF blocks, other models int8); openai: a model "
        "behind any OpenAI-compatible server at --endpoint (vllm: one that must return "
        "prompt log-probabilities)",
    )
    add_backend_flags(ex)
    ex.add_argument("--max-new-tokens", type=int, default=8, help="length of the generated target")
    ex.add_argument(
        "--chat",
        choices=("auto", "on", "off"),
        default="auto",
        help="wrap the prompt in the model's chat template (auto: when it has one)",
    )
    ex.add_argument(
        "--option",
        "-O",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method option, e.g. -O n_steps=64 (repeatable)",
    )
    ex.add_argument("--format", "-f", default="text", choices=("text", "json", "html"))
    ex.add_argument("--output", "-o", help="write here instead of stdout")
    ex.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    ex.add_argument("--top", type=int, default=5, help="how many top drivers to list")
    ex.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="text format: after the summary, also print the full report (every figure)",
    )
    ex.add_argument(
        "--lang",
        default="en",
        choices=LANGUAGES,
        help="language of the plain-language summary and report (text and html formats)",
    )
    ex.add_argument(
        "--no-effect-threshold",
        type=float,
        default=NO_EFFECT_NATS,
        metavar="NATS",
        help=f"|effect| under this many nats: 'no measurable effect' (default {NO_EFFECT_NATS})",
    )
    ex.add_argument(
        "--self-explain",
        action="store_true",
        help="also ask the model why it answered so, and check its answer against the scores",
    )
    ex.add_argument(
        "--check-answer",
        action="store_true",
        help="on a quantized ONNX model, also run fp32 torch once and say if it answers "
        "differently (option reference_answer)",
    )
    ex.add_argument(
        "--stages",
        action="store_true",
        help="with -m occlusion -g auto: print each stage (blocks, lines, refined) to stderr "
        "as soon as it is done; the output is the final result",
    )
    ex.add_argument(
        "--proxy",
        nargs="?",
        const="default",
        metavar="MODEL",
        help="with --backend openai: a local model (default SmolLM2) explains first, printed "
        "to stderr; then the server scores only the parts that matter by it, and the result "
        "says how well the two agree",
    )
    ex.add_argument(
        "--proxy-top",
        type=int,
        default=8,
        metavar="N",
        help="with --proxy: how many of the proxy's largest parts the server scores (default 8)",
    )
    ex.add_argument(
        "--no-faithfulness",
        action="store_true",
        help="skip the faithfulness figures (saves a few batched forwards)",
    )
    ex.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model folder's own Python code to run (off by default)",
    )
    from promptxray.cli.diff import add_diff_parser

    add_diff_parser(sub)
    from promptxray.cli.check import add_check_parser

    add_check_parser(sub)
    sub.add_parser("methods", help="list the explainer methods and what they need")
    exp = sub.add_parser(
        "export-onnx", help="export a model to ONNX (its GGUF blocks, int8 or fp32), verified"
    )
    exp.add_argument("--model", help="a Hugging Face model folder or hub id (default: SmolLM2)")
    exp.add_argument(
        "--quantize",
        choices=("auto", "gguf", "int8", "none"),
        default="auto",
        help="auto: the GGUF file's own 4/8-bit blocks for the default model (lossless), else int8",
    )
    exp.add_argument("--out", help="output folder (default: the cache, where --backend onnx looks)")
    sub.add_parser(
        "chat", help="serve the explaining chat (Gradio, 127.0.0.1:7860)", add_help=False
    )
    lsp = sub.add_parser("lsp", help="run the language server (stdio, or --tcp HOST PORT)")
    lsp.add_argument("--tcp", nargs=2, metavar=("HOST", "PORT"))
    return parser


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """KEY=VALUE pairs, with numbers converted."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PromptXrayError(f"--option takes KEY=VALUE, got {pair!r}")
        converted: Any = value
        for kind in (int, float):
            try:
                converted = kind(value)
                break
            except ValueError:
                continue
        options[key] = converted
    return options


def _stage_progress(stream: TextIO) -> Any:
    """A progress callback drawing tqdm bars on stderr, or None when stderr is no terminal."""
    if not stream.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    labels = {"load": "loading model", "target": "finding target", "attribute": "attributing"}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=labels.get(stage, stage), file=stream, leave=False
            )
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def _quiet_transformers() -> None:
    import logging

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformers").setLevel(logging.ERROR)


def request_from_args(
    args: argparse.Namespace, source: str, path: str | None, **fields: Any
) -> ExplainRequest:
    """The request that the flags `explain` and `diff` share describe, for one prompt text;
    `fields` set the rest."""
    return ExplainRequest(
        text=source,
        path=path,
        method=args.method,
        target=args.target,
        granularity=args.granularity or "token",
        model=args.model,
        backend=args.backend,
        max_new_tokens=args.max_new_tokens,
        chat_template={"auto": None, "on": True, "off": False}[args.chat],
        backend_options=backend_options(args),
        **fields,
    )


def run_explain(args: argparse.Namespace) -> int:
    from promptxray.explainers.anytime import run_stages
    from promptxray.explainers.render import render_html, render_text

    source, path, where = read_prompt(args.file, args)
    request = request_from_args(
        args,
        source,
        path,
        **where,
        options={
            **parse_options(args.option),
            **({"reference_answer": True} if args.check_answer else {}),
        },
        faithfulness=not args.no_faithfulness,
        self_explain=args.self_explain,
        lang=args.lang,
        foil=args.foil,
    )
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.registry import validate_method

    validate_method(args.method)  # fail fast, before a model is loaded
    if args.foil is not None and args.method != "auto":
        from promptxray.explainers.registry import check_contrastive, get_method

        check_contrastive(get_method(args.method))
    backend = get_backend(
        args.backend,
        args.model,
        trust_remote_code=args.trust_remote_code,
        progress=_say,
        options=request.backend_options,
    )
    progress = _stage_progress(sys.stderr)
    if backend.capabilities.remote:
        backend.on_cost = _say  # what each batch costs, said before it is sent
    if args.granularity is None:  # tokens where the model's are known, else lines
        request = replace(
            request, granularity="token" if backend.capabilities.tokenizer else "line"
        )
    show = _stage_printer(args) if args.stages else None
    if args.proxy is not None:
        explanation = _proxy_then_verify(args, request, backend, show, progress)
    else:
        explanation = run_stages(request, backend, progress, on_stage=show)
    if show is not None:
        show(explanation)
    alternatives = _alternatives(args, request, backend, explanation)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "json":
            data = explanation.to_dict()
            if alternatives is not None:  # optional: the Explanation schema is unchanged
                data["alternatives"] = [a.to_dict() for a in alternatives]
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        elif args.format == "html":
            title = path or "stdin"
            lang, threshold = args.lang, args.no_effect_threshold
            out.write(render_html(explanation, source, title, lang=lang, threshold=threshold))
        else:
            color = args.color == "always" or (
                args.color == "auto" and out.isatty() and "NO_COLOR" not in os.environ
            )
            out.write(render_text(explanation, source, color=color, top_k=args.top))
            out.write("\n" + _said(explanation, args) + "\n")
            if alternatives is not None:
                pairs = [(a.text, a.prob) for a in alternatives]
                out.write("\n" + alternatives_text(pairs, args.lang) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _alternatives(
    args: argparse.Namespace, request: ExplainRequest, backend: Any, expl: Explanation
) -> list[Alternative] | None:
    """With --alternatives: the model's own alternative answers to the explained answer (an
    empty list where the backend offers none); without it, None."""
    if not args.alternatives:
        return None
    from promptxray.explainers.alternatives import request_alternatives

    return request_alternatives(backend, request, [t.token_id for t in expl.target.tokens])


def _proxy_then_verify(
    args: argparse.Namespace,
    request: ExplainRequest,
    server: Any,
    show: Callable[[Explanation], None] | None,
    progress: Any,
) -> Explanation:
    """--proxy: the local model's explanation first (printed as a stage), then the server's on
    the parts that matter by it, with their agreement."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.proxy_verify import explain_with_proxy

    proxy = get_backend(
        "torch",
        None if args.proxy == "default" else args.proxy,
        trust_remote_code=args.trust_remote_code,
        progress=_say,
    )
    say = show or _stage_printer(args)
    final: Explanation | None = None
    for expl in explain_with_proxy(request, server, proxy, args.proxy_top, progress):
        if expl.stage is not None and not expl.stage.final:
            say(expl)
        final = expl
    assert final is not None
    return final


def _said(expl: Any, args: argparse.Namespace) -> str:
    """What the text format says after the drivers: the summary (the hover's: drivers, parts
    against, the no-effect count, a verdict in words); with --verbose, the full report too."""
    from promptxray.explainers.nl import describe, summary

    text = summary(expl, args.lang, args.no_effect_threshold)
    if args.verbose:
        text += "\n\n" + describe(expl, lang=args.lang, threshold=args.no_effect_threshold)
    return text


def _stage_printer(args: Any) -> Callable[[Explanation], None]:
    """Prints each stage's summary to stderr as it arrives (`--stages`), after the stage tag
    every front end shows (its parts, place and fidelity) and the seconds it took."""
    from promptxray.explainers.nl import summary, timed_stage_tag

    def show(stage: Explanation) -> None:
        head = timed_stage_tag(stage, args.lang)
        text = summary(stage, args.lang, args.no_effect_threshold)
        print(f"promptxray: {head}{text}", file=sys.stderr, flush=True)

    return show


def _say(message: str) -> None:
    """Long one-off steps (converting, exporting) are announced on a terminal's stderr."""
    if sys.stderr.isatty():
        print(f"promptxray: {message}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    import json

    from promptxray.explainers.models.onnx_cache import MANIFEST
    from promptxray.explainers.models.onnx_export import export_onnx

    folder = export_onnx(args.model, args.quantize, args.out, progress=_say)
    manifest = json.loads((folder / MANIFEST).read_text())
    figures = manifest["verification"]
    print(
        f"{folder}\n{manifest['source_model']} -> ONNX ({manifest['quantization']}): top-1 "
        f"agreement with torch {figures['top1_agreement']:.1%}, max |logit diff| "
        f"{figures['max_abs_logit_diff']:.3g} over {figures['positions']} positions"
    )
    answers = manifest.get("answer_agreement")
    if answers:
        same = round(answers["same_answer"] * answers["prompts"])
        print(
            f"greedy answers ({answers['max_new_tokens']} tokens) equal to torch fp32's on "
            f"{same} of {answers['prompts']} prompts"
            + "".join(
                f"\n  {d['prompt']!r}: torch {d['torch_fp32']!r}, onnx {d['onnx']!r}"
                for d in answers["differing"]
            )
        )
    return 0


def run_methods() -> int:
    from promptxray.explainers.registry import AUTO, AUTO_SUMMARY, list_methods

    for spec in list_methods():
        needs = (
            "gradients"
            if spec.needs_gradients
            else "attentions"
            if spec.needs_attentions
            else "forward passes only"
        )
        print(f"{spec.name:22} {spec.summary} [{needs}]")
    print(f"{AUTO:22} {AUTO_SUMMARY} [what the methods it tries need]")
    return 0


EXTRAS = {"lsp": ("pygls", "lsprotocol"), "chat": ("gradio",)}


def _front_end(module: str, extra: str) -> Any:
    """The `main` of a front end that ships as an extra, or None (with one line saying how to
    install it) when its packages are missing."""
    import importlib

    for package in EXTRAS[extra]:
        try:
            importlib.import_module(package)
        except ImportError:
            print(
                f"promptxray: error: `promptxray {extra}` needs {package}: "
                f"pip install 'promptxray[{extra}]'",
                file=sys.stderr,
            )
            return None
    return importlib.import_module(module).main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["chat"]:  # the chat parses its own options (python -m promptxray.chat_ui)
        chat_main = _front_end("promptxray.chat_ui.__main__", "chat")
        return 2 if chat_main is None else int(chat_main(argv[1:]))
    args = build_parser().parse_args(argv)
    _quiet_transformers()
    try:
        if args.command == "methods":
            return run_methods()
        if args.command == "export-onnx":
            return run_export(args)
        if args.command == "check":
            from promptxray.cli.check import run_check

            return run_check(args)
        if args.command == "diff":
            from promptxray.cli.diff import run_diff

            return run_diff(args)
        if args.command == "lsp":
            serve = _front_end("promptxray.server.__main__", "lsp")
            if serve is None:
                return 2
            return int(serve(["--tcp", *args.tcp] if args.tcp else []))
        return run_explain(args)
    except PromptXrayError as exc:
        print(f"promptxray: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
