"""Connecting the `openai` backend: probe what an OpenAI-compatible server offers and pick
the best exact tier (prompt log-probabilities, then generated-token log-probabilities, then
text only), recording why a better one was not used.
"""

from __future__ import annotations

from collections.abc import Callable

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.backends.capabilities import Scoring
from promptxray.explainers.backends.openai_chat import TOP_LOGPROBS, ChatBackend, token_bytes
from promptxray.explainers.backends.openai_client import EngineClient
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.backends.remote import Served, choose_model
from promptxray.explainers.errors import EngineError, ModelLoadError, first_line

PROBE_MESSAGES = [{"role": "user", "content": "List three colours, separated by commas."}]
PREFILL_TOLERANCE = 2e-3  # nats: a continued prefill must give the same log-probability


def connect(
    name: str,
    model: str | None,
    trust_remote_code: bool,
    progress: Callable[[str], None] | None,
    options: BackendOptions,
) -> Backend:
    """The backend for the server at `options.endpoint`: its prompt-log-probability tier when
    the server has one and `model` (a local folder; None: the default model) has its
    tokenizer, else a chat tier. Backend name `vllm` insists on the first."""
    if not options.endpoint:
        raise EngineError(
            f"the {name} backend needs an endpoint: the URL of an OpenAI-compatible server "
            "(--endpoint http://127.0.0.1:8000/v1, or the endpoint setting)"
        )
    client = EngineClient(options.endpoint, options.timeout_s, options.api_key_env)
    if progress:
        progress(f"connecting to {client.base}")
    served = choose_model(client, options.served_model)
    wanted = "prompt-logprobs" if name == "vllm" else options.tier
    note = None
    if wanted in ("auto", "prompt-logprobs"):
        try:
            return _prompt_tier(name, model, trust_remote_code, progress, options, client, served)
        except EngineError as exc:
            if wanted == "prompt-logprobs" or exc.status in (401, 403):
                raise
            note = f"no prompt log-probabilities: {exc}"
    scoring, top = _probe_logprobs(client, served)
    if wanted == "text-only":
        scoring = Scoring.TEXT
    elif wanted == "generated-logprobs" and scoring is Scoring.TEXT:
        raise EngineError(
            f"the server at {client.base} returns no log-probabilities for {served.name} "
            "(Chat Completions `logprobs`); use tier text-only or auto"
        )
    prefill = scoring is Scoring.GENERATED and _continues_prefill(client, served, top)
    backend = ChatBackend(client, served, options, scoring, prefill, top, name)
    backend.tier_note = note
    return backend


def _prompt_tier(
    name: str,
    model: str | None,
    trust_remote_code: bool,
    progress: Callable[[str], None] | None,
    options: BackendOptions,
    client: EngineClient,
    served: Served,
) -> Backend:
    """The prompt-log-probability tier: needs the server's /tokenize (vLLM, SGLang) and the
    served model's tokenizer here (NoPromptLogprobs otherwise)."""
    from transformers import AutoTokenizer

    from promptxray.explainers.backends.openai_prompt import (
        NoPromptLogprobs,
        PromptLogprobsBackend,
    )
    from promptxray.explainers.models.loading import resolve_model_path

    try:
        client.post("/tokenize", {"model": served.name, "prompt": "hi"})
    except EngineError as exc:
        if exc.status in (401, 403) or exc.retry:
            raise
        raise NoPromptLogprobs(f"the server has no /tokenize ({exc.status or exc})") from None
    path, model_id = resolve_model_path(model, progress)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {model_id}: {first_line(exc)}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{model_id} has no fast tokenizer; offsets need one")
    return PromptLogprobsBackend(tokenizer, client, served, options, model_id, name)


def _probe_logprobs(client: EngineClient, served: Served) -> tuple[Scoring, int]:
    """Whether the server returns generated tokens' log-probabilities with alternatives, and
    how many alternatives it gives (asking for TOP_LOGPROBS, then 5)."""
    for top in (TOP_LOGPROBS, 5):
        body = {
            "model": served.name,
            "messages": PROBE_MESSAGES,
            "max_tokens": 2,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": top,
        }
        try:
            answer = client.post("/v1/chat/completions", body)
        except EngineError as exc:
            if exc.status == 400:  # too many alternatives asked, or no logprobs at all
                continue
            raise
        entries = ((answer["choices"][0].get("logprobs") or {}).get("content")) or []
        if entries and all("logprob" in e for e in entries):
            shown = min(len(e.get("top_logprobs") or []) for e in entries)
            return Scoring.GENERATED, max(1, min(top, shown)) if shown else top
        break
    return Scoring.TEXT, 0


def _continues_prefill(client: EngineClient, served: Served, top: int) -> bool:
    """Whether the server continues an assistant prefill exactly: generate three tokens,
    then continue after the first one, which must give the second with the same
    log-probability (a server that ignores the prefill starts a new answer instead)."""
    body = {
        "model": served.name,
        "messages": PROBE_MESSAGES,
        "max_tokens": 3,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 1,
    }
    try:
        first = client.post("/v1/chat/completions", body)["choices"][0]["logprobs"]["content"]
        if len(first) < 2:
            return False
        prefill = token_bytes(first[0]).decode("utf-8")
        body |= {
            "messages": [*PROBE_MESSAGES, {"role": "assistant", "content": prefill}],
            "continue_final_message": True,
            "add_generation_prompt": False,
            "max_tokens": 1,
        }
        again = client.post("/v1/chat/completions", body)["choices"][0]["logprobs"]["content"]
    except (EngineError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return False
    if not again:
        return False
    same = token_bytes(again[0]) == token_bytes(first[1])
    return (
        same and abs(float(again[0]["logprob"]) - float(first[1]["logprob"])) <= PREFILL_TOLERANCE
    )
