"""Few-shot examples and sections in the forms people write them (one-line pairs, numbered
examples, example headings, XML tags), found in what the model reads whatever the file format
(a Python-like file, a template loop), the checks' part names that use them, and the units the
model's tokens make of them on a long, realistic system prompt."""

from __future__ import annotations

from dataclasses import replace

import pytest

from promptxray.explainers.checks.parts import InvalidPart, name_part
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import (
    Message,
    PromptDocument,
    Segment,
    parse_document,
)
from promptxray.explainers.prompt.structure import (
    available,
    find_sections,
    parts,
    variable_uses,
)
from promptxray.explainers.units import group_units


def layout(source: str, kind: str, path: str = "p.prompt") -> list[tuple[str, list[str]]]:
    """Each part's label and the exact file text of each of its ranges."""
    doc = parse_document(source, path)
    return [(p.label, [source[a:b] for a, b in p.ranges]) for p in parts(doc, kind)]


def texts(source: str, kind: str, path: str = "p.prompt") -> list[tuple[str, str]]:
    doc = parse_document(source, path)
    return [(p.label, p.text(source)) for p in parts(doc, kind)]


# --- one-line pairs -----------------------------------------------------------------------------


def test_a_classic_arrow_prompt_is_one_example_per_line_and_the_last_is_the_question():
    source = "Classify each animal.\n\ncat -> mammal\neagle -> bird\nsalmon -> fish\ndog ->\n"
    assert layout(source, "example") == [
        ("text", ["Classify each animal.\n\n"]),
        ("example 1", ["cat -> mammal\n"]),
        ("example 2", ["eagle -> bird\n"]),
        ("example 3", ["salmon -> fish\n"]),
        ("text", ["dog ->"]),
    ]
    assert "example" in available(parse_document(source, "p.prompt"))


@pytest.mark.parametrize(
    ("source", "examples", "question"),
    [
        ("cat => mammal\neagle => bird\ndog =>", ["cat => mammal", "eagle => bird"], "dog =>"),
        ("cat → mammal\neagle → bird\n", ["cat → mammal", "eagle → bird"], None),
        (
            "Classify.\ncat: mammal\neagle: bird\nsalmon: fish\ndog:",
            ["cat: mammal", "eagle: bird", "salmon: fish"],
            "dog:",
        ),
        (
            "English: sea otter => French: loutre de mer\n"
            "English: cheese => French: fromage\n"
            "English: peppermint => French:",
            ["English: sea otter => French: loutre de mer", "English: cheese => French: fromage"],
            "English: peppermint => French:",
        ),
        (  # numbered one-line examples
            "Sort them.\n1. cat -> mammal\n2. eagle -> bird\n3. dog ->",
            ["1. cat -> mammal", "2. eagle -> bird"],
            "3. dog ->",
        ),
    ],
)
def test_one_line_pairs_of_every_shape(source, examples, question):
    found = texts(source, "example")
    assert [t for label, t in found if label.startswith("example")] == examples
    assert [label for label, _ in found if label.startswith("example")] == [
        f"example {i + 1}" for i in range(len(examples))
    ]
    rest = [t for label, t in found if label == "text"]
    assert (rest[-1] if rest and source.rstrip().endswith(rest[-1]) else None) == question


@pytest.mark.parametrize(
    "source",
    [
        "Name: Alice\nAge: 30\nCity: Paris\n",  # fields of a record, not examples
        "Notes:\nName: Bob\nAge: 4\nCity:\n- likes cats\n",  # `City:` introduces a list
        "Profile:\nName: Bob\nName: Ann\nCity:\n",  # the same left side twice: fields
        "Use this format:\n```\nconst f = x => x + 1\nconst g = y => y * 2\n```\n",  # code
        "Do this first -> then that.\n",  # one line is no run
    ],
)
def test_lines_that_only_look_like_pairs_are_not_examples(source):
    doc = parse_document(source, "p.prompt.md")
    assert "example" not in available(doc)
    with pytest.raises(InvalidRequestError) as info:
        parts(doc, "example")
    message = str(info.value)
    # the error lists the forms examples are found in
    for form in ("`Input:`/`Output:`", "`cat -> mammal`", "`cat: mammal`", "`### Example 2`"):
        assert form in message
    assert "`<example>`" in message and "no few-shot examples" in message


# --- numbered examples, headings, lists ---------------------------------------------------------


def test_example_headings_take_their_text_and_the_last_stops_where_the_first_did():
    source = (
        "Reply to customers.\n\n"
        "### Example 1\n\nThe user asks for a refund.\nWe send the policy link.\n\n"
        "### Example 2\n\nThe user asks about shipping.\nWe give the tracking page.\n\n"
        "Now reply: where is my parcel?\n"
    )
    assert layout(source, "example", "p.prompt.md") == [
        ("text", ["Reply to customers.\n\n"]),
        (
            "example 1",
            ["### Example 1\n\nThe user asks for a refund.\nWe send the policy link.\n\n"],
        ),
        (
            "example 2",
            ["### Example 2\n\nThe user asks about shipping.\nWe give the tracking page.\n\n"],
        ),
        ("text", ["Now reply: where is my parcel?"]),
    ]


def test_example_label_lines_and_their_question():
    source = (
        "Example 1: I loved it.\nLabel: positive\n"
        "Example 2: Boring film.\nLabel: negative\n"
        "Example 3: Great!\nLabel:"
    )
    assert texts(source, "example") == [
        ("example 1", "Example 1: I loved it.\nLabel: positive"),
        ("example 2", "Example 2: Boring film.\nLabel: negative"),
        ("text", "Example 3: Great!\nLabel:"),
    ]
    bold = "**Example 1**\nQ: 2+2?\nA: 4\n\n**Example 2**\nQ: 3+3?\nA: 6\n\nQ: 5+5?\nA:"
    assert texts(bold, "example") == [
        ("example 1", "**Example 1**\nQ: 2+2?\nA: 4"),
        ("example 2", "**Example 2**\nQ: 3+3?\nA: 6"),
        ("text", "Q: 5+5?\nA:"),
    ]


def test_the_items_of_a_list_of_examples():
    listed = (
        "Here are some examples of good answers:\n"
        "1. The capital of France is Paris.\n"
        "2. Water boils at 100 °C at sea level.\n"
        "\nQuestion: what is the capital of Spain?\n"
    )
    assert layout(listed, "example") == [
        ("text", ["Here are some examples of good answers:\n"]),
        ("example 1", ["1. The capital of France is Paris.\n"]),
        ("example 2", ["2. Water boils at 100 °C at sea level.\n\n"]),
        ("text", ["Question: what is the capital of Spain?"]),
    ]
    rules = "Rules:\n1. Be brief.\n2. Be kind.\n\nQuestion: why?\n"  # a list, but not examples
    assert "example" not in available(parse_document(rules, "p.prompt"))
    blocks = (
        "## Examples\n\nThe user wants a refund; we link the policy.\n\n"
        "The user is angry; we apologise first.\n\n## Task\n\nReply below.\n"
    )
    assert texts(blocks, "example", "p.prompt.md") == [
        ("text", "## Examples"),
        ("example 1", "The user wants a refund; we link the policy."),
        ("example 2", "The user is angry; we apologise first."),
        ("text", "## Task\n\nReply below."),
    ]


def test_labelled_blocks_keep_working_with_list_markers_and_across_turns():
    numbered = "1. Input: great film\n   Output: positive\n2. Input: dull\n   Output: negative\n"
    assert texts(numbered, "example") == [
        ("example 1", "1. Input: great film\n   Output: positive"),
        ("example 2", "2. Input: dull\n   Output: negative"),
    ]
    chat = (
        "system:\nName the capital.\n\nuser:\nQ: France?\n\nassistant:\nA: Paris\n\n"
        "user:\nQ: Spain?\n\nassistant:\nA: Madrid\n\nuser:\nQ: Italy?\n"
    )
    # a user turn `Q:` and the assistant turn `A:` after it are one example (two ranges)
    assert layout(chat, "example", "p.prompty") == [
        ("text", ["Name the capital."]),
        ("example 1", ["Q: France?", "A: Paris"]),
        ("example 2", ["Q: Spain?", "A: Madrid"]),
        ("text", ["Q: Italy?"]),
    ]


# --- XML tags -----------------------------------------------------------------------------------

XML = (
    "You are a careful assistant.\n\n"
    "<instructions>\nAnswer from the documents only.\n</instructions>\n\n"
    '<document index="1">\nThe Nile is 6,650 km long.\n</document>\n'
    '<document index="2">\nThe Amazon carries the most water.\n\n## Note\nIt is 6,400 km long.\n'
    "</document>\n\n"
    "<examples>\n"
    "<example>\nQ: Which river is longest?\nA: The Nile.\n</example>\n"
    "<example>\nQ: Which river carries most water?\nA: The Amazon.\n</example>\n"
    "</examples>\n\n"
    "Use <b>one</b> sentence.\n\n"
    "Q: How long is the Amazon?\nA:"
)


def test_top_level_xml_elements_are_sections_with_their_tag_as_label():
    assert layout(XML, "section") == [
        ("section 1", ["You are a careful assistant.\n\n"]),
        (
            "section <instructions>",
            ["<instructions>\nAnswer from the documents only.\n</instructions>\n\n"],
        ),
        (
            'section <document index="1">',
            ['<document index="1">\nThe Nile is 6,650 km long.\n</document>\n'],
        ),
        (
            'section <document index="2">',
            [
                '<document index="2">\nThe Amazon carries the most water.\n\n## Note\n'
                "It is 6,400 km long.\n</document>\n\n"
            ],
        ),
        (
            "section <examples>",
            [XML[XML.index("<examples>") : XML.index("</examples>") + len("</examples>\n\n")]],
        ),
        # an inline tag is markup in a sentence, not a section
        ("section 6", ["Use <b>one</b> sentence.\n\n"]),
        ("section 7", ["Q: How long is the Amazon?\nA:"]),
    ]


def test_xml_examples_win_over_the_labels_inside_them():
    assert texts(XML, "example") == [
        ("text", "You are a careful assistant."),
        ("text", "<instructions>\nAnswer from the documents only.\n</instructions>"),
        ("text", '<document index="1">\nThe Nile is 6,650 km long.\n</document>'),
        (
            "text",
            '<document index="2">\nThe Amazon carries the most water.\n\n## Note\n'
            "It is 6,400 km long.\n</document>",
        ),
        ("text", "<examples>"),
        ("example 1", "<example>\nQ: Which river is longest?\nA: The Nile.\n</example>"),
        ("example 2", "<example>\nQ: Which river carries most water?\nA: The Amazon.\n</example>"),
        ("text", "</examples>"),
        ("text", "Use <b>one</b> sentence."),
        ("text", "Q: How long is the Amazon?\nA:"),
    ]


def test_headings_outside_elements_cut_sections_and_tags_in_code_are_code():
    source = (
        "# Role\nYou help.\n\n<context>\n# Inside\nThe shop opens at 9.\n</context>\n\n"
        "## Format\n```\n<answer>\n42\n</answer>\n```\n"
    )
    assert texts(source, "section", "p.prompt.md") == [
        ('section "Role"', "# Role\nYou help."),
        ("section <context>", "<context>\n# Inside\nThe shop opens at 9.\n</context>"),
        ('section "Format"', "## Format\n```\n<answer>\n42\n</answer>\n```"),
    ]


def test_find_sections_by_tag_heading_or_written_tag():
    doc = parse_document(XML, "p.prompt")

    def found(name: str) -> list[list[str]]:
        return [[XML[a:b] for a, b in ranges] for ranges in find_sections(doc, name)]

    instructions = "<instructions>\nAnswer from the documents only.\n</instructions>"
    assert found("instructions") == found("<instructions>") == [[instructions]]
    assert len(found("document")) == 2
    assert found('<document  index="1">') == [
        ['<document index="1">\nThe Nile is 6,650 km long.\n</document>']
    ]
    # a heading inside an element: its section ends where the element does
    assert found("## Note") == found("Note") == [["## Note\nIt is 6,400 km long.\n"]]
    assert len(found("example")) == 2  # at any depth
    assert found("nothing") == []


# --- what the model reads, whatever the format ------------------------------------------------


def _document(source: str, messages: list[Message]) -> PromptDocument:
    """A document of `source` whose messages a format's renderer produced (built by hand)."""
    base = parse_document(source, "p.prompt")
    return replace(base, messages=messages, has_roles=len(messages) > 1)


def _literal(source: str, text: str, after: int = 0) -> Segment:
    start = source.index(text, after)
    return Segment(text, start, start + len(text))


def _escape(source: str, after: int) -> Segment:
    """A `\\n` escape of a string literal: one character read, two in the file."""
    start = source.index("\\n", after)
    return Segment("\n", start, start + 2, exact=False)


PYTHON = (
    'SYSTEM = "## Task\\nName the class."\n'
    "EXAMPLES = (\n"
    '    "cat -> mammal\\n"\n'
    "    # birds\n"
    '    "eagle -> bird\\n"\n'
    '    "dog ->"\n'
    ")\n"
)


def _python_doc() -> PromptDocument:
    src = PYTHON
    system = [_literal(src, "## Task"), _escape(src, 0), _literal(src, "Name the class.")]
    cat = src.index("cat")
    user = [
        _literal(src, "cat -> mammal"),
        _escape(src, cat),
        _literal(src, "eagle -> bird"),
        _escape(src, src.index("eagle")),
        _literal(src, "dog ->"),
    ]
    return _document(src, [Message("system", system), Message("user", user)])


def test_parts_come_from_the_text_the_model_reads_not_the_files_syntax():
    doc, src = _python_doc(), PYTHON
    # `# birds` is a Python comment: in the file, never in a message, so never a heading
    assert [(p.label, [src[a:b] for a, b in p.ranges]) for p in parts(doc, "section")] == [
        ('section "Task"', ["## Task\\nName the class."]),
        ("section 2", ['cat -> mammal\\n"\n    # birds\n    "eagle -> bird\\n"\n    "dog ->']),
    ]
    # the code between two string literals goes to the part whose text follows it
    assert [(p.label, [src[a:b] for a, b in p.ranges]) for p in parts(doc, "example")] == [
        ("text", ["## Task\\nName the class."]),
        ("example 1", ["cat -> mammal\\n"]),
        ("example 2", ['"\n    # birds\n    "eagle -> bird\\n']),
        ("text", ['"\n    "dog ->']),
    ]


LOOP = (
    "{% for ex in examples %}\n"
    "Input: {{ ex.q }}\n"
    "Output: {{ ex.a }}\n"
    "{% endfor %}\n"
    "Input: {{ question }}\n"
    "Output:"
)


def _loop_doc() -> PromptDocument:
    src = LOOP
    body = src.index("Input: {{ ex.q }}")
    q, a = src.index("{{ ex.q }}"), src.index("{{ ex.a }}")
    segs: list[Segment] = []
    for question, answer in (("2+2", "4"), ("3+3", "6")):
        segs += [
            Segment("Input: ", body, body + 7),
            Segment(question, q, q + len("{{ ex.q }}"), placeholder="ex.q", exact=False),
            Segment("\nOutput: ", q + len("{{ ex.q }}"), a),
            Segment(answer, a, a + len("{{ ex.a }}"), placeholder="ex.a", exact=False),
            Segment("\n", a + len("{{ ex.a }}"), a + len("{{ ex.a }}") + 1),
        ]
    last = src.index("Input: {{ question }}")
    mark = src.index("{{ question }}")
    segs += [
        Segment("Input: ", last, last + 7),
        Segment("5+5", mark, mark + len("{{ question }}"), placeholder="question", exact=False),
        Segment("\nOutput:", mark + len("{{ question }}"), len(src)),
    ]
    return _document(src, [Message("user", segs)])


def test_a_loop_body_is_one_example_however_often_it_runs():
    doc, src = _loop_doc(), LOOP
    assert (
        doc.messages[0].content
        == "Input: 2+2\nOutput: 4\nInput: 3+3\nOutput: 6\nInput: 5+5\nOutput:"
    )
    found = [(p.label, [src[a:b] for a, b in p.ranges]) for p in parts(doc, "example")]
    assert found == [
        ("example 1", ["Input: {{ ex.q }}\nOutput: {{ ex.a }}\n"]),
        ("text", ["{% endfor %}\nInput: {{ question }}\nOutput:"]),
    ]
    assert variable_uses(doc) == {
        "ex.q": [(src.index("{{ ex.q }}"), src.index("{{ ex.q }}") + 10)],
        "ex.a": [(src.index("{{ ex.a }}"), src.index("{{ ex.a }}") + 10)],
        "question": [(src.index("{{ question }}"), src.index("{{ question }}") + 14)],
    }


def test_the_tokens_of_every_run_of_a_loop_join_the_same_unit(stories):
    doc = _loop_doc()
    tokens = build_input(doc, stories, chat=False).tokens
    units = group_units(doc.source, tokens, "example", doc=doc)
    body_end = LOOP.index("{% endfor %}")
    in_body = sorted(t.index for t in tokens if t.start < body_end)
    # both runs of the loop body are read by the model, and all their tokens are one unit
    assert len({t.start for t in tokens if t.start < body_end}) < len(in_body)
    assert in_body in units


# --- the checks' part names ----------------------------------------------------------------------


def test_check_parts_name_xml_sections_and_headings():
    doc = parse_document(XML, "p.prompt.md")
    part = name_part(doc, {"section": "instructions"})
    instructions = "<instructions>\nAnswer from the documents only.\n</instructions>"
    assert [XML[a:b] for a, b in part.ranges] == [instructions]
    assert part.label == "section 'instructions'"
    part = name_part(doc, {"section": '<document index="2">'})
    assert XML[part.ranges[0][0] :].startswith('<document index="2">')
    with pytest.raises(InvalidPart, match=r"section 'document' names 2 sections .*lines 7, 10"):
        name_part(doc, {"section": "document"})
    with pytest.raises(InvalidPart) as info:
        name_part(doc, {"section": "Nope"})
    assert str(info.value) == "no Markdown heading 'Nope' and no XML element <Nope> in the prompt"
    with pytest.raises(InvalidPart, match=r'^no XML element <document index="3"> in the prompt$'):
        name_part(doc, {"section": '<document index="3">'})
    # the same heading rule as the section parts: `## Note` ends with its element
    note = name_part(doc, "## Note")
    assert [XML[a:b] for a, b in note.ranges] == ["## Note\nIt is 6,400 km long.\n"]


def test_check_variables_are_the_segments_the_format_filled_in():
    source = "Write about ${input:topic} for ${input:reader}.\nKeep ${input:topic} short."
    doc = parse_document(source, "p.prompt")
    segs: list[Segment] = []
    pos = 0
    for name, value in (("topic", "rivers"), ("reader", "children"), ("topic", "rivers")):
        marker = "${input:" + name + "}"
        at = source.index(marker, pos)
        filled = Segment(value, at, at + len(marker), placeholder=name, exact=False)
        segs += [Segment(source[pos:at], pos, at), filled]
        pos = at + len(marker)
    segs.append(Segment(source[pos:], pos, len(source)))
    doc = replace(doc, messages=[Message("user", segs)])
    topic = name_part(doc, {"variable": "topic"})
    assert [source[a:b] for a, b in topic.ranges] == ["${input:topic}", "${input:topic}"]
    assert topic.label == "{{topic}}"
    reader = source.index("${input:reader}")
    assert name_part(doc, "{{reader}}").ranges == ((reader, reader + len("${input:reader}")),)
    with pytest.raises(InvalidPart) as info:
        name_part(doc, {"variable": "tone"})
    assert str(info.value) == "no {{tone}} in the prompt (its variables are {{topic}}, {{reader}})"


def test_a_placeholder_the_format_does_not_fill_is_no_variable():
    source = "---\ntitle: t\n---\nHello {{name}}, welcome.\n"
    doc = parse_document(source, "p.prompt.md")  # Markdown fills nothing in
    with pytest.raises(InvalidPart) as info:
        name_part(doc, "{{name}}")
    assert str(info.value) == (
        "no {{name}} in the prompt (it has no variables its format fills in; "
        "the model reads {{name}} as written)"
    )
    # a string that only starts and ends with braces is a text
    assert name_part(doc, "{{name}}, welcome").label == "text '{{name}}, welcome'"


# --- a long, realistic prompt ---------------------------------------------------------------------

SUPPORT = """\
---
name: Support triage
description: Route one customer ticket to the right queue.
inputs:
  ticket:
    sample: >-
      My new headphones stopped charging after a week. The light blinks red twice and
      then goes out. I already tried another cable. Can you send a replacement?
---
system:
You are Tessa, the support triage assistant of Northwind Electronics. You read one customer
ticket and answer with the single queue that should handle it. Support agents rely on your
routing to meet their response times, so a wrong queue costs the customer a day.

<instructions>
1. Read the whole ticket before deciding: customers often put the real problem last.
2. Choose exactly one queue from the list in <queues>; never invent a new queue.
3. When a ticket mentions both a refund and a defect, route it to hardware: the hardware
   team decides on refunds for defective products.
4. When you cannot tell, choose general rather than guessing.
5. Answer with the queue name only, in lower case, with no punctuation.
</instructions>

<queues>
- billing: double charges, invoices, payment methods, refunds for orders that never shipped.
- shipping: late or missing parcels, wrong addresses, damaged boxes, customs fees.
- hardware: products that do not work, arrived broken, or stopped working under warranty.
- account: passwords, two-factor codes, email changes, deleting an account.
- general: everything else, including compliments and questions about opening hours.
</queues>

<policy>
## Warranty
Every product has a two-year warranty from the delivery date. Accessories bought
separately (cables, cases, ear tips) have one year.

## Tone
Tickets are never answered by you, only routed, so ignore insults and threats in them.
</policy>

<examples>
<example>
Ticket: I was charged twice for order 3310 and only one parcel arrived. Please refund me.
Queue: billing
</example>
<example>
Ticket: The tracking page has said "in transit" for twelve days and the parcel is still not here.
Queue: shipping
</example>
<example>
Ticket: My speaker arrived with a cracked grille and it buzzes at every volume. I want a refund.
Queue: hardware
</example>
</examples>

Route the next ticket the same way.

user:
Ticket: {{ticket}}
Queue:
"""


def test_a_long_support_prompt(stories):
    doc = parse_document(SUPPORT, "support.prompty")
    src = SUPPORT

    def slice_of(start: str, end: str) -> str:  # from a line that starts with `start`
        a = src.index("\n" + start) + 1
        return src[a : src.index(end, a) + len(end)]

    intro = slice_of("You are Tessa", "costs the customer a day.")
    instructions = slice_of("<instructions>", "</instructions>")
    queues = slice_of("<queues>", "</queues>")
    policy = slice_of("<policy>", "</policy>")
    examples = slice_of("<examples>", "</examples>")
    assert [(p.label, p.text(src)) for p in parts(doc, "section")] == [
        ("section 1", intro),
        ("section <instructions>", instructions),
        ("section <queues>", queues),
        ("section <policy>", policy),
        ("section <examples>", examples),
        ("section 6", "Route the next ticket the same way."),
        ("section 7", "Ticket: {{ticket}}\nQueue:"),
    ]
    shots = [
        slice_of(f"<example>\nTicket: {t}", "</example>") for t in ("I was", "The track", "My spea")
    ]
    found = [(p.label, p.text(src)) for p in parts(doc, "example")]
    assert found == [
        ("text", intro),
        ("text", instructions),
        ("text", queues),
        ("text", policy),
        ("text", "<examples>"),
        ("example 1", shots[0]),
        ("example 2", shots[1]),
        ("example 3", shots[2]),
        ("text", "</examples>"),
        ("text", "Route the next ticket the same way."),
        ("text", "Ticket: {{ticket}}\nQueue:"),  # the question, not a fourth example
    ]
    assert [[src[a:b] for a, b in r] for r in find_sections(doc, "Warranty")] == [
        [slice_of("## Warranty", "have one year.\n\n")]
    ]
    assert [p.label for p in parts(doc, "message")] == ["message 1 (system)", "message 2 (user)"]

    tokens = build_input(doc, stories, chat=False).tokens
    assert len(tokens) >= 500
    for kind in ("section", "example"):
        units = group_units(src, tokens, kind, doc=doc)
        # one unit per part, in order, holding exactly the tokens inside the part's text
        shown = [
            src[min(tokens[i].start for i in u) : max(tokens[i].end for i in u)] for u in units
        ]
        assert [s.strip() for s in shown] == [p.text(src) for p in parts(doc, kind)]
        assert sorted(i for u in units for i in u) == [t.index for t in tokens]
