"""Servers that are not a healthy vLLM, played by a pass-through proxy in front of the real
engine (tests/vllm/proxy.py; every answer comes from the engine): one that restarts (HTTP
503), one that wants an API key, one that cuts answers off mid-body, one that rate-limits
(HTTP 429 with Retry-After), one without prompt log-probabilities."""

from __future__ import annotations

import pytest

from promptxray.explainers.backends import openai_client
from promptxray.explainers.backends.openai_connect import connect
from promptxray.explainers.backends.openai_prompt import NoPromptLogprobs
from promptxray.explainers.backends.options import API_KEY_ENV, BackendOptions
from promptxray.explainers.errors import EngineError
from tests.vllm.proxy import Offer, proxy


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setattr(openai_client, "BACKOFF_S", 0.01)


def test_a_server_without_prompt_logprobs_is_named_when_insisted_on(engine):
    with (
        proxy(engine.url, Offer(prompt_logprobs=False)) as (url, _),
        pytest.raises(NoPromptLogprobs) as err,
    ):
        connect("vllm", None, False, None, BackendOptions(endpoint=url))
    assert "/tokenize" in str(err.value)


def test_a_restarting_server_is_retried_with_back_off(engine):
    with proxy(engine.url, Offer(unavailable=2)) as (url, offer):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert backend.served_model == "smollm2" and offer.unavailable == 0
        offer.unavailable = 10  # more than the retries: a clear error, not a hang
        with pytest.raises(EngineError) as err:
            backend.generate([1, 2], 2)
    assert "HTTP 503" in str(err.value) and "engine restarting" in str(err.value)


def test_the_api_key_comes_from_the_environment_variable_named(engine, monkeypatch):
    with proxy(engine.url, Offer(key="sk-from-env")) as (url, _):
        monkeypatch.delenv(API_KEY_ENV, raising=False)
        monkeypatch.delenv("PROMPTXRAY_VLLM_API_KEY", raising=False)
        with pytest.raises(EngineError) as err:
            connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert API_KEY_ENV in str(err.value) and "HTTP 401" in str(err.value)
        monkeypatch.setenv("MY_PROVIDER_KEY", "sk-from-env")
        options = BackendOptions(endpoint=url, api_key_env="MY_PROVIDER_KEY")
        backend = connect("openai", None, False, None, options)
        assert backend.served_model == "smollm2"
        assert "sk-from-env" not in repr(backend.options) and "sk-from-env" not in str(
            backend.remote_info()
        )


def test_an_answer_cut_off_mid_body_is_retried_then_named(engine):
    """A server that dies after its headers (http.client.IncompleteRead underneath) is an
    EngineError: retried like a refused connection, and named when retries run out."""
    with proxy(engine.url) as (url, offer):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        offer.cut_off = 1  # one broken answer, then a good one: the retry hides it
        assert backend.generate([1, 2], 2) is not None
        offer.cut_off = 10
        with pytest.raises(EngineError) as err:
            backend.generate([1, 2], 2)
    assert "broke off its answer" in str(err.value) and "IncompleteRead" in str(err.value)


def test_429_waits_for_retry_after_and_a_storm_is_a_clear_error(engine, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(openai_client.time, "sleep", waits.append)
    with proxy(engine.url, Offer(rate_limit=3, retry_after="1.5")) as (url, offer):
        backend = connect("openai", None, False, None, BackendOptions(endpoint=url))
        assert waits[:3] == [1.5, 1.5, 1.5] and backend.client.rate_limited == 3
        offer.rate_limit = 100
        with pytest.raises(EngineError) as err:
            backend.generate([1, 2], 2)
    assert "HTTP 429" in str(err.value) and "--concurrency" in str(err.value)
