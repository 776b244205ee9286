"""The vllm backend against a real vLLM engine serving the default model: the same scores as
the torch backend, the methods it refuses, and every fault a user can meet."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from promptxray.explainers.backends.openai_prompt import PromptLogprobsBackend
from promptxray.explainers.backends.options import API_KEY_ENV, BackendOptions
from promptxray.explainers.errors import (
    ContextLengthError,
    EngineError,
    InvalidRequestError,
    UnsupportedMethodError,
)
from promptxray.explainers.explain import explain
from promptxray.explainers.types import ExplainRequest
from tests.conftest import REPO, STORIES
from tests.e2e.test_cli_default_model import promptxray
from tests.helpers import F32_NATS, GPU_NATS

CAPITAL = (REPO / "examples" / "capital.prompt").read_text()
PROMPTY = REPO / "tests" / "data" / "capital.prompty"
NOBODY = "http://127.0.0.1:9"  # nothing listens on the discard port


def request(text: str = CAPITAL, **kwargs) -> ExplainRequest:
    return ExplainRequest(text=text, path="capital.prompt", **kwargs)


def scores(expl) -> np.ndarray:
    return np.array([s.score for s in expl.spans])


@pytest.mark.parametrize(
    "method,granularity",
    [("occlusion", "token"), ("occlusion", "auto"), ("shapley", "word"), ("surrogate", "word")],
)
def test_scores_equal_the_torch_backend(vllm, smol, method, granularity):
    req = request(method=method, granularity=granularity)
    served = explain(req, backend=vllm)
    local = explain(req, backend=smol)
    assert served.backend == "vllm" and "smollm2" in served.model
    assert served.target.text == local.target.text and "Paris" in served.target.text
    assert [(s.start, s.end) for s in served.spans] == [(s.start, s.end) for s in local.spans]
    # the engine on a GPU against the torch backend on the CPU: removal scores are two log-probs
    assert np.abs(scores(served) - scores(local)).max() < 2 * GPU_NATS
    assert served.target.logprob == pytest.approx(local.target.logprob, abs=GPU_NATS)
    remote = served.remote
    assert remote is not None and remote.tier == "prompt-logprobs" and not remote.parts
    assert remote.requests >= served.forward_passes and remote.tokens_sent > 0


def test_faithfulness_figures_and_counterfactuals_run_on_the_engine(vllm, smol):
    served = explain(request(method="counterfactual", granularity="word"), backend=vllm)
    local = explain(request(method="counterfactual", granularity="word"), backend=smol)
    assert served.faithfulness is not None
    for key in ("comprehensiveness", "sufficiency"):
        # means of P - P', each P = exp(log P) within GPU_NATS relative, P <= 1
        assert served.metrics[key] == pytest.approx(local.metrics[key], abs=2 * GPU_NATS)
    assert served.counterfactuals is not None and local.counterfactuals is not None
    assert served.counterfactuals.ranked_units == local.counterfactuals.ranked_units
    # the same edits found, flipping the answer to the same new answers
    assert [(c.ids, c.new_target) for c in served.counterfactuals.found] == [
        (c.ids, c.new_target) for c in local.counterfactuals.found
    ]


def test_auto_chooses_among_the_methods_the_engine_can_run(vllm):
    expl = explain(request(method="auto", granularity="word"), backend=vllm)
    assert expl.auto is not None
    assert expl.method in {"occlusion", "shapley", "surrogate"}
    tried = {str(c["method"]) for c in expl.auto.candidates}
    assert tried and not tried & {"gradient_x_input", "saliency", "attention"}


def test_gradient_and_attention_methods_are_refused_naming_what_works(vllm):
    for method in ("integrated_gradients", "attention"):
        with pytest.raises(UnsupportedMethodError) as err:
            explain(request(method=method), backend=vllm)
        assert "occlusion" in str(err.value) and "vllm" in str(err.value)


def test_the_chat_template_and_generation_are_the_engines(vllm, smol):
    text = PROMPTY.read_text()
    served = explain(ExplainRequest(text=text, path=str(PROMPTY)), backend=vllm)
    local = explain(ExplainRequest(text=text, path=str(PROMPTY)), backend=smol)
    assert [t.token_id for t in served.target.tokens] == [t.token_id for t in local.target.tokens]
    streamed = [t for chunk in vllm.stream_generate([1, 2, 3], 5) for t in chunk]
    assert streamed == vllm.generate([1, 2, 3], 5) == smol.generate([1, 2, 3], 5)


def test_a_prompt_over_the_engines_context_is_a_clear_error(vllm):
    long = "word " * 3000
    with pytest.raises(ContextLengthError) as err:
        explain(request(long, target=" Paris"), backend=vllm)
    assert "2048" in str(err.value)


def test_engine_down_wrong_name_and_bad_endpoint_are_clear_errors(engine):
    from promptxray.explainers.backends import get_backend

    started = time.perf_counter()
    with pytest.raises(EngineError) as err:
        get_backend("vllm", None, options=BackendOptions(endpoint=NOBODY, timeout_s=5))
    assert "cannot be reached" in str(err.value) and NOBODY in str(err.value)
    assert time.perf_counter() - started < 60  # retried with back-off, then gave up
    with pytest.raises(EngineError) as err:
        get_backend("vllm", None, options=BackendOptions(endpoint=engine.url, served_model="x"))
    assert "does not serve 'x'" in str(err.value) and "smollm2" in str(err.value)
    with pytest.raises(InvalidRequestError):
        BackendOptions(endpoint="ftp://example.org")
    with pytest.raises(EngineError) as err:
        get_backend("vllm", None)  # no endpoint at all
    assert "needs an endpoint" in str(err.value)


def test_a_tokenizer_that_differs_from_the_served_one_is_refused(engine):
    from promptxray.explainers.backends import get_backend

    with pytest.raises(EngineError) as err:
        get_backend("vllm", str(STORIES), options=BackendOptions(endpoint=engine.url))
    assert "does not match" in str(err.value)


def test_the_api_key_is_sent_but_never_shown(engine, monkeypatch):
    from promptxray.explainers.backends.openai_connect import connect

    secret = "sk-promptxray-test-secret"
    monkeypatch.setenv(API_KEY_ENV, secret)
    backend = connect("openai", None, False, None, BackendOptions(endpoint=engine.url))
    assert isinstance(backend, PromptLogprobsBackend)
    expl = explain(request(granularity="line", faithfulness=False), backend=backend)
    assert secret not in expl.to_json() and secret not in repr(backend.options)
    backend.client.base = NOBODY
    with pytest.raises(EngineError) as err:
        backend.generate([1, 2, 3], 2)
    assert secret not in str(err.value)


def test_cli_explains_through_the_engine(engine):
    result = promptxray(
        "explain",
        str(REPO / "examples" / "capital.prompt"),
        "--backend",
        "vllm",
        "--endpoint",
        engine.url,
        "-g",
        "line",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == "vllm" and "Paris" in data["target"]["text"]
    refused = promptxray(
        "explain", "-", "--backend", "vllm", "--endpoint", engine.url, "-m", "saliency", stdin="Hi"
    )
    assert refused.returncode == 2 and "occlusion" in refused.stderr
    down = promptxray("explain", "-", "--backend", "vllm", "--endpoint", NOBODY, stdin="Hi")
    assert down.returncode == 2 and "cannot be reached" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_server_gone_mid_explanation_fails_clearly_and_the_next_one_works(engine, monkeypatch):
    """The server goes away while variants are in flight (the pass-through proxy in front of
    the engine drops every connection): the explanation fails with a message (no partial
    result), and once the server is back the same backend explains again. (Killing the
    engine itself and restarting it cost two minutes of CI for the same path.)"""
    import threading

    from promptxray.explainers.backends import openai_client
    from promptxray.explainers.backends.openai_connect import connect
    from tests.vllm.proxy import proxy

    monkeypatch.setattr(openai_client, "BACKOFF_S", 0.05)
    long = "\n".join(f"Line {i}: the capital of country {i} is city {i}." for i in range(60))
    gone = threading.Event()
    with proxy(engine.url) as (url, offer):
        backend = connect("vllm", None, False, None, BackendOptions(endpoint=url, timeout_s=20))

        def go_away_when_running(done: int, total: int) -> None:
            if done >= 5 and not gone.is_set():
                gone.set()
                offer.down = True

        with pytest.raises(EngineError) as err:
            explain(
                request(long + "\nThe capital of France is", target=" Paris", faithfulness=False),
                backend=backend,
                progress=lambda stage, d, t: (
                    go_away_when_running(d, t) if stage == "attribute" else None
                ),
            )
        assert gone.is_set() and "cannot be reached" in str(err.value)
        offer.down = False
        again = explain(request(granularity="line"), backend=backend)
    assert "Paris" in again.target.text


def test_both_ways_of_scoring_a_target_agree(vllm):
    """Chosen-token log-probabilities at generated positions (which read the prefix cache)
    equal the prompt log-probabilities vLLM computes without it."""
    assert vllm.scoring == "auto"  # this engine offers logprob_token_ids
    ids = vllm.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    target = vllm.tokenizer(" Paris, of course.", add_special_tokens=False)["input_ids"]
    variants = [ids, ids[1:], ids[:2] + ids[3:]]
    scored = {}
    try:
        for way in ("chosen", "prompt"):
            vllm.scoring = way
            scored[way] = vllm._score_rows(variants, target, None, ids)
    finally:
        vllm.scoring = "auto"
    # one engine, its prefix cache read or not: float32 log-probs of other shapes
    assert np.abs(scored["chosen"] - scored["prompt"]).max() < F32_NATS
