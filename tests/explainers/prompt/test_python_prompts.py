"""Prompts in Python code: found without running the code, every char traced to its span.

The references are independent of the module: Python's own parser (`ast.literal_eval`,
`compile`) for what a literal means, and the sample file's prompt expressions evaluated here
(with stand-ins for LangChain) for what the model would be sent.
"""

from __future__ import annotations

import ast
import re
import textwrap
from itertools import pairwise
from types import SimpleNamespace
from typing import Any

import pytest

from promptxray.explainers.errors import DocumentError, MissingSampleError
from promptxray.explainers.prompt.document import Message
from promptxray.explainers.prompt.python_prompts import (
    CodeField,
    CodePrompt,
    find_prompts,
    prompt_at,
)

# A realistic app module. Raw string: every backslash below is in the code file itself.
APP = r'''"""Travel helper: a module docstring long enough to look like a prompt, but not one."""
import textwrap

from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

SYSTEM_PROMPT = """You are a helpful travel assistant.\n\tAnswer in "plain" English \\ no markdown.
Quote prices as \x24NN, say \u00e9t\u00e9 for summer, end with \U0001F600 \N{EM DASH} \101\7. \
This sentence continues the previous line.
Unknown escapes stay: \d.
"""

GREETING = "hi"
ERROR_TEXT = "Something went wrong while loading the configuration file."
prompt_bytes = b"You are a prompt in bytes, which is never a prompt."
PROMPT_PATH = "prompts/system_prompt_for_the_travel_agent.txt"


def ask(city, days, client):
    """Ask the model about a city (a docstring, not a prompt)."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Plan {days!r} days in {city:>10} {{please}}."},
    ]
    return client.chat.completions.create(model="gpt", messages=messages)


qa = ChatPromptTemplate.from_messages(
    [
        ("system", "You answer questions about {topic}. Keep {{braces}} as they are."),
        ("human", "{question}"),
        ("ai", "Sure:"),
    ]
)
summary_template = "Summarise the text below in {n} words:\n{text}"
plain = PromptTemplate.from_template(summary_template)
USER_TEMPLATE = ("Question: {q}\n"  # a comment with a "quote" between the literals
                 'Answer in {lang}, then stop.')
translate_prompt = "Translate {} into {}, keeping names as they are.".format(text, language)
count_prompt = "List {n} sights in {place}.".format(n=3, place=place)
instructions = textwrap.dedent("""
    Be brief.
      Indented twice.

    Done.
    """)
greeting_prompt = "Héllo — " + f"{name} ünïcödé {name!s}"
agent = Agent(name="guide", instructions=f"Help {user.name} plan {task}.")
reply = client.messages.create(
    system="You are terse and exact.",
    messages=[{"role": "user", "content": question}],
)
llm.invoke(r"Write a haiku about the sea, no \n escapes in raw strings.")
'''

SAMPLES: dict[str, Any] = {
    "city": "Lisbon",
    "days": 3,
    "topic": "trains",
    "question": "How fast is the TGV?",
    "n": 5,
    "text": "Long text.",
    "q": "Why?",
    "lang": "French",
    "language": "German",
    "place": "Porto",
    "name": "Ada",
    "user": {"name": "Grace"},
    "task": "a trip",
}

EXPECTED = [  # name, the text of the line its code lens goes on, variables
    ("SYSTEM_PROMPT", 'SYSTEM_PROMPT = """You are', []),
    ("messages (2 messages)", "    messages = [", ["days", "city"]),
    ("ChatPromptTemplate (3 messages)", "qa = ChatPromptTemplate", ["topic", "question"]),
    ("summary_template", "summary_template =", ["n", "text"]),
    ("PromptTemplate", "plain = ", ["n", "text"]),
    ("USER_TEMPLATE", "USER_TEMPLATE = ", []),
    ("translate_prompt", "translate_prompt = ", ["text", "language"]),
    ("count_prompt", "count_prompt = ", ["place"]),
    ("instructions", "instructions = ", []),
    ("greeting_prompt", "greeting_prompt = ", ["name"]),
    ("instructions", "agent = Agent", ["user.name", "task"]),
    ("messages (2 messages)", "reply = client", ["question"]),
    ("llm.invoke()", "llm.invoke(", []),
]


TEMPLATES = {"summary_template"}  # names APP passes to a template engine


class _Templated(list[tuple[str, str]]):
    """What the LangChain stand-ins return: (role, template) pairs to fill with str.format."""


class _ChatPromptTemplate:
    @staticmethod
    def from_messages(pairs: list[tuple[str, str]]) -> _Templated:
        roles = {"human": "user", "ai": "assistant"}
        return _Templated((roles.get(role, role), text) for role, text in pairs)


class _PromptTemplate:
    @staticmethod
    def from_template(text: str) -> _Templated:
        return _Templated([("user", text)])


class _Messages:
    @staticmethod
    def create(system: str, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"role": "system", "content": system}, *messages]


class _LLM:
    @staticmethod
    def invoke(text: str) -> str:
        return text


def reference(source: str, prompt: CodePrompt, samples: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, content) pairs from evaluating the prompt's own code with the samples."""
    tree = ast.parse(source)
    constants = {
        stmt.targets[0].id: stmt.value.value
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Constant)
    }
    namespace = {
        **constants,
        **samples,
        "user": SimpleNamespace(**samples["user"]),
        "textwrap": textwrap,
        "ChatPromptTemplate": _ChatPromptTemplate,
        "PromptTemplate": _PromptTemplate,
        "Agent": lambda name, instructions: instructions,
        "client": SimpleNamespace(messages=_Messages),
        "llm": _LLM,
    }
    code = source[prompt.start : prompt.end]
    value = eval(compile(f"(\n{code}\n)", "<sample>", "eval"), namespace)  # our sample only
    if isinstance(value, _Templated):
        return [(role, text.format(**samples)) for role, text in value]
    if prompt.name in TEMPLATES:  # the code uses it as a template elsewhere
        value = value.format(**samples)
    if isinstance(value, list):
        return [(d["role"], d["content"]) for d in value]
    assert isinstance(value, str)
    return [
        ("system" if "instructions" in prompt.name or "SYSTEM" in prompt.name else "user", value)
    ]


def decode_snippet(snippet: str) -> str:
    """What one non-exact segment's source chars mean, by Python's parser."""
    if snippet in ("{{", "}}"):
        return snippet[0]
    return ast.literal_eval(f'"""{snippet}"""')


def check_spans(source: str, messages: list[Message]) -> None:
    """Every model-visible char maps to source chars that produce it, in order."""
    for message in messages:
        last_end = -1
        for seg in message.segments:
            snippet = source[seg.start : seg.end]
            if seg.placeholder is not None:
                assert snippet.startswith("{") or snippet == seg.placeholder, (seg, snippet)
            elif seg.exact:
                assert seg.text == snippet, (seg, snippet)
            else:
                assert len(seg.text) == 1 and decode_snippet(snippet) == seg.text, (seg, snippet)
            assert seg.start >= last_end, (seg, "spans overlap or go back")
            last_end = seg.end
        assert len(message.char_spans()) == len(message.content)


@pytest.fixture(params=["\n", "\r\n"], ids=["lf", "crlf"])
def app(request: pytest.FixtureRequest) -> str:
    return APP.replace("\n", request.param)


def line_of(source: str, text: str) -> int:
    return source[: source.index(text)].count("\n") + 1


def test_finds_the_prompts_in_file_order(app: str) -> None:
    prompts = find_prompts(app)
    got = [(p.name, p.line, p.variables) for p in prompts]
    want = [(name, line_of(app, lens), variables) for name, lens, variables in EXPECTED]
    assert got == want
    assert [p.start for p in prompts] == sorted(p.start for p in prompts)


def test_messages_equal_what_the_code_sends(app: str) -> None:
    for prompt in find_prompts(app):
        messages = prompt.messages(SAMPLES)
        got = [(m.role, m.content) for m in messages]
        assert got == reference(app, prompt, SAMPLES), prompt.name
        check_spans(app, messages)


def test_crlf_file_gives_the_same_text_as_lf() -> None:
    lf, crlf = find_prompts(APP), find_prompts(APP.replace("\n", "\r\n"))
    assert [[m.content for m in p.messages(SAMPLES)] for p in lf] == [
        [m.content for m in p.messages(SAMPLES)] for p in crlf
    ]
    crlf_src = APP.replace("\n", "\r\n")
    system = crlf[0].messages({})[0]
    breaks = [s for s in system.segments if crlf_src[s.start : s.end] == "\r\n"]
    assert breaks and all(s.text == "\n" and not s.exact for s in breaks)


def test_literal_text_equals_the_parsers_value(app: str) -> None:
    system = find_prompts(app)[0]
    node = ast.parse(app).body[3]
    assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    assert system.messages({})[0].content == node.value.value
    end = re.search(r'"""\r?\n\r?\nGREETING', app)
    assert end and (system.start, system.end) == (app.index('"""You are'), end.start() + 3)


def test_escapes_map_to_their_source_chars() -> None:
    system = find_prompts(APP)[0]
    segs = system.messages({})[0].segments
    by_source = {APP[s.start : s.end]: s.text for s in segs if not s.exact}
    assert by_source == {
        "\\n": "\n",
        "\\t": "\t",
        "\\\\": "\\",
        "\\x24": "$",
        "\\u00e9": "é",
        "\\U0001F600": "😀",
        "\\N{EM DASH}": "—",
        "\\101": "A",
        "\\7": "\x07",
    }
    # the continuation backslash-newline yields nothing; an unknown escape keeps its backslash
    text = system.messages({})[0].content
    assert "\\\nThis" not in text and "line.\nThis" not in text and ". This sentence" in text
    assert "stay: \\d." in text


def test_fields_span_their_braces(app: str) -> None:
    prompts = {p.line: p for p in find_prompts(app)}
    chat = prompts[line_of(app, "    messages = [")]
    assert [(f.name, app[f.start : f.end]) for f in chat.fields] == [
        ("days", "{days!r}"),
        ("city", "{city:>10}"),
    ]
    days = chat.fields[0]
    assert (days.start, days.line) == (app.index("{days!r}"), line_of(app, "{days!r}"))
    braces = [s for s in chat.pieces[1].pieces if not isinstance(s, CodeField) and not s.exact]
    assert [(s.text, app[s.start : s.end]) for s in braces] == [("{", "{{"), ("}", "}}")]

    qa = prompts[line_of(app, "qa = ")]
    assert [(f.name, f.start) for f in qa.fields] == [
        ("topic", app.index("{topic}")),
        ("question", app.index('"{question}"') + 1),
    ]
    system = qa.messages(SAMPLES)[0]  # a template's `{{` is one char from two source chars
    braces = [s for s in system.segments if s.placeholder is None and not s.exact]
    assert [(s.text, app[s.start : s.end]) for s in braces] == [("{", "{{"), ("}", "}}")]
    literal = app.index('"You answer') + 1  # the literal's chars are all covered, in order
    assert system.segments[0].start == literal
    assert all(a.end == b.start for a, b in pairwise(system.segments))
    assert system.segments[-1].end == app.index('are."),') + len("are.")
    templ = prompts[line_of(app, "USER_TEMPLATE = ")]  # no .format here: braces stay text
    assert templ.fields == [] and "{q}" in templ.messages({})[0].content

    agent = prompts[line_of(app, "agent = ")]
    assert [app[f.start : f.end] for f in agent.fields] == ["{user.name}", "{task}"]
    reply = prompts[line_of(app, "reply = ")]
    question = reply.fields[0]
    assert (question.name, app[question.start : question.end]) == ("question", "question")


def test_implicit_concatenation_skips_what_lies_between(app: str) -> None:
    prompt = next(p for p in find_prompts(app) if p.name == "USER_TEMPLATE")
    (message,) = prompt.messages({})
    comment = app.index("# a comment")
    assert all(not s.start <= comment < s.end for s in message.segments)
    assert message.content == "Question: {q}\nAnswer in {lang}, then stop."


def test_format_literals_fill_fields_and_win_over_samples() -> None:
    prompt = next(p for p in find_prompts(APP) if p.name == "count_prompt")
    n, place = prompt.fields
    assert (n.name, n.value, APP[n.start : n.end]) == ("n", 3, "{n}")
    assert (place.name, APP[place.start : place.end]) == ("place", "{place}")
    assert prompt.messages({"place": "Braga", "n": 9})[0].content == "List 3 sights in Braga."
    with pytest.raises(MissingSampleError, match="place"):
        prompt.messages({})


def test_dedent_drops_the_margin_and_keeps_spans() -> None:
    prompt = next(p for p in find_prompts(APP) if p.name == "instructions")
    (message,) = prompt.messages({})
    node = next(
        n
        for n in ast.walk(ast.parse(APP))
        if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "dedent"
    )
    assert isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    assert message.content == textwrap.dedent(node.args[0].value)
    check_spans(APP, [message])


@pytest.mark.parametrize(
    "literal",
    [
        '"""\\n  \\tmixed\\n  \\t  deeper\\n  \\t\\n  \\tend"""',  # escapes make the margin
        '"First line flush\\n    indented\\n"',
        '"\\t\\ttabs\\n\\t    tab then spaces\\n   \\n\\t\\tback"',
        '"""\n        four\n          six\n  \t\n        four"""',
    ],
)
def test_dedent_matches_textwrap(literal: str) -> None:
    source = f"SYSTEM_PROMPT = textwrap.dedent({literal}).strip()\n"
    (prompt,) = find_prompts(source)
    (message,) = prompt.messages({})
    assert message.content == textwrap.dedent(ast.literal_eval(literal)).strip()
    check_spans(source, [message])


def test_missing_sample_says_where_to_give_one() -> None:
    chat = find_prompts(APP)[1]
    with pytest.raises(MissingSampleError) as err:
        chat.messages({"city": "Oslo"}, path="src/app.py")
    text = str(err.value)
    line = line_of(APP, "{days!r}")
    assert text.startswith(f"src/app.py:{line}:")
    assert "`days`" in text and "app.py.samples.yaml" in text
    assert "promptxray.samples" in text and "--sample days=VALUE" in text


def test_prompt_at_lines(app: str) -> None:
    prompts = find_prompts(app)
    chat = prompts[1]
    inside = line_of(app, '{"role": "user"')
    assert prompt_at(prompts, inside) is chat
    assert prompt_at(prompts, line_of(app, "GREETING")) is None
    assert prompt_at(prompts, line_of(app, "Unknown escapes")) is prompts[0]


def test_not_prompts() -> None:
    texts = [m.content for p in find_prompts(APP) for m in p.messages(SAMPLES)]
    for absent in ("Travel helper", "Ask the model", "hi", "Something went wrong", "in bytes"):
        assert not any(t == absent or t.startswith(absent) for t in texts), absent
    assert not any("prompts/system_prompt" in t for t in texts)
    short = find_prompts('x = "Short one."\nSYSTEM = "Be brief."\n')
    assert [(p.name, p.messages({})[0].content) for p in short] == [("SYSTEM", "Be brief.")]


def test_role_dict_alone_and_langchain_message_objects() -> None:
    source = (
        'history.append({"role": "assistant", "content": "Noted, I will keep it short."})\n'
        "chat = ChatPromptTemplate.from_messages([\n"
        '    SystemMessage(content="Plain {text} is not a template here."),\n'
        '    HumanMessagePromptTemplate.from_template("Tell me about {thing}"),\n'
        '    MessagesPlaceholder("history"),\n'
        '    ("placeholder", "{history}"),\n'
        "])\n"
    )
    alone, chat = find_prompts(source)
    assert (alone.name, alone.line, alone.pieces[0].role) == ("assistant message", 1, "assistant")
    assert chat.name == "ChatPromptTemplate (2 messages)" and chat.variables == ["thing"]
    messages = chat.messages({"thing": "owls"})
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Plain {text} is not a template here."),
        ("user", "Tell me about owls"),
    ]
    check_spans(source, messages)


def test_fstring_debug_conversion_and_nested_quotes() -> None:
    source = "system_prompt = f'''Value: {x = }, {y!a}, {d[\"k\"]}, {z:{w}}'''\n"
    (prompt,) = find_prompts(source)
    assert prompt.variables == ["x", "y", 'd["k"]', "z"]
    values = {"x": 1, "y": "é", 'd["k"]': "v", "z": 2}
    got = prompt.messages(values)[0].content
    assert got == eval(
        source.split("=", 1)[1], {"x": 1, "y": "é", "d": {"k": "v"}, "z": 2, "w": ""}
    )


def test_bom_keeps_offsets() -> None:
    source = '\ufeffSYSTEM_PROMPT = "You are kind."\n'
    (prompt,) = find_prompts(source)
    assert source[prompt.start : prompt.end] == '"You are kind."'
    check_spans(source, prompt.messages({}))


def test_syntax_error_reports_line_col_and_parser_message() -> None:
    source = 'SYSTEM_PROMPT = "fine"\n\ndef broken(:\n    pass\n'
    with pytest.raises(SyntaxError) as parsed:
        compile(source, "<x>", "exec")
    expected = parsed.value
    with pytest.raises(DocumentError) as err:
        find_prompts(source)
    assert str(err.value).startswith(f"{expected.lineno}:{expected.offset}:")
    assert expected.msg in str(err.value)


def test_constant_used_through_format_maps_to_its_definition() -> None:
    source = (
        'USER_TEMPLATE = "Q: {q}\\nAnswer in {lang}."\n'
        "def chat(question):\n"
        "    return client.chat(messages=[\n"
        '        {"role": "user", "content": USER_TEMPLATE.format(q=question, lang="en")},\n'
        "    ])\n"
    )
    template, messages = find_prompts(source)
    assert (template.name, template.variables) == ("USER_TEMPLATE", ["q", "lang"])
    assert (messages.name, messages.line, messages.variables) == ("messages (1 message)", 3, ["q"])
    q, lang = messages.fields
    assert (q.name, q.start, q.line) == ("q", source.index("{q}"), 1)
    assert (lang.value, source[lang.start : lang.end]) == ("en", "{lang}")
    (message,) = messages.messages({"q": "Why?", "lang": "fr"})  # the code's "en" wins
    assert message.content == "Q: Why?\nAnswer in en."
    check_spans(source, [message])
