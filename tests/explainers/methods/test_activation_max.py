"""activation_max: prompt activations match an independent forward hook, the projected input's
activation matches a rerun, optimisation beats the prompt, and non-torch backends are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import promptxray.explainers.methods.activation_max  # noqa: F401  (registers the method)
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.errors import InvalidRequestError, UnsupportedMethodError
from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.registry import check_supported, get_method
from tests.helpers import request_for

TEXT = "Once upon a time there was a little girl named"


def hooked_activations(model, ids: list[int], layer: int, site: str) -> torch.Tensor:
    """Activations [L, W] at a site from one full, unpadded forward with a plain hook."""
    block = model.model.layers[layer]
    seen: list[torch.Tensor] = []
    if site == "mlp":
        handle = block.mlp.down_proj.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].detach())
        )
    else:
        handle = block.self_attn.o_proj.register_forward_hook(
            lambda _m, _a, out: seen.append(out.detach())
        )
    try:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    finally:
        handle.remove()
    if site == "resid":
        return out.hidden_states[layer + 1][0]
    return seen[0][0]


def run(backend, **options):
    return explain(request_for(TEXT, method="activation_max", options=options), backend=backend)


@pytest.mark.parametrize("site", ["mlp", "attn", "resid"])
def test_prompt_activations_match_a_direct_hook(stories, site):
    expl = run(stories, site=site, steps=5)
    layer, neuron = expl.details["layer"], expl.details["neuron"]
    assert layer == stories.model.config.num_hidden_layers // 2
    model_input = build_input(parse_document(TEXT), stories)
    acts = hooked_activations(stories.model, model_input.ids, layer, site)[model_input.positions]
    assert neuron == int(acts.max(dim=0).values.argmax())  # default: the prompt's top unit
    expected = acts[:, neuron]
    # float32 activations (sums over the hidden size): 1e-5 of the largest
    bound = 1e-5 * float(expected.abs().max())
    assert [t.score for t in expl.tokens] == pytest.approx(expected.tolist(), abs=bound)
    assert expl.metrics["activation_prompt_max"] == pytest.approx(float(expected.max()), abs=bound)
    top = expl.details["top_prompt_tokens"]
    assert len(top) == 5 and top[0]["activation"] == pytest.approx(  # as above
        float(expected.max()), abs=bound
    )


def test_optimised_input_and_its_projection(stories):
    expl = run(stories, layer=1, neuron=7)
    d, m = expl.details, expl.metrics
    assert (d["layer"], d["neuron"], d["site"]) == (1, 7, "mlp")
    assert len(d["optimised_tokens"]) == len(d["optimised_ids"]) == 6
    assert d["optimised_text"] == stories.decode(d["optimised_ids"])
    rerun = hooked_activations(stories.model, d["prefix_ids"] + d["optimised_ids"], 1, "mlp")
    # a float32 activation of another forward: 1e-5 of its size, or of ~1 where it nears 0
    assert m["activation_projected"] == pytest.approx(float(rerun[-1, 7]), rel=1e-5, abs=1e-5)
    prompt_mean = sum(t.score for t in expl.tokens) / len(expl.tokens)
    assert m["activation_optimised"] > prompt_mean
    assert m["activation_optimised"] > m["activation_prompt_max"]
    assert set(m) == {"activation_optimised", "activation_projected", "activation_prompt_max"}
    again = run(stories, layer=1, neuron=7)  # seeded
    assert again.details["optimised_ids"] == d["optimised_ids"]
    # the same seeded float32 run again: equal to rounding
    assert again.metrics["activation_optimised"] == pytest.approx(m["activation_optimised"])


def test_bad_options_are_refused(stories):
    with pytest.raises(InvalidRequestError, match="site"):
        run(stories, site="bogus")
    with pytest.raises(InvalidRequestError, match="layer"):
        run(stories, layer=99)
    with pytest.raises(InvalidRequestError, match="neuron"):
        run(stories, neuron=10**6)


def test_onnx_backend_is_refused():
    fake = SimpleNamespace(name="onnx", capabilities=Capabilities(logits=True))
    spec = get_method("activation_max")
    assert not spec.attributes_target
    with pytest.raises(UnsupportedMethodError, match="activation_max"):
        check_supported(spec, fake)
