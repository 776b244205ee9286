"""Greedy generation starts from the prompt's key/value cache (the one scoring reuses) instead
of its own prefill: the same answer as a plain generation, and the cache it leaves behind
still scores the prompt and its variants as plain forwards do."""

from __future__ import annotations

import numpy as np

from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from tests.helpers import F32_NATS

PROMPTS = [
    "Once upon a time there was a little girl.\nShe had a red ball.\nOne day",
    "What is the capital of France?",
]


def test_generation_from_the_cache_equals_plain_generation(any_backend):
    backend = any_backend
    for text in PROMPTS:
        ids = build_input(parse_document(text, "a.prompt"), backend).ids
        backend.prefix_reuse = False
        try:
            plain = backend.generate(ids, 8)
        finally:
            backend.prefix_reuse = backend.prefix.supported
        backend.prefix.entries.clear()
        cached = backend.generate(ids, 8)
        assert cached == plain
        assert tuple(ids) in backend.prefix.entries  # kept for the scoring that follows
        variants = [ids, ids[:-2], ids[1:]]
        after = backend.target_logprobs(variants, cached, reference=ids)
        fresh = backend.target_logprobs(variants, cached)  # plain padded forwards
        assert np.abs(after - fresh).max() <= F32_NATS
