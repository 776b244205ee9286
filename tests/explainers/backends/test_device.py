"""The torch backend's device and dtype choice (--device, --dtype): the CPU path here; the CUDA
path where a GPU exists (skipped without one, said so in the reason)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.errors import InvalidRequestError, ModelLoadError
from promptxray.explainers.models.loading import load_model, pick_device, pick_dtype
from tests.conftest import STORIES
from tests.helpers import GPU_NATS

HAS_CUDA = torch.cuda.is_available()


def test_auto_picks_cuda_only_when_present_and_float32_on_the_cpu():
    assert pick_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert pick_device("cpu") == "cpu"
    assert pick_dtype("cpu") is torch.float32
    assert pick_dtype("cpu", "bfloat16") is torch.bfloat16
    with pytest.raises(ModelLoadError, match="for CUDA"):
        pick_dtype("cpu", "float16")
    with pytest.raises(InvalidRequestError, match="unknown device"):
        BackendOptions(device="tpu")
    with pytest.raises(InvalidRequestError, match="unknown dtype"):
        BackendOptions(dtype="int4")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        load_model(str(STORIES), device="cuda")


def test_bfloat16_on_the_cpu_scores_close_to_float32(stories):
    from promptxray.explainers.backends.torch_backend import TorchBackend

    half = TorchBackend(load_model(str(STORIES), device="cpu", dtype="bfloat16"))
    assert next(half.model.parameters()).dtype == torch.bfloat16
    ids = stories.tokenizer("Once upon a time there was a")["input_ids"]
    target = stories.tokenizer(" little girl", add_special_tokens=False)["input_ids"]
    exact = stories.target_logprobs([ids], target)
    approx = half.target_logprobs([ids], target)
    # bfloat16 keeps 8 bits of mantissa (~4e-3 relative): 0.5 nats is "close", not float32
    assert np.isfinite(approx).all() and np.abs(approx - exact).max() < 0.5


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_cuda_scores_equal_the_cpu(stories):  # pragma: no cover - GPU machines only
    from promptxray.explainers.backends.torch_backend import TorchBackend

    gpu = TorchBackend(load_model(str(STORIES), device="cuda", dtype="float32"))
    ids = stories.tokenizer("Once upon a time there was a")["input_ids"]
    target = stories.tokenizer(" little girl", add_special_tokens=False)["input_ids"]
    assert (
        np.abs(gpu.target_logprobs([ids], target) - stories.target_logprobs([ids], target)).max()
        < GPU_NATS
    )
