"""The command-line flags that say how a backend is reached and run (the vLLM engine; torch's
device and dtype), shared by `promptxray explain` and `promptxray chat`."""

from __future__ import annotations

import argparse

from promptxray.explainers.backends.options import API_KEY_ENV, DEVICES, DTYPES, BackendOptions

DEFAULTS = BackendOptions()


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """--endpoint, --served-model, --concurrency, --request-timeout, --device and --dtype."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"vllm: the engine's URL, e.g. http://127.0.0.1:8000 (API key: ${API_KEY_ENV})",
    )
    parser.add_argument(
        "--served-model",
        metavar="NAME",
        help="vllm: the engine's --served-model-name (default: the only model it serves)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULTS.concurrency,
        metavar="N",
        help=f"vllm: requests in flight at once (default {DEFAULTS.concurrency})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULTS.timeout_s,
        metavar="S",
        help=f"vllm: seconds per request (default {DEFAULTS.timeout_s:g})",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=DEFAULTS.device,
        help="torch: auto picks CUDA when present",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=DEFAULTS.dtype,
        help="torch: auto is float32 on the CPU, bfloat16 on CUDA",
    )


def backend_options(args: argparse.Namespace) -> BackendOptions:
    """The BackendOptions the flags of `add_backend_flags` ask for (InvalidRequestError when
    one is out of range)."""
    return BackendOptions(
        endpoint=args.endpoint,
        served_model=args.served_model,
        concurrency=args.concurrency,
        timeout_s=args.request_timeout,
        device=args.device,
        dtype=args.dtype,
    )
