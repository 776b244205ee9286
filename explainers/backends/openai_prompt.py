"""The prompt-log-probability tier of the `openai` backend: a server that returns the
log-probabilities of prompt tokens (vLLM, SGLang) scores any given answer after any variant
exactly, by teacher forcing, as a local model does.

Every variant is sent as a `/v1/completions` request whose prompt is token ids, many in
flight at once (the server batches them). Each target token's log-probability is read at the
one generated position of a request (`logprob_token_ids`), in order, so vLLM's prefix cache
serves what a variant shares with the prompt and with its previous request; vLLM computes
`prompt_logprobs` without its prefix cache, so one request with those is only the fallback
for a server without `logprob_token_ids`. Tokenisation uses the served model's own tokenizer
from a local folder, checked against the server's `/tokenize` on connect
(`openai_connect.py` picks this tier only when both hold).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from promptxray.explainers.backends.base import Backend, PaddedBatch, ProgressFn, common_prefix
from promptxray.explainers.backends.capabilities import Capabilities, Scoring
from promptxray.explainers.backends.openai_client import EngineClient
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.backends.remote import RemoteAccounting, Served, rows_in_order
from promptxray.explainers.errors import ContextLengthError, EngineError

# a multi-token target is scored token by token from the prefix cache (one request each)
# only when the cache serves at least this many of a variant's tokens; below, one request
# with prompt log-probabilities is cheaper (bench/README.md, vLLM)
CACHE_PAYS_TOKENS = 512
MAX_LOGPROBS = 20  # vLLM's default --max-logprobs: top tokens one request may return
PROBE = "Paris is the capital of France. 巴黎 🙂"


class NoPromptLogprobs(EngineError):
    """The server does not offer this tier (no `/tokenize`, another tokenizer, or no prompt
    log-probabilities): the connection falls back to the chat tiers."""


class PromptLogprobsBackend(RemoteAccounting, Backend):
    """A model served with prompt log-probabilities (vLLM, SGLang): every score is exact."""

    name = "openai"
    capabilities = Capabilities(scoring=Scoring.PROMPT, streams=True, next_tokens=True, remote=True)

    def __init__(
        self,
        tokenizer: Any,
        client: EngineClient,
        served: Served,
        options: BackendOptions,
        model_id: str,
        name: str = "openai",
    ) -> None:
        self._init_remote(client, served, options, name)
        # how targets are scored: "prompt", "chosen" or "auto" (chosen where it pays, on
        # engines that offer it); set by _check_prompt_logprobs
        self.scoring = "prompt"
        self.max_logprobs = MAX_LOGPROBS
        super().__init__(tokenizer, served.label, served.context_length)
        self.local_model_id = model_id
        self._check_tokenizer()
        self._check_prompt_logprobs()

    def _check_tokenizer(self) -> None:
        """The local tokenizer (which gives character offsets) must split text and apply the
        chat template exactly as the engine does; a mismatch is a clear error."""
        local = self.tokenizer(PROBE, add_special_tokens=False)["input_ids"]
        remote = self.client.post(
            "/tokenize",
            {"model": self.served_model, "prompt": PROBE, "add_special_tokens": False},
        )["tokens"]
        if list(local) != list(remote):
            raise NoPromptLogprobs(
                f"the tokenizer of {self.local_model_id} does not match the one {self.served_model}"
                " is served with; pass the served model's folder as --model (the model setting)"
            )
        if not self.has_chat_template:
            return
        messages = [{"role": "user", "content": PROBE}]
        mine = self.tokenizer(self.render_chat(messages), add_special_tokens=False)["input_ids"]
        theirs = self.client.post(
            "/tokenize",
            {
                "model": self.served_model,
                "messages": messages,
                "add_generation_prompt": True,
                "add_special_tokens": False,
            },
        )["tokens"]
        if list(mine) != list(theirs):
            raise NoPromptLogprobs(
                f"the chat template of {self.local_model_id} differs from the one the engine "
                f"applies to {self.served_model}; pass the served model's folder as --model"
            )

    def _check_prompt_logprobs(self) -> None:
        """Find how this engine scores a target: by the log-probabilities of chosen tokens at
        generated positions (`logprob_token_ids`, which reads the prefix cache) where it has
        them, else by prompt log-probabilities (which vLLM computes without its prefix
        cache). An engine with neither is refused."""
        ids = list(self.tokenizer(PROBE, add_special_tokens=False)["input_ids"][:4])
        choice = self.client.post("/v1/completions", self._score_body(ids))["choices"][0]
        got = choice.get("prompt_logprobs")
        if not isinstance(got, list) or len(got) != len(ids):
            raise NoPromptLogprobs(
                f"the server at {self.client.base} does not return prompt log-probabilities "
                "(`prompt_logprobs`)"
            )
        expected = float(got[-1][str(ids[-1])]["logprob"])
        try:
            self.scoring = "chosen"
            found = self._chosen_logprob(ids[:-1], ids[-1])
        except EngineError:
            found = None
        self.scoring = "auto" if found is not None and abs(found - expected) <= 1e-3 else "prompt"

    # --- scoring -------------------------------------------------------------------------------
    def _score_body(self, prompt: list[int]) -> dict[str, Any]:
        return {
            "model": self.served_model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0,
            "prompt_logprobs": 0,
        }

    def _chosen_logprob(self, ids: list[int], token: int) -> float | None:
        """log p(token | ids) read at the one generated position (the prefix cache serves
        what `ids` shares with earlier requests); None when the answer lacks it."""
        body = {
            "model": self.served_model,
            "prompt": ids,
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 1,
            "logprob_token_ids": [int(token)],
            "return_tokens_as_token_ids": True,
        }
        answer = self._post_scoring(body, len(ids), 1)
        logprobs = answer["choices"][0].get("logprobs") or {}
        top = (logprobs.get("top_logprobs") or [None])[0] or {}
        value = top.get(f"token_id:{int(token)}")
        return None if value is None else float(value)

    def _post_scoring(self, body: dict[str, Any], prompt: int, target: int) -> Any:
        """POST a scoring request, counting what was sent; an over-long prompt is a
        ContextLengthError."""
        try:
            answer = self.client.post("/v1/completions", body)
        except EngineError as exc:
            if exc.status == 400 and "length" in exc.detail:
                raise ContextLengthError(
                    prompt, target, self.context_length, self.served_model
                ) from None
            raise
        self._count_request(len(body["prompt"]))
        return answer

    def _check_fits(self, prompt: int, extra: int) -> None:
        """ContextLengthError when `prompt` + `extra` tokens exceed the served context."""
        if prompt + extra > self.context_length:
            raise ContextLengthError(prompt, extra, self.context_length, self.served_model)

    def _chooses(self, shared: int, target: list[int]) -> bool:
        """Whether to score by chosen tokens: always for a one-token target (one request
        either way, and the cache is read); for longer targets only when the prefix the
        cache serves (`shared` tokens) saves more than the extra requests cost. Under a
        request budget (`max_requests`: requests are what the user pays for), one request per
        variant."""
        if self.scoring != "auto":
            return self.scoring == "chosen"
        if self.options.max_requests is not None:
            return len(target) == 1
        return len(target) == 1 or shared >= CACHE_PAYS_TOKENS

    def _score_one(self, ids: list[int], target: list[int], shared: int = 0) -> np.ndarray:
        """log p(target_t | ids, target_<t), `ids` sharing its first `shared` tokens with the
        prompt. Chosen-token scoring: one request per target token, in order, each reading
        the key/values the previous one left in the prefix cache; prompt scoring: one
        request's prompt log-probabilities (computed without the cache)."""
        out = np.zeros(len(target), dtype=np.float64)
        if self._chooses(shared, target):
            for t, token in enumerate(target):
                value = self._chosen_logprob(ids + target[:t], token)
                if value is None:
                    raise EngineError(
                        f"the engine's answer lacks the log-probability of target token {t}"
                    )
                out[t] = value
            return out
        prompt = ids + target
        answer = self._post_scoring(self._score_body(prompt), len(ids), len(target))
        logprobs = answer["choices"][0].get("prompt_logprobs") or []
        for t, token in enumerate(target):
            entry = logprobs[len(ids) + t] if len(ids) + t < len(logprobs) else None
            found = (entry or {}).get(str(token))
            if found is None:
                raise EngineError(
                    f"the server's answer lacks the log-probability of target token {t}"
                )
            out[t] = float(found["logprob"] if isinstance(found, dict) else found)
        return out

    def _score_rows(
        self,
        inputs: list[list[int]],
        target: list[int],
        progress: ProgressFn | None,
        reference: Sequence[int] | None,
    ) -> np.ndarray:
        """Send every row as its own request, `concurrency` in flight, longest shared prefix
        with the reference first, so the engine's prefix cache holds what later rows reuse.
        A fault or a cancellation (raised by `progress`) stops the rest: no partial result."""
        for x in inputs:
            self._check_fits(len(x), len(target))
        ref = list(reference) if reference is not None else []
        shared = [common_prefix(x, ref) for x in inputs]
        order = sorted(range(len(inputs)), key=lambda i: -shared[i])
        chosen = sum(len(target) if self._chooses(shared[i], target) else 1 for i in order)
        self.check_budget(chosen, sum(len(x) + len(target) for x in inputs))
        return rows_in_order(
            order,
            lambda i: self._score_one(inputs[i], target, shared[i]),
            len(target),
            self.options.concurrency,
            progress,
            self.counters,
        )

    # --- next-token primitives (counterfactual edits) --------------------------------------------
    def _prompt_logprobs(self, prompt: list[int], k: int) -> list[dict[str, Any]]:
        """Each prompt position's entry: the actual token and the engine's top `k`."""
        body = {**self._score_body(prompt), "prompt_logprobs": k}
        answer = self.client.post("/v1/completions", body)
        self._count_request(len(prompt), sequences=1)
        return [e or {} for e in answer["choices"][0].get("prompt_logprobs") or []]

    def top_tokens(self, ids: Sequence[int], positions: Sequence[int], k: int) -> list[list[int]]:
        """The engine's most likely next tokens after each of `positions` (best first), at
        most its --max-logprobs of them (20 by default)."""
        k = max(1, min(k, self.max_logprobs))
        entries = self._prompt_logprobs([*ids, self.pad_id], k)
        out: list[list[int]] = []
        for p in positions:
            entry = entries[p + 1] if p + 1 < len(entries) else {}
            ranked = sorted(entry.items(), key=lambda kv: int(kv[1].get("rank") or 1 << 30))
            out.append([int(t) for t, v in ranked if int(v.get("rank") or 1 << 30) <= k])
        return out

    def next_token_choice(
        self, rows: Sequence[Sequence[int]], token: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each row: the greedy next token and log p(`token`) there, from one request
        per row (`token` appended, the top-1 alongside it), `concurrency` in flight."""

        def one(row: Sequence[int]) -> tuple[int, float]:
            entry = self._prompt_logprobs([*row, int(token)], 1)[-1]
            logp = float(entry[str(token)]["logprob"])
            best = min(entry.items(), key=lambda kv: int(kv[1].get("rank") or 1 << 30))
            return int(best[0]), logp

        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            got = list(pool.map(one, rows))
        return np.array([g for g, _ in got], dtype=np.int64), np.array([lp for _, lp in got])

    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        raise NotImplementedError("the openai backend scores requests, not padded batches")

    # --- generation ----------------------------------------------------------------------------
    def _generate_body(self, ids: Sequence[int], max_new_tokens: int) -> dict[str, Any]:
        return {
            "model": self.served_model,
            "prompt": list(ids),
            "max_tokens": max(1, min(max_new_tokens, self.context_length - len(ids))),
            "temperature": 0,
            "return_token_ids": True,
            "skip_special_tokens": False,
        }

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """The engine's greedy continuation (token ids), ending with its end-of-sequence
        token when it stopped there."""
        self._check_fits(len(ids), 1)
        answer = self.client.post("/v1/completions", self._generate_body(ids, max_new_tokens))
        self._count_request(len(ids), sequences=1)
        choice = answer["choices"][0]
        return self._with_stop(list(choice.get("token_ids") or []), choice, max_new_tokens)

    def stream_generate(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[list[int]]:
        """The greedy continuation as it is generated: lists of new token ids."""
        self._check_fits(len(ids), 1)
        body = self._generate_body(ids, max_new_tokens)
        got: list[int] = []
        last: dict[str, Any] = {}
        for event in self.client.stream("/v1/completions", body):
            for choice in event.get("choices", []):
                new = list(choice.get("token_ids") or [])
                got += new
                last = choice
                if new:
                    yield new
        tail = self._with_stop(list(got), last, max_new_tokens)[len(got) :]
        if tail:
            yield tail

    def _with_stop(self, ids: list[int], choice: dict[str, Any], limit: int) -> list[int]:
        """End with the token the engine stopped on (the stop token it names, else the
        end-of-sequence token), as the other backends do, when its output ids lack it."""
        if choice.get("finish_reason") != "stop" or len(ids) >= limit:
            return ids
        stop = choice.get("stop_reason")
        if not isinstance(stop, int):
            stop = self.tokenizer.eos_token_id if stop is None else None
        if stop is not None and (not ids or ids[-1] != int(stop)):  # some versions keep it
            ids.append(int(stop))
        return ids
