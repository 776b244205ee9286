"""The backend settings (vllm's engine, torch's device and dtype): parsed leniently, part of
the explanation's key and of the backend instance a job runs on; an engine that cannot be
reached is never remembered as a failure (in-process server, the tiny real model behind a
stand-in for the engine)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.errors import EngineError, ModelLoadError
from promptxray.explainers.types import ExplainRequest
from promptxray.server.scheduler import Engine, Job, load_key
from promptxray.server.settings import Settings, parse_settings
from tests.conftest import STORIES

from .wire import Wire

ENGINE = "http://127.0.0.1:8000"
NOWHERE = "http://127.0.0.1:9"
STORY = "Once upon a time there was a\nlittle girl named"


def test_backend_choices_include_vllm_and_its_settings_parse():
    assert "vllm" in BACKENDS
    raw = {
        "backend": "vllm",
        "endpoint": f" {ENGINE}/v1 ",
        "servedModel": "smollm2",
        "concurrency": 4,
        "requestTimeoutSeconds": 30,
        "device": "cpu",
        "dtype": "bfloat16",
    }
    settings, warnings = parse_settings({"promptxray": raw})
    assert warnings == []
    assert settings.backend == "vllm" and settings.endpoint == f"{ENGINE}/v1"
    assert settings.servedModel == "smollm2" and settings.concurrency == 4
    assert settings.requestTimeoutSeconds == 30.0 and isinstance(
        settings.requestTimeoutSeconds, float
    )
    assert settings.backend_options() == BackendOptions(
        endpoint=f"{ENGINE}/v1",
        served_model="smollm2",
        concurrency=4,
        timeout_s=30.0,
        device="cpu",
        dtype="bfloat16",
    )
    cleared, warnings = parse_settings({"endpoint": "", "servedModel": ""}, settings)
    assert cleared.endpoint is None and cleared.servedModel is None and warnings == []
    https, warnings = parse_settings({"endpoint": "https://engine.example:8443"})
    assert https.endpoint == "https://engine.example:8443" and warnings == []


def test_backend_settings_defaults():
    s = Settings()
    assert (s.endpoint, s.servedModel, s.concurrency, s.requestTimeoutSeconds) == (
        None,
        None,
        16,
        120.0,
    )
    assert (s.device, s.dtype) == ("auto", "auto")
    assert s.backend_options() == BackendOptions()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("backend", "tensorrt", "torch"),
        ("endpoint", "ftp://127.0.0.1:21", None),
        ("endpoint", "127.0.0.1:8000", None),
        ("endpoint", "http://", None),
        ("endpoint", "HTTP://127.0.0.1:8000", None),
        ("endpoint", "http://127.0.0.1:8000/a b", None),
        ("endpoint", "http://[::1", None),
        ("endpoint", 8000, None),
        ("servedModel", 3, None),
        ("servedModel", "   ", None),
        ("concurrency", 0, 16),
        ("concurrency", 257, 16),
        ("concurrency", 2.5, 16),
        ("concurrency", True, 16),
        ("requestTimeoutSeconds", 0, 120.0),
        ("requestTimeoutSeconds", -1, 120.0),
        ("requestTimeoutSeconds", "soon", 120.0),
        ("requestTimeoutSeconds", float("nan"), 120.0),
        ("device", "tpu", "auto"),
        ("dtype", "int8", "auto"),
    ],
)
def test_invalid_backend_settings_warn_and_keep_the_default(name, value, expected):
    settings, warnings = parse_settings({name: value})
    assert getattr(settings, name) == expected
    assert len(warnings) == 1 and name in warnings[0], warnings
    settings.backend_options()  # whatever was given, the options are valid


def test_invalid_backend_setting_keeps_the_default_not_the_previous_value():
    before, _ = parse_settings({"endpoint": ENGINE, "device": "cpu"})
    after, warnings = parse_settings({"endpoint": "nope", "device": "gpu"}, before)
    assert after.endpoint is None and after.device == "auto" and len(warnings) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "vllm"},
        {"endpoint": ENGINE},
        {"servedModel": "smollm2"},
        {"concurrency": 2},
        {"requestTimeoutSeconds": 5.0},
        {"device": "cpu"},
        {"dtype": "float16"},
    ],
)
def test_backend_settings_are_part_of_the_explain_key(change):
    base = Settings()
    assert replace(base, **change).explain_key() != base.explain_key()


def _job(backend: str, options: BackendOptions, text: str = "x") -> Job:
    request = ExplainRequest(text=text, backend=backend, model="m", backend_options=options)
    return Job("file:///a.prompt", 1, request)


def test_job_and_load_keys_follow_the_options_that_matter():
    one = _job("vllm", BackendOptions(endpoint=ENGINE))
    other = _job("vllm", BackendOptions(endpoint=NOWHERE))
    assert one.key() != other.key() and load_key(one.request) != load_key(other.request)
    # the engine's settings do not matter to torch, nor torch's to onnx
    torch_a = _job("torch", BackendOptions(endpoint=ENGINE))
    torch_b = _job("torch", BackendOptions(endpoint=NOWHERE))
    assert torch_a.key() == torch_b.key() and load_key(torch_a.request) == load_key(torch_b.request)
    cpu = _job("torch", BackendOptions(device="cpu"))
    assert load_key(cpu.request) != load_key(torch_a.request)
    onnx_cpu, onnx = _job("onnx", BackendOptions(device="cpu")), _job("onnx", BackendOptions())
    assert onnx_cpu.key() == onnx.key()


def test_unreachable_engine_is_not_cached_but_a_model_that_cannot_load_is(monkeypatch):
    import promptxray.explainers.backends as backends

    calls: list[tuple[str, BackendOptions | None]] = []

    def fake(name: str, model: Any = None, *args: Any, options: Any = None, **kw: Any) -> Any:
        calls.append((name, options))
        if options is not None and options.endpoint == NOWHERE:
            raise EngineError(f"the vLLM engine at {NOWHERE} cannot be reached", retry=True)
        raise ModelLoadError("cannot load m")

    monkeypatch.setattr(backends, "get_backend", fake)
    engine = Engine()
    try:
        down = _job("vllm", BackendOptions(endpoint=NOWHERE))
        for attempt in (1, 2):
            result = engine.run(down)
            assert isinstance(result.error, EngineError)
            assert engine.cached(down) is None and not engine.failed_models
            assert len(calls) == attempt  # tried again: the engine may be back
        broken = _job("vllm", BackendOptions(endpoint=ENGINE))
        assert isinstance(engine.run(broken).error, ModelLoadError)
        assert isinstance(
            engine.run(_job("vllm", broken.request.backend_options, "y")).error, ModelLoadError
        )
        assert len(calls) == 3  # remembered under its options: not loaded again
        assert list(engine.failed_models) == [load_key(broken.request)]
        engine.run(_job("vllm", BackendOptions(endpoint=ENGINE, served_model="other"), "y"))
        assert len(calls) == 4  # other options: another instance, tried
    finally:
        engine.shutdown()


def test_server_shows_an_unreachable_engine_and_works_once_it_is_back(monkeypatch, tmp_path: Path):
    """The engine is down: a diagnostic, an error status and one message; the server stays
    up, and the next edit (even back to the same text) is explained once the engine is up."""
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")
    import promptxray.explainers.backends as backends

    real = backends.get_backend
    state = {"down": True}
    seen: list[BackendOptions] = []

    def engine_stand_in(name: str, model: Any = None, *args: Any, **kw: Any) -> Any:
        assert name == "vllm"
        seen.append(kw["options"])
        if state["down"]:
            raise EngineError(
                f"the vLLM engine at {NOWHERE} cannot be reached (Connection refused)", retry=True
            )
        return real("torch", model, progress=kw.get("progress"))

    monkeypatch.setattr(backends, "get_backend", engine_stand_in)

    async def scenario() -> None:
        wire = Wire()
        await wire.initialize(
            {
                "model": str(STORIES),
                "debounceMs": 20,
                "backend": "vllm",
                "endpoint": NOWHERE,
                "servedModel": "stories",
                "granularity": "line",
            }
        )
        try:
            uri = wire.open(tmp_path / "story.prompt", STORY)
            failed = await wire.published(uri)
            assert len(failed) == 1 and "cannot be reached" in failed[0]["message"]
            assert wire.statuses(uri)[-1]["stage"] == "error"
            messages = [p["message"] for p in wire.params("window/showMessage")]
            assert sum("cannot be reached" in m for m in messages) == 1, messages
            assert seen[-1] == BackendOptions(endpoint=NOWHERE, served_model="stories")

            state["down"] = False
            count = len(wire.diagnostics(uri))
            wire.replace(uri, STORY + " Lily")
            shown = await wire.published(uri, count)
            assert not any("cannot be reached" in d["message"] for d in shown)
            assert wire.statuses(uri)[-1]["stage"] == "ready"

            # back to the text that failed: explained now, not the remembered error
            count = len(wire.diagnostics(uri))
            wire.replace(uri, STORY)
            shown = await wire.published(uri, count)
            assert not any("cannot be reached" in d["message"] for d in shown)
            assert wire.statuses(uri)[-1]["stage"] == "ready"
        finally:
            await wire.request("shutdown")

    asyncio.run(scenario())
