"""Backends state what they can do; methods, `explain` and the wording ask that, never a name.
No server here: the chat tiers' own parts (characters as tokens, the interval arithmetic, the
JSON and the sentences of a remote explanation) are checked directly."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from promptxray.explainers import nl
from promptxray.explainers.backends import BACKENDS, best_capabilities
from promptxray.explainers.backends.capabilities import Capabilities, Scoring
from promptxray.explainers.backends.openai_chat import (
    difference_interval,
    mean_interval,
    similarity,
)
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.backends.text_tokens import END_ID, TextTokenizer, messages_of
from promptxray.explainers.details import PartFigure, RemoteInfo, ScoreKind
from promptxray.explainers.errors import InvalidRequestError, UnsupportedMethodError
from promptxray.explainers.registry import check_supported, get_method, list_methods
from promptxray.explainers.types import Explanation, Span, Target, TargetToken, Token
from promptxray.server.settings import parse_settings


def stand_in(**caps) -> SimpleNamespace:
    return SimpleNamespace(name="server", capabilities=Capabilities(**caps))


def test_methods_run_by_declared_capabilities():
    exact = stand_in(scoring=Scoring.PROMPT, next_tokens=True)
    generated = stand_in(scoring=Scoring.GENERATED)
    runs = {m.name for m in list_methods() if m.runs_on(exact)}
    assert {"occlusion", "shapley", "surrogate", "counterfactual"} <= runs
    assert not {"saliency", "attention", "integrated_gradients"} & runs
    # bounds and sampled estimates: only leave-one-out methods, each variant its own figure
    assert {m.name for m in list_methods() if m.runs_on(generated)} == {
        m.name for m in list_methods() if m.leave_one_out
    }
    with pytest.raises(UnsupportedMethodError, match="exact log-probabilities"):
        check_supported(get_method("shapley"), generated)
    with pytest.raises(UnsupportedMethodError, match="next-token logits"):
        check_supported(get_method("counterfactual"), stand_in())


def test_every_backend_states_its_best_capabilities_without_loading():
    for name in BACKENDS:
        caps = best_capabilities(name)
        assert caps is not None, name
    assert best_capabilities("torch").gradients and best_capabilities("torch").samples
    assert not best_capabilities("openai").gradients and best_capabilities("openai").remote
    assert best_capabilities("nonsense") is None


def test_characters_are_tokens_and_messages_come_back():
    tok = TextTokenizer()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "巴黎 🙂?"}]
    text = tok.apply_chat_template(messages)
    enc = tok(text, return_offsets_mapping=True)
    assert tok.decode(enc["input_ids"]) == text
    assert all(
        text[s:e] == chr(i)
        for i, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
    )
    assert messages_of(text) == messages
    # a variant that empties a message drops it (servers may refuse empty ones)
    assert messages_of(text.replace("Be brief.", "")) == messages[1:]
    piece = tok.piece_id(b" Paris")
    assert tok.piece_id(b" Paris") == piece and tok.is_server_token(piece)
    whole = tok.piece_id(b"Lyon", server_token=False)
    assert not tok.is_server_token(whole)
    assert tok.decode([piece, END_ID], skip_special_tokens=True) == " Paris"


def test_similarity_and_intervals():
    assert similarity("The capital is Paris.", "the capital is paris") == 1.0
    assert similarity("Paris", "London") == 0.0
    low, high = mean_interval([1.0, 1.0, 0.0, 1.0])
    assert 0.0 <= low < 0.75 < high <= 1.0
    # Welch's interval of a difference covers the difference of the means
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 1.0, 24).tolist()
    variant = rng.uniform(0.0, 0.4, 8).tolist()
    low, high = difference_interval(base, variant)
    diff = float(np.mean(base) - np.mean(variant))
    assert low < diff < high and low > 0
    assert difference_interval([1.0], [0.0]) == (-1.0, 1.0)  # too few samples: nothing known


def test_options_for_a_server_are_checked():
    with pytest.raises(InvalidRequestError, match="tier"):
        BackendOptions(tier="best")
    with pytest.raises(InvalidRequestError, match="max_requests"):
        BackendOptions(max_requests=0)
    with pytest.raises(InvalidRequestError, match="environment variable"):
        BackendOptions(api_key_env="sk-123 456")
    settings, warnings = parse_settings(
        {
            "tier": "text-only",
            "maxRequests": 40,
            "pricePerMillionTokens": 0.4,
            "keyVariable": "MY_KEY",
        }
    )
    assert not warnings
    options = settings.backend_options()
    assert (options.tier, options.max_requests, options.price_per_mtok, options.api_key_env) == (
        "text-only",
        40,
        0.4,
        "MY_KEY",
    )
    _, warnings = parse_settings({"keyVariable": "sk-abc def", "tier": "best"})
    assert len(warnings) == 2


def remote_explanation(kind: ScoreKind, parts: list[PartFigure]) -> Explanation:
    tokens = [Token(i, c, i, i + 1, ord(c), c) for i, c in enumerate("ab")]
    return Explanation(
        method="occlusion",
        backend="openai",
        model="gpt-x at https://api.example.com",
        granularity="line",
        target=Target("Paris", [TargetToken("Paris", 1, -0.5)], -0.5, True),
        tokens=tokens,
        spans=[Span("a", 0, 1, 2.5, [0]), Span("b", 1, 2, 0.01, [1])],
        input_tokens=2,
        context_length=100,
        wall_time_s=1.0,
        forward_passes=3,
        sequences_scored=3,
        score_kind=kind,
        remote=RemoteInfo(
            endpoint="https://api.example.com",
            model="gpt-x",
            tier=Scoring.GENERATED.value if kind is ScoreKind.REMOVAL else Scoring.TEXT.value,
            requests=4,
            tokens_sent=1234,
            price=0.0005,
            parts=parts,
            base_low=0.6,
            base_high=0.9,
        ),
    )


def test_a_bound_is_said_as_one_and_never_as_no_effect():
    expl = remote_explanation(ScoreKind.REMOVAL, [PartFigure(1, "bound", answer="Lyon")])
    line = nl.span_line(expl, 1)
    assert "at least 0.01" in line and "Lyon" in line and "no measurable" not in line
    assert 1 not in nl.no_effect(expl)
    assert "gpt-x at https://api.example.com" in nl.summary(expl)
    report = nl.describe(expl)
    assert "1 of 2 figures are lower bounds" in report and "4 requests" in report
    assert "$0.0005" in report
    back = Explanation.from_json(expl.to_json())
    assert back.remote == expl.remote and back.remote.figure(1).answer == "Lyon"
    assert "至少" in nl.span_line(expl, 1, "zh")


def test_a_sampled_estimate_states_its_interval_and_no_probability():
    parts = [
        PartFigure(0, "estimate", low=0.2, high=0.8),
        PartFigure(1, "estimate", low=-0.3, high=0.3),
    ]
    expl = remote_explanation(ScoreKind.AGREEMENT, parts)
    line = nl.span_line(expl, 0)
    assert "less like" in line and "0.2" in line and "0.8" in line
    summary = nl.summary(expl)
    assert "(P " not in summary and "sampled answers match it 0.600 to 0.900" in summary
    assert not math.isnan(expl.spans[0].score) and not nl.no_effect(expl)
    report = nl.describe(expl)
    assert "probability is not known" in report and "0.600 to 0.900 (95%)" in report
