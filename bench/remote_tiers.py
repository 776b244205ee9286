"""The `openai` backend's tiers against one real vLLM engine (not a test).

Each tier is played by the same engine: prompt log-probabilities directly; generated-token
log-probabilities through a pass-through proxy that removes /tokenize and /v1/completions;
the same without an assistant prefill; text only through a proxy that removes every
log-probability (tests/vllm/proxy.py). Per tier, at line level: requests, prompt tokens sent,
wall seconds, the parts that are bounds, and the agreement of the scores with the exact
prompt-log-probability tier (Spearman; top-3 lines). Against llmSHAP 1.5.2 (text only,
Shapley over lines, exact enumeration where it fits, else its RandomSampler) on the short
prompts: requests and the top-3 lines against the exact ranking.

    python bench/remote_tiers.py [--endpoint URL] [--prompts tutor,vault,long_1k]

Without --endpoint an engine is started (scripts/install-vllm; about 100 s) and stopped.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.prompts_long import LONG_PROMPTS
from tests.vllm.proxy import Offer, proxy

SERVED = "smollm2"
SHORT = {
    "tutor": (
        "You are a geography tutor.\nAnswer in one short sentence.\nBe polite and brief.\n"
        "Use simple words.\nWhat is the capital of France?"
    ),
    "vault": (
        "Be polite and brief.\nThe vault code is 4721.\nThe office opens at nine.\n"
        "Remember: the vault code is 4721.\nWhat is the vault code? Answer with the number only."
    ),
}
TIERS: dict[str, dict[str, bool] | None] = {  # what the proxy in front of the engine removes
    "prompt-logprobs": None,
    "prompt-logprobs, one request per variant": None,  # under a request budget
    "generated-logprobs": {"prompt_logprobs": False},
    "generated-logprobs, no prefill": {"prompt_logprobs": False, "prefill": False},
    "text-only": {"prompt_logprobs": False, "logprobs": False},
}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a))
    rb = np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top3(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")[:3]]


def explain_tier(url: str, text: str, tier: str, budget: int | None = None) -> tuple[Any, float]:
    from promptxray.explainers.backends.openai_connect import connect
    from promptxray.explainers.backends.options import BackendOptions
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    options = BackendOptions(endpoint=url, max_requests=budget, timeout_s=900)
    backend = connect("openai", None, False, None, options)
    assert backend.capabilities.scoring.value == tier.split(",")[0], backend.capabilities
    request = ExplainRequest(
        text=text,
        path="bench.prompt",
        method="occlusion",
        granularity="line",
        max_new_tokens=12,
        faithfulness=False,
    )
    started = time.perf_counter()
    expl = explain(request, backend=backend)
    return expl, time.perf_counter() - started


class CountingChat:
    """llmSHAP's LLM interface over the engine's Chat Completions API, counting requests."""

    def __init__(self, url: str) -> None:
        from promptxray.explainers.backends.openai_client import EngineClient

        self.client = EngineClient(url, 600)
        self.requests = 0
        self.lock = threading.Lock()

    def generate(self, prompt: Any, tools: Any = None, images: Any = None) -> str:
        messages = [m for m in prompt if m.get("content")] or [{"role": "user", "content": ""}]
        body = {"model": SERVED, "messages": messages, "max_tokens": 12, "temperature": 0}
        with self.lock:
            self.requests += 1
        answer = self.client.post("/v1/chat/completions", body)
        return str(answer["choices"][0]["message"]["content"])


def llmshap_lines(url: str, text: str) -> tuple[np.ndarray, int, float]:
    """llmSHAP's Shapley values of the prompt's lines (its default TF-IDF value function,
    exact enumeration), the requests it sent and its seconds."""
    from llmSHAP import BasicPromptCodec, DataHandler, ShapleyAttribution
    from llmSHAP.llm.llm_interface import LLMInterface

    model = CountingChat(url)

    class Model(LLMInterface):
        def generate(self, prompt: Any, tools: Any = None, images: Any = None) -> str:
            return model.generate(prompt)

    lines = text.splitlines(keepends=True)
    handler = DataHandler({i: line for i, line in enumerate(lines)})
    started = time.perf_counter()
    result = ShapleyAttribution(
        model=Model(),
        data_handler=handler,
        prompt_codec=BasicPromptCodec(system=""),
        use_cache=True,
        verbose=False,
        num_threads=16,
    ).attribution()
    values = np.array([float(result.attribution[i]["score"]) for i in range(len(lines))])
    return values, model.requests, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint")
    parser.add_argument("--prompts", default="tutor,vault,long_1k")
    parser.add_argument("--no-llmshap", action="store_true")
    parser.add_argument("--tiers", default="all", help="tier rows to run, ';'-separated")
    args = parser.parse_args()
    engine = None
    url = args.endpoint
    if url is None:
        from promptxray.explainers.models.loading import resolve_model_path
        from tests.vllm.engine import Engine

        folder, _ = resolve_model_path(None)
        engine = Engine(folder, SERVED).start()
        url = engine.url
    try:
        for name in args.prompts.split(","):
            text = SHORT.get(name) or LONG_PROMPTS[name]
            lines = len([ln for ln in text.splitlines() if ln.strip()])
            print(f"\n## {name}: {lines} lines, {len(text)} characters")
            print("| tier | requests | tokens sent | seconds | bounds | Spearman | top 3 |")
            print("|---|---|---|---|---|---|---|")
            exact: np.ndarray | None = None
            times: dict[str, float] = {}
            for tier, offer in TIERS.items():
                if tier == "text-only" and lines > 20:
                    continue  # the text tier is for coarse parts: sampled lines of a 1k prompt
                if tier not in args.tiers.split(";") and args.tiers != "all":
                    continue
                if offer is None:
                    budget = 100_000 if "one request" in tier else None
                    expl, seconds = explain_tier(url, text, tier, budget)
                else:
                    with proxy(url, Offer(**offer)) as (purl, _):
                        expl, seconds = explain_tier(purl, text, tier)
                scores = np.array([s.score for s in expl.spans])
                if exact is None:
                    exact = scores
                times[tier] = seconds
                bounds = sum(1 for p in expl.remote.parts if p.kind == "bound")
                print(
                    f"| {tier} | {expl.remote.requests} | {expl.remote.tokens_sent:,} | "
                    f"{seconds:.2f} | {bounds} | {spearman(scores, exact):.2f} | "
                    f"{top3(scores)} (exact {top3(exact)}) |"
                )
            if "generated-logprobs" in times:
                print(
                    f"generated / prompt tier time: "
                    f"{times['generated-logprobs'] / times['prompt-logprobs']:.2f}x"
                )
            if name in SHORT and not args.no_llmshap and exact is not None:
                values, requests, seconds = llmshap_lines(url, text)
                print(
                    f"| llmSHAP (text, exact Shapley) | {requests} | – | {seconds:.2f} | – | "
                    f"{spearman(values, exact):.2f} | {top3(values)} (exact {top3(exact)}) |"
                )
    finally:
        if engine is not None:
            engine.stop()


if __name__ == "__main__":
    main()
