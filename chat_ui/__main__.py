"""`python -m promptxray.chat_ui` (and `promptxray chat`): serve the explaining chat."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    from promptxray.cli.backend_flags import add_backend_flags
    from promptxray.explainers.backends import BACKENDS
    from promptxray.explainers.nl import NO_EFFECT_NATS
    from promptxray.explainers.types import GRANULARITIES

    p = argparse.ArgumentParser(
        prog="promptxray chat", description="A chat whose every reply is explained."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--model", default=None, help="model folder or id (default: SmolLM2-135M)")
    p.add_argument(
        "--backend",
        default="torch",
        choices=list(BACKENDS),
        help="backend (default torch; replies stream on torch and openai, and come in one "
        "piece on onnx; openai: a model behind an OpenAI-compatible server at --endpoint)",
    )
    add_backend_flags(p)
    p.add_argument("--method", default="occlusion", help="explanation method (default occlusion)")
    p.add_argument(
        "--granularity",
        default="token",
        choices=GRANULARITIES,
        help="attribution unit (default token; auto: lines, then words and tokens where they "
        "matter, shown stage by stage with occlusion; message: one score per chat turn)",
    )
    p.add_argument(
        "--no-effect-threshold",
        type=_threshold,
        default=NO_EFFECT_NATS,
        metavar="NATS",
        help="a part whose effect on the reply's log-probability is under this many nats has "
        f"no measurable effect (default {NO_EFFECT_NATS})",
    )
    p.add_argument("--share", action="store_true", help=argparse.SUPPRESS)
    return p


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of nats >= 0, not {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from promptxray.chat_ui.app import build_app
    from promptxray.chat_ui.engine import ChatEngine
    from promptxray.cli.backend_flags import backend_options
    from promptxray.explainers.backends import REMOTE
    from promptxray.explainers.errors import PromptXrayError

    if args.backend in REMOTE and not args.endpoint:
        parser().error(
            f"--backend {args.backend} needs --endpoint URL: the address of an "
            "OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
        )
    try:
        options = backend_options(args)
        engine = ChatEngine(
            args.model,
            args.backend,
            args.method,
            args.granularity,
            args.no_effect_threshold,
            options=options,
        )
        # an unknown method, or one the backend cannot run (a gradient method on openai): the
        # message names the methods that do run, before anything is served
        engine.check_method(args.method)
    except PromptXrayError as exc:
        parser().error(str(exc))
    demo = build_app(engine)
    demo.launch(server_name=args.host, server_port=args.port, share=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
