"""The `openai` backend's chat tiers against the real engine behind a pass-through proxy that
takes away what most servers lack: prompt log-probabilities (the generated-token tier), the
assistant prefill (bounds), alternatives beyond two, every log-probability (text only).

Each figure is checked against an independent torch computation on the same model: the
variant's messages through the model's own chat template, the answer teacher-forced."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from promptxray.explainers import nl
from promptxray.explainers.backends.capabilities import Scoring
from promptxray.explainers.backends.openai_chat import ChatBackend
from promptxray.explainers.backends.openai_connect import connect
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.errors import (
    BudgetError,
    ContextLengthError,
    EngineError,
    InvalidRequestError,
    UnsupportedMethodError,
)
from promptxray.explainers.explain import explain
from promptxray.explainers.types import ExplainRequest
from tests.conftest import REPO
from tests.e2e.test_cli_default_model import promptxray
from tests.vllm.proxy import Offer, proxy

EXACT_NATS = 1e-3  # the bound: the engine's float32 against torch's on the CPU

TUTOR = """You are a geography tutor.
Answer in one short sentence.
Be polite and brief.
What is the capital of France?"""
VAULT = """Be polite and brief.
The vault code is 4721.
Remember: the vault code is 4721.
What is the vault code? Answer with the number only."""
COLOURS = """List colours.
Use commas between them.
Name exactly three colours.
Start with red."""
PROMPTS = [TUTOR, VAULT, COLOURS]


def torch_logprob(smol, messages: list[dict[str, str]], answer: str) -> float:
    """log P(answer | messages) from one plain forward of the torch model."""
    tok = smol.tokenizer
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    target = tok(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = smol.model(input_ids=torch.tensor([prompt + target])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(target)))


def without(expl, index: int, text: str) -> str:
    """The prompt's text with span `index`'s characters removed (written independently of
    the backend: from the explanation's own token offsets)."""
    gone: set[int] = set()
    for t in expl.spans[index].token_indices:
        gone.update(range(expl.tokens[t].start, expl.tokens[t].end))
    return "".join(c for i, c in enumerate(text) if i not in gone)


def request(text: str, **kwargs) -> ExplainRequest:
    kwargs.setdefault("granularity", "line")
    kwargs.setdefault("max_new_tokens", 24)
    return ExplainRequest(text=text, path="prompt.prompt", method="occlusion", **kwargs)


def check_against_torch(expl, text: str, smol) -> tuple[int, int]:
    """Every exact figure equals torch's within EXACT_NATS; every bound holds against it.
    Returns (exact parts, bounds)."""
    answer = expl.target.text
    base = torch_logprob(smol, [{"role": "user", "content": text}], answer)
    assert expl.target.logprob == pytest.approx(base, abs=EXACT_NATS)
    exact = bounds = 0
    for i, span in enumerate(expl.spans):
        content = without(expl, i, text)
        drop = base - torch_logprob(smol, [{"role": "user", "content": content}], answer)
        figure = expl.remote.figure(i)
        if figure is None:
            exact += 1
            assert span.score == pytest.approx(drop, abs=EXACT_NATS), span.text
        else:
            bounds += 1
            assert figure.kind == "bound" and figure.answer
            assert span.score <= drop + EXACT_NATS, span.text  # at least this much: true
    return exact, bounds


@pytest.fixture(scope="module")
def generated(engine):
    """The generated-token tier: a server without prompt log-probabilities."""
    with proxy(engine.url, Offer(prompt_logprobs=False)) as (url, offer):
        yield connect("openai", None, False, None, BackendOptions(endpoint=url)), offer


def test_generated_tier_equals_torch_where_exact(generated, smol):
    backend, _ = generated
    assert isinstance(backend, ChatBackend) and backend.prefill
    assert backend.capabilities.scoring is Scoring.GENERATED
    assert not backend.capabilities.tokenizer
    expl = explain(request(TUTOR), backend=backend)
    assert expl.remote.tier == "generated-logprobs" and expl.remote.model == "smollm2"
    assert "Paris" in expl.target.text
    exact, _ = check_against_torch(expl, TUTOR, smol)
    assert exact >= 3
    # each exact tier: at most lines + 2 requests (the answer, the prompt, one per line),
    # plus one per departure the prefill continues
    departures = sum(1 for p in expl.remote.parts)
    assert expl.remote.requests <= len(expl.spans) + 2 + len(expl.spans)
    assert departures <= len(expl.spans)


def test_words_work_without_the_tokenizer_and_tokens_are_refused(generated, smol):
    backend, _ = generated
    text = "What is the capital of France?"
    expl = explain(request(text, granularity="word"), backend=backend)
    assert [s.text for s in expl.spans][:3] == ["What", "is", "the"]
    check_against_torch(expl, text, smol)
    with pytest.raises(InvalidRequestError, match="granularity token needs the tokenizer"):
        explain(request(text, granularity="token"), backend=backend)
    with pytest.raises(UnsupportedMethodError, match="exact log-probabilities"):
        explain(ExplainRequest(text=text, method="shapley", granularity="line"), backend=backend)


@pytest.mark.parametrize("text", PROMPTS, ids=["tutor", "vault", "colours"])
def test_without_prefill_every_bound_holds(engine, smol, text):
    with proxy(engine.url, Offer(prompt_logprobs=False, prefill=False)) as (url, offer):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert isinstance(backend, ChatBackend) and not backend.prefill
        expl = explain(request(text), backend=backend)
    assert not any("continue_final_message" in b for b in offer.bodies)
    _, bounds = check_against_torch(expl, text, smol)
    if text == TUTOR:  # its question line changes the answer: a bound, said as one
        assert bounds >= 1 and "at least" in nl.describe(expl)


def test_fewer_alternatives_than_asked_still_give_true_bounds(engine, smol):
    with proxy(engine.url, Offer(prompt_logprobs=False, max_alternatives=2)) as (url, _):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert backend.top_logprobs == 2
        expl = explain(request(TUTOR), backend=backend)
    check_against_torch(expl, TUTOR, smol)


def test_text_only_intervals_agree_with_torchs_top_part(engine, smol):
    """On a prompt with one decisive line, the text-only tier's interval for that line lies
    above zero and above every other part's estimate."""
    text = TUTOR
    with proxy(engine.url, Offer(prompt_logprobs=False, logprobs=False)) as (url, _):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert backend.capabilities.scoring is Scoring.TEXT
        with pytest.raises(InvalidRequestError, match="coarse parts"):
            explain(request(text, granularity="word"), backend=backend)
        expl = explain(request(text), backend=backend)
    assert expl.score_kind is ScoreKind.AGREEMENT and expl.remote.tier == "text-only"
    answer = expl.target.text
    base = torch_logprob(smol, [{"role": "user", "content": text}], answer)
    drops = [
        base - torch_logprob(smol, [{"role": "user", "content": without(expl, i, text)}], answer)
        for i in range(len(expl.spans))
    ]
    top = int(np.argmax(drops))
    figure = expl.remote.figure(top)
    assert figure is not None and figure.kind == "estimate" and figure.low > 0
    for i, span in enumerate(expl.spans):
        assert expl.remote.figure(i).low <= span.score <= expl.remote.figure(i).high
        if i != top:  # no other part is confidently above the decisive one
            assert expl.remote.figure(i).low < figure.high
    assert "sampled" in nl.summary(expl) and "sampled" in nl.span_line(expl, top)


def test_budget_prompt_over_context_and_wrong_model(engine):
    with proxy(engine.url, Offer(prompt_logprobs=False)) as (url, _):
        options = BackendOptions(endpoint=url, max_requests=3, price_per_mtok=2.5)
        backend = connect("openai", None, False, None, options)
        with pytest.raises(BudgetError) as err:
            explain(request(TUTOR), backend=backend)
        assert "over the budget of 3" in str(err.value) and "$" in str(err.value)
        long = "Tell me about the sea. " * 2000
        with pytest.raises(ContextLengthError):
            fresh = connect("openai", None, False, None, BackendOptions(endpoint=url))
            explain(request(long), backend=fresh)
        with pytest.raises(EngineError) as err:
            connect("openai", None, False, None, BackendOptions(endpoint=url, served_model="gpt-9"))
        assert "does not serve 'gpt-9'" in str(err.value) and "smollm2" in str(err.value)


def test_cli_explains_through_the_chat_api(engine):
    with proxy(engine.url, Offer(prompt_logprobs=False)) as (url, _):
        result = promptxray(
            "explain",
            str(REPO / "examples" / "capital.prompt"),
            "--backend",
            "openai",
            "--endpoint",
            url + "/v1",
            "--served-model",
            "smollm2",
            "-g",
            "line",
            "--format",
            "json",
        )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == "openai" and data["remote"]["tier"] == "generated-logprobs"
    assert "Paris" in data["target"]["text"] and data["remote"]["endpoint"] == url


def test_proxy_then_verify(generated, smol):
    """The local model explains first; the server scores only its two largest lines, exactly
    as torch does on them; the rest keep the proxy's figures, marked, and the agreement is
    stated."""
    from promptxray.explainers.proxy_verify import explain_with_proxy

    backend, _ = generated
    stages = list(explain_with_proxy(request(VAULT), backend, smol, top=2))
    assert [s.stage.name for s in stages] == ["proxy", "verified"]
    local, final = stages
    assert local.backend == "torch" and not local.stage.final and final.stage.final
    assert local.target.text == final.target.text  # the proxy explains the server's answer
    assert "by the proxy" in nl.span_line(local, 0) and "not the server's" in nl.span_line(local, 0)
    proxied = [p.index for p in final.remote.parts if p.kind == "proxy"]
    assert len(proxied) == len(final.spans) - 2
    top = sorted(range(len(local.spans)), key=lambda i: -abs(local.spans[i].score))[:2]
    assert sorted(set(range(len(final.spans))) - set(proxied)) == sorted(top)
    for i in proxied:  # the proxy's own figure, not the server's
        assert final.spans[i].score == pytest.approx(local.spans[i].score)
        assert "not sent to the server" in nl.span_line(final, i)
    answer = final.target.text
    base = torch_logprob(smol, [{"role": "user", "content": VAULT}], answer)
    for i in top:
        if final.remote.figure(i) is None:  # exact on the server
            content = without(final, i, VAULT)
            drop = base - torch_logprob(smol, [{"role": "user", "content": content}], answer)
            assert final.spans[i].score == pytest.approx(drop, abs=EXACT_NATS)
    agreement = final.remote.proxy
    assert agreement.scored == 2 and agreement.total == len(final.spans)
    assert "The proxy" in nl.summary(final)
