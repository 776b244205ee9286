"""What every backend behind an OpenAI-compatible server shares: the connection and the served
model's name, request counting, the request budget (checked before work beyond it starts),
and sending many requests at once in shared-prefix order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from promptxray.explainers.backends.base import Counters, ProgressFn
from promptxray.explainers.backends.openai_client import EngineClient
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.details import RemoteInfo
from promptxray.explainers.errors import BudgetError, EngineError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CONTEXT = 131_072  # a server that does not say (hosted APIs): its 400 answer is mapped


@dataclass(frozen=True)
class Served:
    """The model that answers: its name, context length, and where it is served."""

    name: str
    context_length: int
    endpoint: str

    @property
    def label(self) -> str:
        """The model as explanations name it: "NAME at ENDPOINT"."""
        return f"{self.name} at {self.endpoint}"


def choose_model(client: EngineClient, wanted: str | None) -> Served:
    """The served model's name and context length from /v1/models. A wrong name is an error
    naming the models the server offers; a server that serves several needs a choice."""
    listing = client.get("/v1/models")
    models = {str(m.get("id")): m for m in listing.get("data", []) if isinstance(m, dict)}
    if not models:
        raise EngineError(f"the server at {client.base} serves no model (GET /v1/models)")
    if wanted is None:
        if len(models) > 1:
            names = ", ".join(sorted(models)[:20])
            raise EngineError(
                f"the server at {client.base} serves {names}; choose one with --served-model "
                "(the servedModel setting)"
            )
        wanted = next(iter(models))
    if wanted not in models:
        names = ", ".join(sorted(models)[:20])
        raise EngineError(
            f"the server at {client.base} does not serve {wanted!r}; it serves {names}"
        )
    entry = models[wanted]
    context = entry.get("max_model_len") or entry.get("context_length") or DEFAULT_CONTEXT
    return Served(wanted, int(context), client.base)


class RemoteAccounting:
    """Counting and budgeting a server's requests, shared by the remote backends (mixed into
    a Backend, whose `counters` it updates under a lock: requests go out from many threads)."""

    counters: Counters
    options: BackendOptions
    served: Served

    # a front end's callback for the cost of each batch, said before it is sent
    on_cost: Callable[[str], None] | None = None

    def _init_remote(
        self, client: EngineClient, served: Served, options: BackendOptions, name: str
    ) -> None:
        """What a backend behind a server holds, beside the Backend's own state."""
        self.name = name
        self.client = client
        self.served = served
        self.served_model = served.name
        self.options = options
        self._lock = threading.Lock()

    def _count_request(self, tokens: int, sequences: int = 0) -> None:
        """Count one request of `tokens` prompt tokens that ran `sequences` sequences."""
        with self._lock:
            self.counters.tokens_sent += tokens
            self.counters.requests += 1
            self.counters.forward_passes += sequences
            self.counters.sequences += sequences

    def check_budget(self, requests: int, tokens: int) -> None:
        """BudgetError, before anything is sent, when `requests` more requests (of `tokens`
        prompt tokens in all) would pass the explanation's request budget."""
        limit = self.options.max_requests
        if self.on_cost is not None and requests > 1:
            self.on_cost(
                f"sending {requests} requests to {self.served.name} ({cost_words(self, tokens)})"
            )
        if limit is None or self.counters.requests + requests <= limit:
            return
        raise BudgetError(
            f"this explanation needs about {self.counters.requests + requests} requests to "
            f"{self.served.name} at {self.served.endpoint} ({cost_words(self, tokens)}), over "
            f"the budget of {limit}; raise --max-requests (the maxRequests setting) or choose "
            "a coarser granularity (line, section)"
        )

    def remote_info(self) -> RemoteInfo:
        """Which model answered, where, in which tier (and why not a better one), and what
        this explanation sent so far."""
        client = self.client
        caps = self.capabilities  # type: ignore[attr-defined]
        price = self.options.price_per_mtok
        return RemoteInfo(
            endpoint=self.served.endpoint,
            model=self.served.name,
            tier=caps.scoring.value,
            requests=self.counters.requests,
            tokens_sent=self.counters.tokens_sent,
            rate_limited=client.rate_limited,
            tier_note=getattr(self, "tier_note", None),
            price=None if price is None else self.counters.tokens_sent * price / 1e6,
        )


def cost_words(backend: Any, tokens: int) -> str:
    """'about N prompt tokens' and, when the user set a price, what they cost."""
    words = f"about {tokens:,} prompt tokens"
    price = backend.options.price_per_mtok
    if price is not None:
        words += f", about ${tokens * price / 1e6:.4f} at ${price:g} per million"
    return words


def rows_in_order(
    order: Sequence[int],
    one: Callable[[int], np.ndarray],
    width: int,
    concurrency: int,
    progress: ProgressFn | None,
    counters: Counters,
) -> np.ndarray:
    """Rows [len(order), width] of `one(i)` for each index in `order` (the order requests are
    sent in: longest shared prefix first), each placed at row i."""
    rows = run_concurrently(order, one, concurrency, progress, counters)
    out = np.zeros((len(order), width), dtype=np.float64)
    for i, row in zip(order, rows, strict=True):
        out[i] = row
    return out


def run_concurrently(
    items: Sequence[T],
    one: Callable[[T], R],
    concurrency: int,
    progress: ProgressFn | None = None,
    counters: Counters | None = None,
) -> list[R]:
    """`one(item)` for each item, `concurrency` in flight, started in the given order (sort
    items by shared prefix first, so a server's prefix cache serves what later ones reuse).
    A fault or a cancellation (raised by `progress`) stops the rest: no partial result."""
    out: list[Any] = [None] * len(items)
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        pending: dict[Future[R], int] = {}
        queue = iter(range(len(items)))
        for i in queue:
            pending[pool.submit(one, items[i])] = i
            if len(pending) >= concurrency:
                break
        done = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                out[pending.pop(future)] = future.result()
                done += 1
                if counters is not None:
                    counters.forward_passes += 1
                    counters.sequences += 1
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(one, items[nxt])] = nxt
            if progress:
                progress(done, len(items))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out
