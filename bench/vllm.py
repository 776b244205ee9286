"""promptxray's vllm backend against a real vLLM engine (not a test).

1. Agreement: occlusion, Shapley and surrogate scores through the engine vs the torch backend
   on the same model, prompt ids and target (max |Δ score|).
2. Speed, same engine, same prompts, same target text, same features, one run: promptxray
   (`--backend vllm`) vs Captum 0.9's `RemoteLLMAttribution(FeatureAblation, VLLMProvider)`,
   which sends one text request per perturbation, one after another. Features are the
   user's tokens (token level) or lines (line level), removed; the chat template around them
   stays. Requests, prompt tokens sent and seconds are printed for both.

    pip install -e '.[bench]'     # captum==0.9.0 and openai (VLLMProvider): bench only
    python bench/vllm.py [--endpoint URL] [--prompts capital,support,extract] [--long long_1k]

Without --endpoint an engine is started (scripts/install-vllm; about 100 s) and stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import itertools

from bench.prompts import PROMPTS
from bench.prompts_long import LONG_PROMPTS

SERVED = "smollm2"


class CountingProvider:
    """Captum's VLLMProvider, counting the requests and prompt tokens it sends."""

    def __init__(self, url: str, tokenizer: Any) -> None:
        from captum.attr._core.remote_provider import VLLMProvider

        self.inner = VLLMProvider(url + "/v1", SERVED)
        self.tokenizer = tokenizer
        self.api_url = self.inner.api_url
        self.requests = 0
        self.tokens = 0

    def generate(self, prompt: str, **gen_args: Any) -> str:
        return self.inner.generate(prompt, **gen_args)

    def get_logprobs(self, input_prompt: str, target_str: str, tokenizer: Any = None) -> Any:
        self.requests += 1
        self.tokens += len(self.tokenizer(input_prompt + target_str)["input_ids"])
        return self.inner.get_logprobs(input_prompt, target_str, tokenizer)


def pieces(source: str, tokens: list[Any], level: str) -> list[str]:
    """The user's text cut into features: its tokens' spans, or its lines."""
    if level == "line":
        return source.splitlines(keepends=True)
    cuts = sorted({t.start for t in tokens if t.start > 0})
    bounds = [0, *cuts, len(source)]
    return [source[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def captum_run(url: str, backend: Any, source: str, target: str, features: list[str]) -> dict:
    """Captum's remote feature ablation over `features` of the chat-rendered prompt."""
    from captum.attr import FeatureAblation, RemoteLLMAttribution, TextTemplateInput

    rendered = backend.render_chat([{"role": "user", "content": source}])
    at = rendered.index(source)
    prefix, suffix = rendered[:at], rendered[at + len(source) :]
    provider = CountingProvider(url, backend.tokenizer)
    attribution = RemoteLLMAttribution(
        FeatureAblation(RemoteLLMAttribution.placeholder_model), backend.tokenizer, provider
    )
    inp = TextTemplateInput(
        lambda *vals: prefix + "".join(vals) + suffix, features, ["" for _ in features]
    )
    started = time.perf_counter()
    result = attribution.attribute(inp, target=target)
    seconds = time.perf_counter() - started
    scores = np.asarray(result.seq_attr.detach().cpu().numpy(), dtype=np.float64)
    return {
        "seconds": seconds,
        "requests": provider.requests,
        "tokens": provider.tokens,
        "scores": scores,
    }


def promptxray_run(backend: Any, source: str, target_ids: list[int], granularity: str) -> dict:
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    request = ExplainRequest(
        text=source,
        path="bench.prompt",
        granularity=granularity,
        target_ids=target_ids,
        faithfulness=False,
    )
    started = time.perf_counter()
    expl = explain(request, backend=backend)
    seconds = time.perf_counter() - started
    engine = expl.details.get("engine", {})
    return {
        "seconds": seconds,
        "requests": engine.get("requests", expl.forward_passes),
        "tokens": engine.get("tokens_sent", 0),
        "scores": np.array([s.score for s in expl.spans]),
        "expl": expl,
    }


def agreement(vllm: Any, torch_backend: Any, prompts: dict[str, str]) -> None:
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    print("\nagreement with the torch backend (same ids, same target), max |Δ score| in nats")
    print(f"{'prompt':10} {'method':10} {'level':>5} {'units':>5} {'max |Δ|':>9}")
    for name, text in prompts.items():
        # Shapley and the surrogate at word level on the shortest prompt only: elsewhere their
        # thousands of coalitions are one request each (lines keep them to a few hundred)
        fine = "word" if name == next(iter(prompts)) else "line"
        for method, granularity in (
            ("occlusion", "token"),
            ("shapley", fine),
            ("surrogate", fine),
        ):
            request = ExplainRequest(
                text=text, path="p.prompt", method=method, granularity=granularity
            )
            served = explain(request, backend=vllm)
            ids = [t.token_id for t in served.target.tokens]
            local = explain(
                ExplainRequest(
                    text=text,
                    path="p.prompt",
                    method=method,
                    granularity=granularity,
                    target_ids=ids,
                ),
                backend=torch_backend,
            )
            a = np.array([s.score for s in served.spans])
            b = np.array([s.score for s in local.spans])
            print(
                f"{name:10} {method:10} {granularity:>5} {len(a):5d} {np.abs(a - b).max():9.2e}",
                flush=True,
            )


def speed(url: str, vllm: Any, prompts: dict[str, str], level: str, granularity: str) -> None:
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document
    from promptxray.explainers.targets import resolve_target

    print(f"\n{level} level: promptxray -g {granularity} vs Captum (features: {level}s)")
    print(
        f"{'prompt':10} {'tokens':>6} {'feats':>5} | {'promptxray s':>12} {'req':>5} "
        f"{'tok sent':>8} | {'Captum s':>9} {'req':>5} {'tok sent':>8} | {'speed-up':>8}"
    )
    for name, text in prompts.items():
        doc = parse_document(text, "p.prompt")
        model_input = build_input(doc, vllm, None)
        target_ids, _ = resolve_target(vllm, model_input.ids, None, 8, None)
        target = vllm.decode(target_ids)
        ours = promptxray_run(vllm, text, target_ids, granularity)
        features = pieces(doc.source, ours["expl"].tokens, level)
        theirs = captum_run(url, vllm, doc.source, target, features)
        print(
            f"{name:10} {len(model_input.ids):6d} {len(features):5d} | "
            f"{ours['seconds']:12.2f} {ours['requests']:5d} {ours['tokens']:8d} | "
            f"{theirs['seconds']:9.2f} {theirs['requests']:5d} {theirs['tokens']:8d} | "
            f"{theirs['seconds'] / ours['seconds']:7.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running engine serving the default model")
    parser.add_argument("--prompts", default="capital,support,extract")
    parser.add_argument("--long", default="long_1k", help="line-level prompts ('' for none)")
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()

    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.options import BackendOptions
    from promptxray.explainers.models.loading import resolve_model_path

    engine = None
    url = args.endpoint
    if not url:
        from tests.vllm.engine import Engine

        folder, _ = resolve_model_path(None)
        engine = Engine(folder, SERVED).start()
        url = engine.url
    try:
        vllm = get_backend("vllm", None, options=BackendOptions(endpoint=url))
        prompts = {k: PROMPTS[k] for k in args.prompts.split(",") if k}
        print(f"engine {url}, {vllm.model_id}; concurrency {vllm.options.concurrency}")
        if not args.skip_agreement:
            agreement(vllm, get_backend("torch", None), prompts)
        speed(url, vllm, prompts, "token", "token")
        speed(url, vllm, prompts, "token", "auto")
        longs = {k: LONG_PROMPTS[k] for k in args.long.split(",") if k}
        if longs:
            speed(url, vllm, longs, "line", "line")
    finally:
        if engine is not None:
            engine.stop()
    print(
        "\nspeed-up: Captum's seconds / promptxray's, same engine, one run. -g auto scores "
        "lines, then words and tokens where they matter (fewer requests); Captum ablates every "
        "feature. tok sent: prompt tokens in the requests (the engine's prefix cache serves "
        "the shared part of each)."
    )


if __name__ == "__main__":
    main()
