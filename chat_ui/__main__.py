"""`python -m promptxray.chat_ui` (and `promptxray chat`): serve the explaining chat."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="promptxray chat", description="A chat whose every reply is explained."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--model", default=None, help="model folder or id (default: SmolLM2-135M)")
    from promptxray.explainers.backends import BACKENDS

    p.add_argument(
        "--backend",
        default="torch",
        choices=list(BACKENDS),
        help="backend (default torch; replies stream only on torch)",
    )
    p.add_argument("--method", default="occlusion", help="explanation method (default occlusion)")
    p.add_argument(
        "--granularity",
        default="token",
        choices=["token", "word", "line"],
        help="attribution unit (default token)",
    )
    p.add_argument("--share", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from promptxray.chat_ui.app import build_app
    from promptxray.chat_ui.engine import ChatEngine
    from promptxray.explainers.errors import PromptXrayError
    from promptxray.explainers.registry import validate_method

    try:
        validate_method(args.method)
    except PromptXrayError as exc:
        parser().error(str(exc))
    engine = ChatEngine(args.model, args.backend, args.method, args.granularity)
    demo = build_app(engine)
    demo.launch(server_name=args.host, server_port=args.port, share=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
