"""Each bad input gives a clear error and a non-zero exit, through the CLI's own entry point."""

from __future__ import annotations

import json

import pytest

from promptxray.cli import main
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.backends.torch_backend import TorchBackend
from promptxray.explainers.errors import UnsupportedMethodError
from promptxray.explainers.explain import explain
from tests.conftest import DATA, STORIES
from tests.helpers import request_for


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["explain", *args, "--model", str(STORIES), "--color", "never"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"", "empty.prompt", "no prompt text"),
        (b"   \n\t\n", "blank.prompt", "no prompt text"),
        (b"\x00\x01\x02binary\x00", "blob.prompt", "binary"),
        (b"caf\xe9 au lait", "latin1.prompt", "UTF-8"),
    ],
)
def test_unreadable_files(tmp_path, capsys, content, name, expected):
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run_cli(capsys, str(path))
    assert code == 2
    assert out == ""
    assert expected in err and err.startswith("promptxray: error:")


def test_broken_front_matter_and_missing_sample(capsys):
    code, _, err = run_cli(capsys, str(DATA / "broken_frontmatter.prompt.md"))
    assert code == 2 and "front matter" in err.lower() and ":3:" in err
    code, _, err = run_cli(capsys, str(DATA / "missing_sample.prompty"))
    assert code == 2 and "city" in err


def test_prompt_longer_than_context(tmp_path, capsys):
    path = tmp_path / "long.prompt"
    path.write_text("Once upon a time there was a girl. " * 120)
    code, _, err = run_cli(capsys, str(path))
    assert code == 2
    assert "context of 512 tokens" in err and "the prompt is" in err


@pytest.mark.parametrize(
    ("model", "expected"),
    [("/nonexistent/model/folder", "does not exist"), (str(DATA), "no config.json")],
)
def test_missing_or_invalid_model(capsys, model, expected):
    code = main(["explain", str(DATA / "ascii.prompt"), "--model", model])
    assert code == 2
    assert expected in capsys.readouterr().err


def test_model_that_is_not_a_causal_lm(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    code = main(["explain", str(DATA / "ascii.prompt"), "--model", str(tmp_path)])
    assert code == 2
    assert "causal language model" in capsys.readouterr().err


def test_unknown_method_backend_granularity(capsys):
    code, _, err = run_cli(capsys, str(DATA / "ascii.prompt"), "--method", "telepathy")
    assert code == 2 and "unknown method 'telepathy'" in err and "occlusion" in err
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, str(DATA / "ascii.prompt"), "--backend", "tpu")
    assert exit_info.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err
    code, _, err = run_cli(capsys, str(DATA / "ascii.prompt"), "-O", "n_steps")
    assert code == 2 and "KEY=VALUE" in err


class ForwardOnlyTorch(TorchBackend):
    """The real torch backend with its gradient and attention capabilities switched off,
    standing for any forward-only backend (the ONNX one follows this contract)."""

    name = "forward-only"
    capabilities = Capabilities(logits=True)


@pytest.mark.parametrize("method", ["integrated_gradients", "attention"])
def test_method_the_backend_cannot_run(stories, method):
    backend = ForwardOnlyTorch.__new__(ForwardOnlyTorch)
    backend.__dict__.update(stories.__dict__)
    with pytest.raises(UnsupportedMethodError) as info:
        explain(request_for("Once upon a time", method=method), backend=backend)
    message = str(info.value)
    assert "forward-only backend" in message and "occlusion" in message
    assert "integrated_gradients" not in message.split("one of:")[1]


def test_invalid_method_option(stories):
    from promptxray.explainers.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="n_steps"):
        explain(
            request_for("Once upon a time", method="integrated_gradients", options={"n_steps": 0}),
            backend=stories,
        )
