"""The real language server (a subprocess, a real LSP client) with backend `vllm` against the
session's real engine: diagnostics through the engine, a gradient method refused with a message
naming the methods that work, and an endpoint where nothing listens shown as a clear error while
the server stays up and works once the setting names the engine."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from tests.conftest import REPO
from tests.e2e.lsp_harness import Harness

CAPITAL = (REPO / "examples" / "capital.prompt").read_text()
NOBODY = "http://127.0.0.1:9"  # nothing listens on the discard port
FORWARD_ONLY = ("counterfactual", "occlusion", "shapley", "surrogate")


def configure(h: Harness, **settings: Any) -> None:
    h.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"promptxray": settings})
    )


def messages(diagnostics: list[types.Diagnostic]) -> list[str]:
    return [d.message for d in diagnostics]


def drivers(diagnostics: list[types.Diagnostic]) -> list[types.Diagnostic]:
    return [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Information]


def test_the_server_explains_through_the_engine_and_refuses_gradient_methods(engine, tmp_path):
    async def scenario() -> None:
        settings = {"backend": "vllm", "endpoint": engine.url, "granularity": "line"}
        async with Harness(settings) as h:
            uri = h.open(tmp_path / "capital.prompt", CAPITAL)
            shown = await h.diagnostics_after(uri, 0)
            assert drivers(shown), messages(shown)
            assert all(d.source == "promptxray" for d in shown)
            assert "Paris" in drivers(shown)[0].message, messages(shown)
            data = await h.explanation(uri)
            assert data["backend"] == "vllm" and "smollm2" in data["model"]
            assert data["granularity"] == "line"

            # a gradient method: a clear error naming what works; the server stays up
            count = len(h.diagnostics[uri])
            configure(h, method="saliency")
            refused = await h.diagnostics_after(uri, count)
            assert len(refused) == 1, messages(refused)
            text = refused[0].message
            assert "saliency" in text and "gradients" in text and "vllm" in text, text
            assert all(m in text for m in FORWARD_ONLY), text
            assert refused[0].severity == types.DiagnosticSeverity.Warning
            assert h.statuses[-1] == {"uri": uri, "stage": "error", "done": 0, "total": 0}

            # the same for attention; then a forward-only method works again
            count = len(h.diagnostics[uri])
            configure(h, method="attention")
            refused = await h.diagnostics_after(uri, count)
            assert "attention weights" in refused[0].message and "occlusion" in refused[0].message

            count = len(h.diagnostics[uri])
            configure(h, method="occlusion")
            again = await h.diagnostics_after(uri, count)
            assert drivers(again) and "Paris" in drivers(again)[0].message, messages(again)
            assert h.client._server is not None and h.client._server.returncode is None
        assert h.returncode == 0  # shut down cleanly, not crashed

    asyncio.run(scenario())


def test_an_endpoint_where_nothing_listens_is_a_clear_error_until_it_is_fixed(engine, tmp_path):
    async def scenario() -> None:
        settings = {"backend": "vllm", "endpoint": NOBODY, "granularity": "line"}
        async with Harness(settings) as h:
            uri = h.open(tmp_path / "capital.prompt", CAPITAL)
            failed = await h.diagnostics_after(uri, 0)
            assert len(failed) == 1, messages(failed)
            text = failed[0].message
            assert "server at http://127.0.0.1:9" in text and "cannot be reached" in text
            assert "endpoint" in text, text  # says which setting to check
            assert h.statuses[-1]["stage"] == "error"
            shown = [m for m in h.messages if "cannot be reached" in m]
            assert len(shown) == 1, h.messages  # shown once as a message too

            # the server is still up: the endpoint setting changed to the engine's works
            count = len(h.diagnostics[uri])
            configure(h, endpoint=engine.url)
            fixed = await h.diagnostics_after(uri, count)
            assert drivers(fixed) and "Paris" in drivers(fixed)[0].message, messages(fixed)
            assert h.statuses[-1]["stage"] == "ready"
            assert (await h.explanation(uri))["backend"] == "vllm"
        assert h.returncode == 0

    asyncio.run(scenario())


def test_the_server_explains_through_a_chat_api_and_names_it(engine, tmp_path):
    """Backend `openai` on a server without prompt log-probabilities (a proxy in front of the
    engine), at the server's default granularity (auto: lines, then words): the hover names
    the model, the server and the tier."""
    from tests.vllm.proxy import Offer, proxy

    async def scenario(url: str) -> None:
        async with Harness({"backend": "openai", "endpoint": url + "/v1"}) as h:
            uri = h.open(tmp_path / "capital.prompt", CAPITAL)
            shown = await h.diagnostics_after(uri, 0)
            assert drivers(shown), messages(shown)
            data = await h.explanation(uri)
            assert data["backend"] == "openai" and data["remote"]["model"] == "smollm2"
            assert data["remote"]["tier"] == "generated-logprobs"
            hover = await h.hover(uri, 0, 2)
            assert hover is not None and isinstance(hover.contents, types.MarkupContent)
            text = hover.contents.value
            assert "smollm2" in text and url in text and "generated tokens" in text, text
        assert h.returncode == 0

    with proxy(engine.url, Offer(prompt_logprobs=False)) as (url, _):
        asyncio.run(scenario(url))
