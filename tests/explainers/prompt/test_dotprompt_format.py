"""Dotprompt `.prompt` files: the messages equal dotpromptz's own render, character for
character, and every character maps back to the file place that produced it."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptxray.explainers.errors import (
    DocumentError,
    MissingSampleError,
    TemplateSyntaxError,
    UnsupportedTemplateError,
)
from promptxray.explainers.prompt import dotprompt_format
from promptxray.explainers.prompt.source_map import MappedText

GUIDE = """\
---
model: googleai/gemini-2.5-flash
config:
  temperature: 0.3
input:
  schema:
    name: string
    city: string
    formal?: boolean
    stops(array): string
    profile(object):
      age: integer
  default:
    name: Ada
    city: Lisbon
    formal: false
    stops: [Alfama, Belém, LX Factory]
    profile: {age: 36, likes: [tiles, "fish & chips"]}
---

{{! A walking-tour prompt; comments never reach the model. }}
{{role "system"}}
{{> greeting}}
You plan walking tours. {{!-- never more than
  three stops --}}
{{#if formal}}
Address the traveller formally.
{{else}}
Be casual and warm.
{{/if}}

{{role "user"}}
I am {{name}}, in {{city}}.
My stops:
{{#each stops}}
  {{@index}}. {{this}}
{{/each}}
Profile: {{json profile}}
{{~#unless formal}} (keep it short){{/unless}}
Escaped: \\{{name}} stays, {{{{raw}}}}so does {{city}}{{{{/raw}}}}.
Likes: {{#each profile.likes}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}
{{role "model"}}
Sure, {{ name }}, here is a plan for {{city}}:
"""

GREETING = "Hello, {{name}}! I am your guide in {{city}}.\nAsk me anything.\n"


def reference(text: str, folder: Path, samples: dict[str, Any]) -> list[tuple[str, str]]:
    """dotpromptz's own render: `Dotprompt().render`, with the folder's partials as its own
    DirStore reads them (registered up front: a resolver would also be asked for the
    template's inline partials, and fail)."""
    from dotpromptz import DataArgument, DirStoreOptions, DirStoreSync, Dotprompt
    from dotpromptz._typing import TextPart

    store = DirStoreSync(DirStoreOptions(directory=folder))
    names = [p.name[1 : -len(".prompt")] for p in folder.glob("_*.prompt")]
    dp = Dotprompt(partials={name: store.load_partial(name).source for name in names})
    rendered: Any = asyncio.run(dp.render(text, DataArgument(input=samples)))
    roles = {"system": "system", "user": "user", "model": "assistant"}
    out = []
    for m in rendered.messages:
        content = "".join(p.text for p in m.content if isinstance(p, TextPart))
        out.append((roles[m.role.value], content))
    return out


def front_of(text: str) -> dict[str, Any]:
    parts = text.split("---\n")
    return yaml.safe_load(parts[1]) if len(parts) > 2 and not parts[0].strip() else {}


def run(
    text: str, folder: Path | None, samples: dict[str, Any] | None = None, label: str = "t.prompt"
) -> tuple[MappedText, list[tuple[str, MappedText]]]:
    front = front_of(text)
    start = text.index("---\n", 4) + 4 if front else 0
    return dotprompt_format.render(text, start, front, samples or {}, label, folder)


def write(folder: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")


def tag_name(tag: str) -> str:
    """What a tag's text says it is, as the map names it."""
    if tag.startswith("{{>") or tag.startswith("{{~>"):
        return "> " + tag.strip("{}~> ").split()[0]
    return tag.strip("{}~").strip().lstrip("&").strip()


def check_map(text: str, mapped: MappedText, *, all_mapped: bool = True) -> None:
    """Every character is either a literal whose span holds that very character, or the
    output of an expression whose span is that expression's tag. `all_mapped=False`: white
    space between two tags may have no span (`segments` gives it its neighbour's)."""
    assert len(mapped.spans) == len(mapped.text)
    for i, ch in enumerate(mapped.text):
        span, name = mapped.spans[i], mapped.names[i]
        if span is None and not all_mapped and ch.isspace():
            continue
        assert span is not None, (i, ch)
        held = text[span[0] : span[1]]
        if name is None:
            assert mapped.exact[i], (i, ch, held)
            assert held == ch, (i, ch, held)
        else:
            assert not mapped.exact[i]
            assert held.startswith("{{") and held.endswith("}}"), (i, ch, held)
            assert tag_name(held) == name, (held, name)


@pytest.fixture
def guide(tmp_path: Path) -> tuple[str, Path]:
    write(tmp_path, {"guide.prompt": GUIDE, "_greeting.prompt": GREETING})
    return GUIDE, tmp_path


@pytest.mark.parametrize(
    "samples",
    [{}, {"city": "Porto", "formal": True}, {"stops": ["Ribeira"], "name": "<Bo & Cy>"}],
)
def test_messages_equal_dotpromptz(guide: tuple[str, Path], samples: dict[str, Any]) -> None:
    text, folder = guide
    _, messages = run(text, folder, samples)
    got = [(role, m.text) for role, m in messages]
    assert got == reference(text, folder, samples)
    assert [role for role, _ in got] == ["system", "user", "assistant"]
    for _, m in messages:
        check_map(text, m)


def test_map_points_at_what_produced_each_character(guide: tuple[str, Path]) -> None:
    text, folder = guide
    _, messages = run(text, folder)
    system, user, model = (m for _, m in messages)

    def spans_of(m: MappedText, piece: str, nth: int = 0) -> list[tuple[int, int] | None]:
        at = -1
        for _ in range(nth + 1):
            at = m.text.index(piece, at + 1)
        return m.spans[at : at + len(piece)]

    # the partial's output maps to its `{{> greeting}}` tag, by that name
    tag = text.index("{{> greeting}}")
    at = system.text.index("I am your guide")
    assert system.spans[at] == (tag, tag + len("{{> greeting}}"))
    assert system.names[at] == "> greeting"
    # an expression's output maps to its own tag (the user message's `{{city}}`, not another)
    city = text.index("{{city}}", text.index("I am {{name}}"))
    assert set(spans_of(user, "Lisbon")) == {(city, city + len("{{city}}"))}
    # a loop body repeated: each pass maps to the same file characters
    dot = text.index("}}. {{this}}") + 2
    passes = [spans_of(user, ". ", n) for n in range(3)]
    assert passes[0] == passes[1] == passes[2] == [(dot, dot + 1), (dot + 1, dot + 2)]
    this = text.index("{{this}}")
    assert set(spans_of(user, "Belém")) == {(this, this + len("{{this}}"))}
    # `\{{` prints `{{`, mapped to the braces themselves; a raw block's text is literal
    esc = text.index("\\{{name}}") + 1
    assert spans_of(user, "{{name}}")[0] == (esc, esc + 1)
    raw = text.index("so does {{city}}")
    assert spans_of(user, "so does {{city}}")[9] == (raw + 9, raw + 10)
    # `{{~#unless}}` ate the line break before it, as dotpromptz does
    assert '"fish & chips"]} (keep it short)' in user.text
    # the model turn's `{{ name }}` is named by its inner text
    assert model.names[model.text.index("Ada")] == "name"


def test_role_markers_are_structure_not_expressions(guide: tuple[str, Path]) -> None:
    text, folder = guide
    whole, _ = run(text, folder)
    at = whole.text.index("<<<dotprompt:role:user>>>")
    tag = text.index('{{role "user"}}')
    assert whole.spans[at] == (tag, tag + len('{{role "user"}}'))
    assert whole.names[at] is None


def test_tags_found_where_the_engine_finds_them() -> None:
    from dotpromptz_handlebars import TagToken
    from dotpromptz_handlebars._render import _tokens

    templates = [
        GUIDE,
        "a {{! c }} b {{!-- x }} y --}} c {{~!-- z --~}} d",
        "\\{{a}} \\\\{{b}} \\\\\\{{c}} {{{d}}} {{~{e}~}} {{&f}}",
        '{{{{raw}}}} {{x}} {{{{/raw}}}} {{json "a}}b"}} c',
        "{{#each xs as |x i|}}{{x}}{{else}}none{{/each}}{{^y}}n{{/y}}",
        '  {{> p a=1}}\n{{~#if x~}} y {{~/if~}}\n{{#*inline "q"}}Q{{/inline}}',
    ]
    for template in templates:
        engine = [t.body for t in _tokens(template) if isinstance(t, TagToken)]
        ours = [t.body for t in dotprompt_format._scan(template).tags]
        assert ours == engine, template


@pytest.mark.parametrize(
    "body",
    [
        "A  {{~name~}}  B\n{{#if name~}}\n  x\n{{~/if}}\n",
        "{{#each stops}}\n  - {{this}}\n{{else}}\n  none\n{{/each}}\nend",
        "List:\n    {{> greeting}}\nafter\n",
        "inline {{> greeting}} here",
        "{{#with profile}}{{age}} / {{json likes indent=2}}{{/with}}",
        '{{#ifEquals city "Lisbon"}}home{{else}}away{{/ifEquals}} {{#if nothing}}x{{/if}}',
        "{{#each stops}}{{@index}}={{this}}{{#unless @last}}; {{/unless}}{{/each}}",
        '{{role "user"}}a {{section "rules"}}b {{name}}',
        '{{#*inline "sig"}}-- {{name}}{{/inline}}\nBye {{> sig}}',
        "C:\\\\{{name}} and \\\\\\{{city}}, not \\{{city}}",
    ],
)
def test_whitespace_control_and_blocks_map_exactly(tmp_path: Path, body: str) -> None:
    front = "---\ninput:\n  default:\n    name: Ada\n    city: Lisbon\n"
    front += "    stops: [Alfama, Belém]\n    profile: {age: 36, likes: [tiles, fish]}\n---\n"
    text = front + body
    write(tmp_path, {"_greeting.prompt": GREETING})
    _, messages = run(text, tmp_path)
    assert [(r, m.text) for r, m in messages] == reference(text, tmp_path, {})
    for _, m in messages:
        check_map(text, m, all_mapped=False)
        unmapped = [ch for ch, span in zip(m.text, m.spans, strict=True) if span is None]
        assert not "".join(unmapped).strip()


def test_missing_condition_is_false_but_a_printed_hole_is_an_error(tmp_path: Path) -> None:
    text = "---\ninput:\n  default:\n    name: Ada\n---\n{{#if title}}Dr. {{/if}}{{name}}\n"
    _, messages = run(text, tmp_path)
    assert [m.text for _, m in messages] == ["Ada"]
    assert [(r, m.text) for r, m in messages] == reference(text, tmp_path, {})
    text = text.replace("{{name}}", "{{name}}{{#if a}}A{{else if b}}B{{else}}C{{/if}}")
    text += '{{#unless c}}U{{/unless}} {{#ifEquals mode "x"}}X{{else}}Y{{/ifEquals}}'
    _, messages = run(text, tmp_path)
    assert [m.text for _, m in messages] == ["AdaC\nU Y"]
    assert [(r, m.text) for r, m in messages] == reference(text, tmp_path, {})

    text = "---\ninput:\n  default:\n    name: Ada\n---\nHi {{name}},\nyou are in {{town}}.\n"
    with pytest.raises(MissingSampleError) as e:
        run(text, tmp_path, label="trip.prompt")
    assert str(e.value).startswith("trip.prompt:7:12: the template reads 'town'")
    assert "input.default" in str(e.value) and ".samples.yaml" in str(e.value)
    assert e.value.offset == text.index("{{town}}")
    # dotpromptz itself prints nothing there
    assert reference(text, tmp_path, {}) == [("user", "Hi Ada,\nyou are in .")]


@pytest.mark.parametrize(
    ("body", "name", "tag"),
    [
        ("{{#each places}}- {{this}}\n{{/each}}", "places", "{{#each places}}"),
        ("{{user.name}} says hi", "user.name", "{{user.name}}"),
        ("{{json prefs}}", "prefs", "{{json prefs}}"),
        ("{{#each stops}}{{this.label}}{{/each}}", "stops.[0].label", "{{this.label}}"),
    ],
)
def test_missing_samples_name_the_path(tmp_path: Path, body: str, name: str, tag: str) -> None:
    text = "---\ninput:\n  default:\n    user: {id: 1}\n    stops: [{id: 2}]\n---\nX " + body
    with pytest.raises(MissingSampleError) as e:
        run(text, tmp_path)
    assert f"reads {name!r}" in str(e.value)
    assert e.value.offset == text.index(tag)


@pytest.mark.parametrize(
    ("body", "error", "tag", "words"),
    [
        ("Hi\n{{#if name}}\nyes\n", TemplateSyntaxError, "{{#if name}}", "unclosed block"),
        ("{{#each xs}}\n{{/if}}", TemplateSyntaxError, "{{/if}}", "unexpected closing tag"),
        ("Hello {{name", TemplateSyntaxError, "{{name", "unclosed tag"),
        ("ok\n  {{else}}", TemplateSyntaxError, "{{else}}", "else"),
        ("Hi {{shout name}}", UnsupportedTemplateError, "{{shout name}}", "'shout'"),
        ('See {{media url="a.png"}}', UnsupportedTemplateError, "{{media", "no model input"),
        ("{{history}}\nNext", UnsupportedTemplateError, "{{history}}", "no model input"),
        ('a\n{{role "tool"}}\nresult', UnsupportedTemplateError, '{{role "tool"}}', "tool"),
        ('{{role "developer"}}\nhi', UnsupportedTemplateError, "{{role", "developer"),
        ("{{> ../secret}}", UnsupportedTemplateError, "{{> ../secret}}", "file name"),
        ("{{> sub/part}}", UnsupportedTemplateError, "{{> sub/part}}", "file name"),
        ("{{#> layout}}x{{/layout}}", UnsupportedTemplateError, "{{#> layout}}", "partial block"),
        ("x {{> nothere}}", DocumentError, "{{> nothere}}", "_nothere.prompt"),
    ],
)
def test_bad_templates_say_where(
    tmp_path: Path, body: str, error: type[Exception], tag: str, words: str
) -> None:
    text = "---\nmodel: m\ninput:\n  default:\n    name: Ada\n---\n" + body
    with pytest.raises(error) as e:
        run(text, tmp_path, label="bad.prompt")
    assert type(e.value) is error
    offset = text.index(tag)
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    assert str(e.value).startswith(f"bad.prompt:{line}:{col}: "), str(e.value)
    assert words in str(e.value)
    assert isinstance(e.value, DocumentError) and e.value.offset == offset


def test_partials_stay_in_the_prompts_folder(tmp_path: Path) -> None:
    inner = tmp_path / "prompts"
    inner.mkdir()
    (tmp_path / "_secret.prompt").write_text("the secret\n", encoding="utf-8")
    os.symlink(tmp_path / "_secret.prompt", inner / "_leak.prompt")
    text = "Say {{> leak}}"
    with pytest.raises(UnsupportedTemplateError, match="outside the prompt's folder"):
        run(text, inner)
    with pytest.raises(DocumentError, match="no folder"):
        run("Say {{> greeting}}", None)


def test_partial_errors_name_the_partial_file(tmp_path: Path) -> None:
    write(tmp_path, {"_broken.prompt": "line one\n{{#if x}}never closed\n"})
    text = "Intro\n{{> broken}}\n"
    with pytest.raises(TemplateSyntaxError) as e:
        run(text, tmp_path)
    assert re.match(r".*_broken\.prompt:2:1: Handlebars syntax error: unclosed block", str(e.value))
    assert "t.prompt:2:1" in str(e.value) and e.value.offset == text.index("{{> broken}}")

    write(tmp_path, {"_a.prompt": "A {{> b}}", "_b.prompt": "B {{> a}}"})
    with pytest.raises(UnsupportedTemplateError, match="a → b → a"):
        run("{{> a}}", tmp_path)


def test_nested_partials_map_to_the_outer_tag(tmp_path: Path) -> None:
    write(tmp_path, {"_outer.prompt": "[{{> inner}}]", "_inner.prompt": "in {{x}}"})
    text = "---\ninput:\n  default:\n    x: 1\n---\nStart {{> outer}} {{> inner}} end"
    _, messages = run(text, tmp_path)
    ((_, m),) = messages
    assert [("user", m.text)] == reference(text, tmp_path, {})
    check_map(text, m)
    outer, inner = text.index("{{> outer}}"), text.index("{{> inner}}")
    assert m.spans[m.text.index("[in 1]") + 1] == (outer, outer + len("{{> outer}}"))
    assert m.spans[m.text.rindex("in 1")] == (inner, inner + len("{{> inner}}"))


def test_template_is_dotpromptz_body(tmp_path: Path) -> None:
    text = "# licence header\n---\nmodel: m\n---\n\n\n  Hello there  \n\n"
    at, template = dotprompt_format.template_start(text)
    assert template == "Hello there" and text[at:].startswith(template)
    _, messages = dotprompt_format.render(text, 0, {}, {}, "t.prompt", tmp_path)
    assert [(r, m.text) for r, m in messages] == reference(text, tmp_path, {})
    assert dotprompt_format.template_start("no front matter\n") == (0, "no front matter\n")
    # a byte order mark is not text (the caller's front matter split skips it too)
    assert dotprompt_format.template_start("\ufeff" + text) == (at + 1, template)


def test_file_samples_are_input_default() -> None:
    front = {"input": {"schema": {"a": "string"}, "default": {"a": 1, "b": [2]}}}
    assert dotprompt_format.file_samples(front) == {"a": 1, "b": [2]}
    assert dotprompt_format.file_samples({"input": {"schema": {}}}) == {}
    assert dotprompt_format.file_samples({}) == {}


def test_backslashes_before_a_tag(tmp_path: Path) -> None:
    # `\\{{name}}` prints one backslash and the value: both are the tag's output (no mark
    # can sit between the backslashes and the tag without changing what the engine reads)
    text = "---\ninput:\n  default:\n    name: Ada\n---\nC:\\\\{{name}} or \\{{name}}"
    _, [(_, m)] = run(text, tmp_path)
    assert m.text == "C:\\Ada or {{name}}" == reference(text, tmp_path, {})[0][1]
    tag = text.index("{{name}}")
    assert m.spans[2:6] == [(tag, tag + len("{{name}}"))] * 4 and m.names[2] == "name"
    check_map(text, m)


def test_crlf_file_with_bom_maps_into_the_file(tmp_path: Path) -> None:
    from promptxray.explainers.prompt.formats import read_dotprompt

    source = "\ufeff" + GUIDE.replace("\n", "\r\n")
    write(tmp_path, {"_greeting.prompt": GREETING})
    path = tmp_path / "guide.prompt"
    path.write_bytes(source.encode("utf-8"))
    doc = read_dotprompt(source, str(path), "guide.prompt", {}, None)
    expected = reference(GUIDE, tmp_path, {})
    assert [(m.role, m.content) for m in doc.messages] == expected
    for message in doc.messages:
        for seg in message.segments:
            held = source[seg.start : seg.end]
            if seg.placeholder is None:
                assert held.replace("\r\n", "\n") == seg.text, seg
                assert seg.exact or held == "\r\n", seg  # a line break read as one
            else:
                assert tag_name(held) == seg.placeholder, (seg, held)
