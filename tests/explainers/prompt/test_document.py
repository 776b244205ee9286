"""Prompt files -> messages, with every visible char traced back to its exact file span."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptxray.explainers.errors import (
    BinaryFileError,
    DocumentError,
    EmptyPromptError,
    FrontMatterError,
    MissingSampleError,
)
from promptxray.explainers.prompt.document import (
    Message,
    PromptDocument,
    decode_prompt_bytes,
    document_kind,
    parse_document,
    read_prompt_file,
)
from tests.conftest import DATA, REPO

EXAMPLES = REPO / "examples"
GOOD = [
    DATA / "ascii.prompt",
    DATA / "cjk.prompt",
    DATA / "emoji.prompt",
    DATA / "crlf.prompt",
    DATA / "frontmatter.prompt.md",
    DATA / "capital.prompty",
    EXAMPLES / "capital.prompt",
    EXAMPLES / "capital.prompty",
]


def load(path: Path) -> PromptDocument:
    return parse_document(read_prompt_file(str(path)), str(path))


def check_invariants(doc: PromptDocument) -> None:
    """Literal text equals its file slice; placeholder chars map to their `{{...}}` marker."""
    assert doc.messages
    for msg in doc.messages:
        assert msg.content == msg.content.strip("\n") and msg.content.strip()
        for seg in msg.segments:
            assert seg.text
            assert doc.body_start <= seg.start < seg.end <= len(doc.source)
            if seg.placeholder is None and seg.exact:
                assert doc.source[seg.start : seg.end] == seg.text
            elif seg.placeholder is None:
                assert doc.source[seg.start : seg.end].replace("\r\n", "\n") == seg.text
            else:
                marker = doc.source[seg.start : seg.end]
                assert marker.startswith("{{") and marker.endswith("}}")
                assert marker[2:-2].strip() == seg.placeholder
        spans = msg.char_spans()
        assert len(spans) == len(msg.content)
        markers = {(s.start, s.end) for s in msg.segments if not s.exact or s.placeholder}
        for ch, (start, end) in zip(msg.content, spans, strict=True):
            assert doc.source[start:end] == ch or (start, end) in markers


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_files_keep_exact_offsets(path: Path) -> None:
    doc = load(path)
    check_invariants(doc)
    assert doc.kind == document_kind(str(path))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a.prompty", "prompty"),
        ("A.PROMPTY", "prompty"),
        ("a.prompt.md", "copilot"),
        ("notes.md", "markdown"),
        ("a.prompt", "text"),
        ("a.txt", "text"),
        ("a.yaml", "text"),
        ("-", "text"),
        (None, "text"),
    ],
)
def test_document_kind(path: str | None, kind: str) -> None:
    assert document_kind(path) == kind


def test_text_file_is_one_user_message() -> None:
    doc = load(DATA / "ascii.prompt")
    assert doc.body_start == 0 and doc.front_matter == {} and not doc.has_roles
    assert [(m.role, m.content) for m in doc.messages] == [
        ("user", "What is the capital of France?")
    ]


def test_cjk_and_emoji_are_single_chars() -> None:
    emoji = load(DATA / "emoji.prompt")
    content = emoji.messages[0].content
    assert "👍🏽" in content and "🇫🇷" in content
    i = content.index("👍🏽")
    assert emoji.messages[0].char_spans()[i : i + 2] == [(i, i + 1), (i + 1, i + 2)]
    cjk = load(DATA / "cjk.prompt")
    assert cjk.messages[0].content == cjk.source.strip()


def test_crlf_offsets_are_exact() -> None:
    doc = load(DATA / "crlf.prompt")
    assert "\r\n" in doc.source
    content = doc.messages[0].content
    assert "\r\n" in content and not content.endswith("\n")
    spans = doc.messages[0].char_spans()
    assert [doc.source[s:e] for s, e in spans] == list(content)


def test_crlf_front_matter_and_roles() -> None:
    src = (
        "---\r\nname: x\r\nsample:\r\n  n: 3\r\n---\r\nsystem:\r\nBe brief.\r\nuser:\r\nn={{n}}\r\n"
    )
    doc = parse_document(src, "x.prompty")
    check_invariants(doc)
    assert doc.front_matter == {"name": "x", "sample": {"n": 3}}
    assert doc.body_start == src.index("system:")
    assert [(m.role, m.content) for m in doc.messages] == [
        ("system", "Be brief."),
        ("user", "n=3"),
    ]


def test_markdown_front_matter() -> None:
    doc = load(DATA / "frontmatter.prompt.md")
    assert doc.front_matter["title"] == "Capital question"
    assert "model" in doc.front_matter
    assert doc.body_start == doc.source.index("# Geography")
    assert doc.messages[0].content.startswith("# Geography")
    assert "---" not in doc.messages[0].content


def test_markdown_does_not_fill_placeholders() -> None:
    doc = parse_document("---\nsample: {x: 1}\n---\nsay {{x}}\n", "a.md")
    assert doc.messages[0].content == "say {{x}}"
    assert parse_document("say {{x}}", "a.prompt").messages[0].content == "say {{x}}"


def test_text_kind_ignores_front_matter() -> None:
    doc = parse_document("---\ntitle: x\n---\nhi\n", "a.txt")
    assert doc.front_matter == {} and doc.messages[0].content.startswith("---")


def test_bom_is_not_body() -> None:
    src = decode_prompt_bytes("\ufeffHello\n".encode(), "a.prompt")
    assert src.startswith("\ufeff")
    doc = parse_document(src, "a.prompt")
    assert doc.body_start == 1
    assert doc.messages[0].content == "Hello"
    md = parse_document("\ufeff---\na: 1\n---\nHi", "a.md")
    assert md.front_matter == {"a": 1} and md.messages[0].content == "Hi"


def test_prompty_roles_and_placeholder() -> None:
    doc = load(DATA / "capital.prompty")
    assert doc.has_roles and doc.front_matter["name"] == "Capital"
    assert doc.body_start == doc.source.index("system:")
    assert [m.role for m in doc.messages] == ["system", "user"]
    user = doc.messages[1]
    assert user.content == "What is the capital of France?"
    (seg,) = [s for s in user.segments if s.placeholder]
    assert seg.placeholder == "country" and seg.text == "France"
    assert doc.source[seg.start : seg.end] == "{{country}}"
    i = user.content.index("France")
    assert set(user.char_spans()[i : i + 6]) == {(seg.start, seg.end)}


def test_prompty_role_order_and_markers() -> None:
    src = (
        "preamble\n"
        "  USER :  \n"
        "User: hi is not a marker\n"
        "assistant:\n"
        "ok\n"
        "system:\n"
        "\n"
        "user:\n"
        "last {{ who }} {% raw %}{{ keep }}{% endraw %}? {% if x %}y{% endif %}\n"
    )
    front = "---\nsample:\n  who: 42\n  keep: K\n---\n"
    doc = parse_document(front + src, "a.prompty")
    check_invariants(doc)
    assert [(m.role, m.content) for m in doc.messages] == [
        ("system", "preamble"),
        ("user", "User: hi is not a marker"),
        ("assistant", "ok"),
        ("user", "last 42 {{ keep }}? "),
    ]


def test_prompty_without_markers_is_one_system_message() -> None:
    """As the Prompty runtime's parser: text before any role line is a system message."""
    doc = parse_document("---\nname: a\n---\nUser: hello\n", "a.prompty")
    assert not doc.has_roles
    assert [(m.role, m.content) for m in doc.messages] == [("system", "User: hello")]


def test_sample_whitespace_is_kept_as_the_runtime_keeps_it() -> None:
    """The Prompty runtime strips only line breaks around a message, not a value's spaces."""
    doc = parse_document("---\nsample: {a: '  pad  '}\n---\nuser:\n{{a}}\n", "a.prompty")
    check_invariants(doc)
    assert doc.messages[0].content == "  pad  "


def test_inputs_sample_wins_over_top_level_sample() -> None:
    src = "---\ninputs:\n  c: {sample: Peru}\nsample: {c: Chile}\n---\n{{c}}"
    assert parse_document(src, "a.prompty").messages[0].content == "Peru"


@pytest.mark.parametrize(
    ("src", "path", "needle"),
    [
        ("", "e.prompt", "e.prompt has no prompt text"),
        (" \n\t\r\n  ", "e.prompt", "has no prompt text"),
        ("---\ntitle: x\n---\n\n", "e.md", "front matter"),
        ("---\ntitle: x\n---\nsystem:\n\nuser:\n  \n", "e.prompty", "front matter"),
        ("\ufeff", "e.prompt", "has no prompt text"),
    ],
)
def test_empty_prompts(src: str, path: str, needle: str) -> None:
    with pytest.raises(EmptyPromptError, match=needle):
        parse_document(src, path)


def test_nul_bytes_are_binary(tmp_path: Path) -> None:
    path = tmp_path / "bin.prompt"
    path.write_bytes(b"hello\x00world")
    with pytest.raises(BinaryFileError, match="looks like a binary file"):
        read_prompt_file(str(path))
    with pytest.raises(BinaryFileError, match="binary"):
        decode_prompt_bytes(bytes(range(1, 32)) * 4, "x")


def test_invalid_utf8_names_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.prompt"
    path.write_bytes("Caf\u00e9 ok\n".encode("latin-1"))
    with pytest.raises(BinaryFileError) as info:
        read_prompt_file(str(path))
    message = str(info.value)
    assert "byte offset 3" in message and "UTF-8" in message and str(path) in message


def test_missing_file_is_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot read"):
        read_prompt_file(str(tmp_path / "nope.prompt"))


def test_broken_yaml_names_file_line() -> None:
    path = DATA / "broken_frontmatter.prompt.md"
    with pytest.raises(FrontMatterError, match=r"broken_frontmatter\.prompt\.md:3:"):
        load(path)
    with pytest.raises(FrontMatterError, match=r"a\.md:4:"):
        parse_document("---\na: 1\nb: 2\nc: d: e\n---\nhi\n", "a.md")


def test_unclosed_front_matter() -> None:
    with pytest.raises(FrontMatterError, match="never closed"):
        parse_document("---\ntitle: x\nWhat?\n", "a.md")


def test_non_mapping_front_matter() -> None:
    with pytest.raises(FrontMatterError, match="mapping"):
        parse_document("---\n- a\n- b\n---\nhi\n", "a.prompty")


def test_unsafe_yaml_is_refused() -> None:
    with pytest.raises(FrontMatterError):
        parse_document("---\nx: !!python/object/apply:os.system ['true']\n---\nhi\n", "a.md")


def test_missing_sample_names_placeholder() -> None:
    with pytest.raises(MissingSampleError) as info:
        load(DATA / "missing_sample.prompty")
    message = str(info.value)
    assert "'city'" in message and ":8:" in message
    assert "inputs" in message and "sample" in message


def test_message_helpers() -> None:
    msg = Message("user", [])
    assert msg.content == "" and msg.char_spans() == []


def test_stripping_keeps_the_span_of_an_escape_at_either_end() -> None:
    """A prompt that starts or ends in an escape sequence: the stripped message still maps
    each escape to its whole source (not to a one-char slice of it)."""
    code = 'SYSTEM_PROMPT = "  \\u00c9t\\u00e9 is summer, say it in French\\u0021\\n"\n'
    (message,) = parse_document(code, "a.py").messages
    assert message.content == "\u00c9t\u00e9 is summer, say it in French!"
    first, last = message.segments[0], message.segments[-1]
    assert (first.text, code[first.start : first.end], first.exact) == ("\u00c9", "\\u00c9", False)
    assert (last.text, code[last.start : last.end], last.exact) == ("!", "\\u0021", False)


def test_a_syntax_error_in_code_names_the_file_line_and_column() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document("PROMPT = (\n  'open'\n", "bad.py")
    assert str(info.value).startswith("bad.py:1:10: invalid Python syntax:")
