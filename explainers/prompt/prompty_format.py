"""`.prompty` files rendered exactly as the Prompty runtime renders them: the body is a Jinja2
template run in Jinja's immutable sandbox (the runtime's own settings), and the runtime's chat
parser splits the output into messages at its role lines. Every character of the messages maps
back to the file (`source_map`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from promptxray.explainers.errors import (
    DocumentError,
    MissingSampleError,
    TemplateSyntaxError,
    UnsupportedTemplateError,
)
from promptxray.explainers.prompt.document import where
from promptxray.explainers.prompt.source_map import (
    Expression,
    MappedText,
    Span,
    render_mapped,
)

# The Prompty runtime's roles; `developer` is a system message to every chat template we run.
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
SAMPLE_HINT = (
    "add `inputs: {{{name}: {{sample: ...}}}}` (or `default:`) to the front matter, "
    "a `{name}:` entry to a `<file>.samples.yaml` sidecar, or the `promptxray.samples` setting"
)


def file_samples(front: Mapping[str, Any]) -> dict[str, Any]:
    """Sample values a .prompty file gives its inputs: `sample:` (Prompty 1), and per input
    (a mapping or a list of properties) `sample`, `example` or `default` (Prompty 2), or the
    Prompty 2 shorthand `inputs: {name: value}`."""
    found: dict[str, Any] = {}
    inputs = front.get("inputs")
    props: list[tuple[str, Any]] = []
    if isinstance(inputs, dict):
        props = list(inputs.items())
    elif isinstance(inputs, list):
        props = [(str(p.get("name")), p) for p in inputs if isinstance(p, dict) and "name" in p]
    for name, prop in props:
        if isinstance(prop, dict):
            for key in ("sample", "example", "default"):
                if key in prop:
                    found[name] = prop[key]
                    break
        elif prop is not None:
            found[name] = prop
    sample = front.get("sample")
    top = {str(k): v for k, v in sample.items()} if isinstance(sample, dict) else {}
    return {**top, **found}


def _environment() -> Any:
    """Jinja as the Prompty runtime sets it up (prompty/renderers/jinja2.py): the immutable
    sandbox, the trailing newline kept; undefined names raise (so the user learns which sample
    is missing instead of reading a prompt with a hole in it)."""
    from jinja2 import DictLoader
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        loader=DictLoader({}), keep_trailing_newline=True, undefined=_undefined_class()
    )


def _undefined_class() -> type:
    """Jinja's default `Undefined` (false in `{% if x %}`, as in the runtime) that refuses to
    be written out or looped over: that is where a missing sample would leave a hole."""
    from jinja2 import Undefined

    class MissingSample(Undefined):
        __slots__ = ()

        def __str__(self) -> str:
            self._fail_with_undefined_error()
            return ""

        def __iter__(self):  # type: ignore[no-untyped-def,unused-ignore]
            self._fail_with_undefined_error()
            return iter(())

    return MissingSample


def _tokens(env: Any, body: str) -> tuple[list[Span], list[Expression]]:
    """Literal runs and `{{ … }}` expressions of `body`, found with Jinja's own lexer."""
    literals: list[Span] = []
    expressions: list[Expression] = []
    cur = 0
    open_expr: tuple[int, int, bool] | None = None  # (tag start, inner start, strips before)
    for _, kind, value in env.lexer.tokeniter(body, "prompt"):
        if not body.startswith(value, cur):  # whitespace the lexer dropped (`{%-`)
            nxt = cur
            while nxt < len(body) and body[nxt].isspace():
                nxt += 1
            cur = nxt if body.startswith(value, nxt) else body.find(value, cur)
        start, cur = cur, cur + len(value)
        if kind == "data":
            literals.append((start, cur))
        elif kind == "variable_begin":
            open_expr = (start, cur, value.endswith(("-", "+")))
        elif kind == "variable_end" and open_expr is not None:
            begin, inner, strip_before = open_expr
            end = start + value.find("}}") + 2
            name = body[inner:start].strip()
            strip_after = value.startswith("-")
            expressions.append(Expression(begin, end, name, strip_before, strip_after))
            open_expr = None
    return literals, expressions


def render(
    text: str, body_start: int, samples: Mapping[str, Any], label: str
) -> tuple[MappedText, list[tuple[str, MappedText]]]:
    """Render the body of normalised file text `text` (starting at `body_start`); return the
    whole render and each message (role, mapped content) as the runtime's parser splits it.
    Spans are offsets into `text`."""
    import jinja2
    from jinja2.exceptions import SecurityError

    env = _environment()
    body = text[body_start:]
    try:
        env.parse(body)
        literals, expressions = _tokens(env, body)
    except jinja2.TemplateSyntaxError as e:
        at = _first_tag_on_line(text, (e.lineno or 1) + text.count("\n", 0, body_start))
        raise TemplateSyntaxError(
            f"{where(text, label, at)}: Jinja syntax error: {e.message}", at
        ) from None

    def run(source: str) -> str:
        try:
            return str(env.from_string(source).render(**samples))
        except jinja2.UndefinedError as e:
            name = _undefined_name(str(e.message))
            at = _first_use(text, body_start, name)
            raise MissingSampleError(
                f"{where(text, label, at)}: the template reads {name!r}, which has no sample "
                f"value; {SAMPLE_HINT.format(name=name)}",
                at,
            ) from None
        except jinja2.TemplateNotFound as e:
            raise UnsupportedTemplateError(
                f"{label}: the template includes {e.name!r}; the Prompty runtime renders a "
                "single template, so includes and imports are not supported",
                body_start,
            ) from None
        except SecurityError as e:
            raise UnsupportedTemplateError(
                f"{label}: refused by the template sandbox: {e}", body_start
            ) from None
        except jinja2.TemplateError as e:
            raise DocumentError(
                f"{label}: the template failed to render: {e}", body_start
            ) from None

    values = " ".join(str(v) for v in samples.values())
    whole = render_mapped(run, body, literals, expressions, values_text=values).shift(body_start)
    return whole, split_messages(whole)


def split_messages(whole: MappedText) -> list[tuple[str, MappedText]]:
    """The messages the Prompty runtime's chat parser makes of the rendered text, mapped."""
    from prompty.model import Agent
    from prompty.parsers.prompty import PromptyChatParser

    messages = PromptyChatParser().parse(Agent(), whole.text)
    out, cursor = [], 0
    for message in messages:
        content = "".join(getattr(part, "value", "") for part in message.parts)
        if not content:
            continue
        mapped, cursor = whole.locate(content, cursor)
        out.append((_ROLES.get(message.role, "user"), mapped))
    return out


def _undefined_name(message: str) -> str:
    m = re.match(r"'([^']+)' is undefined", message)
    if m:
        return m.group(1)
    m = re.search(r"has no attribute '([^']+)'", message)
    return m.group(1) if m else message


def _first_use(text: str, body_start: int, name: str) -> int:
    """Where `name` is first read in a tag of the body (the body start if not found)."""
    for m in re.finditer(r"\{[{%](.*?)[}%]\}", text[body_start:], re.S):
        if re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", m.group(1)):
            return body_start + m.start()
    return body_start


def _first_tag_on_line(text: str, line: int) -> int:
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl < 0:
            break
        start = nl + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    at = text.find("{", start, end)
    return at if at >= 0 else start
