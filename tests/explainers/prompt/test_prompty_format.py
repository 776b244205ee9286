"""`.prompty` files: the messages equal the Prompty runtime's own render, character for
character, and every character the model reads points at the file text that produced it."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptxray.cli.main import main as cli_main
from promptxray.explainers.errors import (
    MissingSampleError,
    TemplateSyntaxError,
    UnsupportedTemplateError,
)
from promptxray.explainers.prompt.document import PromptDocument, parse_document

# Written as Prompty 2's docs write them: typed inputs with defaults, Jinja control flow.
SUPPORT = """---
name: Support triage
description: Route a customer message.
model:
  api: chat
inputs:
  customer:
    kind: string
    default: Ada
  items:
    kind: array
    items:
      kind: string
    default: [a brake cable, two inner tubes]
  urgent:
    kind: boolean
    default: true
  notes:
    kind: string
    default: ""
---
system:
You are the support desk of a bike shop.
{% if urgent -%}
Answer first: this customer is waiting in the shop.
{%- endif %}
{# a comment the model never sees #}
Their order:
{% for item in items %}
- {{ item | title }} ({{ loop.index }} of {{ items | length }})
{% endfor %}
{% raw %}Literal {{ braces }} stay.{% endraw %}

user:
Hi, I am {{customer}}. {{ notes or "No notes." }}
Where is my order?
"""


def reference(path: Path) -> list[tuple[str, str]]:
    """The Prompty runtime's own messages for the file's default inputs."""
    import prompty
    from prompty.core.pipeline import prepare

    agent = prompty.load(str(path))
    return [(m.role, "".join(p.value for p in m.parts)) for m in prepare(agent, {})]


def check_map(doc: PromptDocument) -> None:
    """Literal characters are the file's own; filled text points at a `{{ … }}` tag."""
    src = doc.source
    for message in doc.messages:
        for seg in message.segments:
            text = src[seg.start : seg.end]
            if seg.placeholder is not None:
                assert text.startswith("{{") and text.endswith("}}"), (seg, text)
                assert seg.placeholder in text
            elif seg.exact:
                assert text == seg.text
            else:
                assert text.replace("\r\n", "\n") == seg.text or not seg.text.strip()


def test_messages_equal_the_prompty_runtime(tmp_path: Path) -> None:
    path = tmp_path / "support.prompty"
    path.write_text(SUPPORT, encoding="utf-8")
    doc = parse_document(SUPPORT, str(path))
    got = [(m.role, m.content) for m in doc.messages]
    assert got == reference(path)
    assert "Brake Cable (1 of 2)" in got[0][1] and "{{ braces }}" in got[0][1]
    assert "comment" not in got[0][1]
    check_map(doc)


def test_a_loop_body_maps_every_repeat_to_the_same_span(tmp_path: Path) -> None:
    doc = parse_document(SUPPORT, str(tmp_path / "s.prompty"))
    segs = [s for m in doc.messages for s in m.segments]
    items = [s for s in segs if s.placeholder == "item | title"]
    assert [s.text for s in items] == ["A Brake Cable", "Two Inner Tubes"]
    assert len({(s.start, s.end) for s in items}) == 1
    dashes = [s.start + s.text.index("- ") for s in segs if s.exact and "- " in s.text]
    assert len(dashes) == 2 and dashes[0] == dashes[1]
    assert SUPPORT[dashes[0] : dashes[0] + 2] == "- "


def test_crlf_file_and_prompty_1_samples() -> None:
    """Prompty 1's `sample:` block; CRLF line breaks map to their two characters."""
    from prompty.model import Agent
    from prompty.parsers.prompty import PromptyChatParser
    from prompty.renderers.jinja2 import Jinja2Renderer

    body = "system:\r\nBe {{tone}}.\r\n\r\nuser:\r\n{% for q in qs %}Q: {{q}}\r\n{% endfor %}"
    src = "---\r\nsample:\r\n  tone: brief\r\n  qs: [one, two]\r\n---\r\n" + body
    doc = parse_document(src, "c.prompty")
    rendered = Jinja2Renderer().render(
        Agent(), body.replace("\r\n", "\n"), {"tone": "brief", "qs": ["one", "two"]}
    )
    want = [(m.role, m.parts[0].value) for m in PromptyChatParser().parse(Agent(), rendered)]
    assert [(m.role, m.content) for m in doc.messages] == want
    check_map(doc)
    newline = next(s for s in doc.messages[1].segments if s.text.startswith("\n"))
    assert src[newline.start : newline.start + 2] == "\r\n"


def test_samples_from_sidecar_and_caller(tmp_path: Path) -> None:
    path = tmp_path / "t.prompty"
    text = "---\nname: t\n---\nuser:\nTell me about {{city}} in {{season}}."
    path.write_text(text, encoding="utf-8")
    (tmp_path / "t.prompty.samples.yaml").write_text("city: Lisbon\nseason: May\n")
    doc = parse_document(text, str(path))
    assert doc.messages[0].content == "Tell me about Lisbon in May."
    doc = parse_document(text, str(path), samples={"season": "June"})
    assert doc.messages[0].content == "Tell me about Lisbon in June."


def test_syntax_error_names_line_and_column_and_cli_exits_2(tmp_path: Path, capsys) -> None:
    text = "---\nname: t\n---\nuser:\nHello\n{% for x in %}\n{{x}}\n"
    with pytest.raises(TemplateSyntaxError) as info:
        parse_document(text, "t.prompty")
    assert str(info.value).startswith("t.prompty:6:1: Jinja syntax error:")
    assert info.value.offset == text.index("{% for")
    path = tmp_path / "t.prompty"
    path.write_text(text, encoding="utf-8")
    assert cli_main(["explain", str(path)]) == 2  # before any model is loaded
    assert "t.prompty:6:1: Jinja syntax error" in capsys.readouterr().err


def test_undefined_variable_names_it_and_where_to_give_a_sample() -> None:
    text = "---\nname: t\n---\nuser:\nHi {{ name }}, about {{ topic }}"
    with pytest.raises(MissingSampleError) as info:
        parse_document(text, "t.prompty", samples={"name": "Ada"})
    message = str(info.value)
    assert "'topic'" in message and "t.prompty:5:" in message and "samples.yaml" in message


def test_optional_variable_in_a_condition_is_not_a_missing_sample() -> None:
    text = "---\nname: t\n---\nuser:\nHi{% if extra %} {{ extra }}{% endif %}!"
    assert parse_document(text, "t.prompty").messages[0].content == "Hi!"


@pytest.mark.parametrize(
    "body",
    [
        "{% include 'other.prompty' %}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_the_sandbox_refuses_files_and_code(body: str) -> None:
    with pytest.raises(UnsupportedTemplateError):
        parse_document(f"---\nname: t\n---\nuser:\n{body}", "t.prompty")
