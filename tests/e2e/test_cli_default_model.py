"""End to end: the installed `promptxray` command on the real default model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import DATA, REPO

CAPITAL = REPO / "examples" / "capital.prompt"


def promptxray(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promptxray") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "promptxray.cli"]
    return subprocess.run(
        [*cmd, *args], input=stdin, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_explain_json_on_default_model():
    result = promptxray("explain", str(CAPITAL), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    source = CAPITAL.read_text()
    assert "Paris" in data["target"]["text"]
    assert data["model"] == "SmolLM2-135M-Instruct" and data["method"] == "occlusion"
    assert data["forward_passes"] >= 2 and data["wall_time_s"] > 0
    for token in data["tokens"]:
        assert source[token["start"] : token["end"]] == token["text"]
        assert isinstance(token["score"], float)
    top = max(data["spans"], key=lambda s: abs(s["score"]))
    assert top["text"].strip() in {"capital", "France"}


@pytest.mark.slow
def test_explain_text_html_and_stdin(tmp_path):
    prompty = DATA / "capital.prompty"
    text = promptxray("explain", str(prompty), "-g", "word", "--color", "never")
    assert text.returncode == 0, text.stderr
    assert "Top drivers:" in text.stdout and "{{country}}" in text.stdout
    assert "\x1b[" not in text.stdout
    page = tmp_path / "heatmap.html"
    html = promptxray("explain", "-", "-f", "html", "-o", str(page), stdin=CAPITAL.read_text())
    assert html.returncode == 0, html.stderr
    content = page.read_text()
    assert content.startswith("<!DOCTYPE html>") and "capital" in content
    assert "http://" not in content and "https://" not in content


@pytest.mark.slow
def test_auto_faithfulness_plain_language_and_self_explanation():
    """`-m auto` says which method it chose and why; the text output carries the faithfulness
    figures and the plain-language explanation (here in Chinese), and --self-explain the
    model's own account checked against the scores."""
    result = promptxray(
        "explain",
        str(CAPITAL),
        "-m",
        "auto",
        "-g",
        "word",
        "--color",
        "never",
        "--lang",
        "zh",
        "--self-explain",
        "--verbose",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "自动选出" in out and "最忠实" in out  # auto's choice and its reason, in Chinese
    assert "most faithful" not in out
    # the figures are stated once, in the report (the summary above it gives a verdict)
    assert sum(line.startswith("忠实度：") for line in out.splitlines()) == 1
    assert "主要驱动" in out and "comprehensiveness" in out
    assert "模型" in out.split("忠实度")[-1]  # the self-explanation follows, in Chinese
