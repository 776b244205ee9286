"""`python -m promptxray.server`: the language server over stdio (or --tcp HOST PORT)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promptxray-server", description=__doc__)
    parser.add_argument(
        "--tcp",
        nargs=2,
        metavar=("HOST", "PORT"),
        help="listen on HOST PORT instead of stdio (use 127.0.0.1)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper())
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from promptxray.server.server import PromptXrayServer

    server = PromptXrayServer()
    if args.tcp:
        server.start_tcp(args.tcp[0], int(args.tcp[1]))
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
