"""The command-line flags that say how a backend is reached and run (an OpenAI-compatible
server: endpoint, model, key variable, tier, budget; torch's device and dtype), shared by
`promptxray explain`, `diff`, `check` and `chat`."""

from __future__ import annotations

import argparse

from promptxray.explainers.backends.options import (
    API_KEY_ENV,
    DEVICES,
    DTYPES,
    TIERS,
    BackendOptions,
)

DEFAULTS = BackendOptions()


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """--endpoint, --served-model, --api-key-env, --tier, --max-requests, --price,
    --concurrency, --request-timeout, --device and --dtype."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="openai: the server's URL, e.g. http://127.0.0.1:8000/v1 or https://api.openai.com/v1",
    )
    parser.add_argument(
        "--served-model",
        metavar="NAME",
        help="openai: the model name the server knows (default: the only model it serves)",
    )
    parser.add_argument(
        "--api-key-env",
        default=DEFAULTS.api_key_env,
        metavar="VAR",
        help=f"openai: the environment variable holding the API key (default {API_KEY_ENV}; "
        "the key itself is never a flag)",
    )
    parser.add_argument(
        "--tier",
        choices=TIERS,
        default=DEFAULTS.tier,
        help="openai: how figures are obtained; auto picks the best exact one the server "
        "offers (prompt log-probabilities, then generated-token log-probabilities, then text)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="openai: refuse, before sending them, explanations needing more requests",
    )
    parser.add_argument(
        "--price",
        type=float,
        metavar="USD",
        help="openai: the price of a million prompt tokens, to state each explanation's cost",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULTS.concurrency,
        metavar="N",
        help=f"openai: requests in flight at once (default {DEFAULTS.concurrency})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULTS.timeout_s,
        metavar="S",
        help=f"openai: seconds per request (default {DEFAULTS.timeout_s:g})",
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
        api_key_env=args.api_key_env,
        tier=args.tier,
        max_requests=args.max_requests,
        price_per_mtok=args.price,
        concurrency=args.concurrency,
        timeout_s=args.request_timeout,
        device=args.device,
        dtype=args.dtype,
    )
