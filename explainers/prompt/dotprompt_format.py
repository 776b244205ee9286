"""Dotprompt `.prompt` files rendered exactly as `dotpromptz` renders them: the template is
what dotpromptz's own parser takes for the body, Handlebars is the engine dotpromptz ships
(`dotpromptz_handlebars`) with `Dotprompt`'s own helper set, the defaults are the front
matter's `input.default` overlaid by the caller's samples, and dotpromptz's own `to_messages`
splits the output at its `{{role}}` markers. Every character of the messages maps back to
the file (`source_map`).

What differs from a plain render never changes the text of a prompt that renders:
- a path that resolves to nothing (a variable without a sample) is an error where the value
  would be written out, looped over or passed to a helper such as `{{json}}`, instead of
  the empty string dotpromptz prints: the user learns which sample is missing rather than
  explain a prompt with a hole in it. In a condition (`{{#if}}`, `{{#unless}}`,
  `{{else if}}`, `{{#ifEquals}}`, `{{#unlessEquals}}`) it is false, as in the runtime;
- `{{media}}`, `{{history}}`, `tool` messages and partial blocks are refused: no model input
  to explain;
- partials come only from the prompt's own folder, as `_name.prompt` files (Dotprompt's
  convention; the file's whole text, as its directory store reads it), and a missing one is
  an error even in a branch that does not render;
- the `log` helper prints nothing (the language server talks over stdout).

Tags are found by a scanner that follows the engine's own tokenizer (`_render._tokens`,
which has no positions); the markers of `source_map` go around literal runs and simple
`{{…}}` tags, and, for `{{> name}}`, into the engine's own partial program, since a mark on
the line of a standalone tag would change the engine's whitespace handling.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from promptxray.explainers.errors import (
    DocumentError,
    FrontMatterError,
    MissingSampleError,
    TemplateSyntaxError,
    UnsupportedTemplateError,
)
from promptxray.explainers.prompt.document import where
from promptxray.explainers.prompt.source_map import (
    _ID_BASE,
    _OPEN_EXPRESSION,
    Expression,
    MappedText,
    Marked,
    Span,
    render_mapped,
)

# Dotprompt's roles as chat roles; `tool` (a tool's answer, which needs a tool call before
# it) is refused in `_split_messages`.
_ROLES = {"system": "system", "user": "user", "model": "assistant"}
# Helpers whose output is Dotprompt structure, not text: marked so that the whole render maps,
# but not named as expressions.
_STRUCTURE_HELPERS = ("role", "section")
# Helpers that stand for input that is not text the model reads here.
_REFUSED_HELPERS = {
    "media": "an image or other media part",
    "history": "the conversation history a caller passes in",
}
# Partial names read from the prompt's folder: Dotprompt's own pattern, less `/`.
_PARTIAL_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")
SAMPLE_HINT = (
    "add `{name}: ...` under `input.default` in the front matter, a `{name}:` entry to a "
    "`<file>.samples.yaml` sidecar, or the `promptxray.samples` setting (`null` for an "
    "input the prompt may leave out)"
)


def file_samples(front: Mapping[str, Any]) -> dict[str, Any]:
    """Sample values a .prompt file gives its inputs: `input.default`."""
    inputs = front.get("input")
    if isinstance(inputs, Mapping):
        default = inputs.get("default")
        if isinstance(default, Mapping):
            return {str(k): v for k, v in default.items()}
    return {}


def template_start(text: str, label: str = "<prompt>") -> tuple[int, str]:
    """Where the template starts in `text` and the template itself, as dotpromptz's parser
    splits them: the body after the front matter, stripped (the whole text when there is
    no front matter). A byte order mark is not text: a file read as `utf-8-sig` has none."""
    from dotpromptz._errors import FrontmatterError
    from dotpromptz._parse import identify_frontmatter

    skip = 1 if text.startswith("\ufeff") else 0
    try:
        found = identify_frontmatter(text[skip:])
    except FrontmatterError as e:
        raise FrontMatterError(f"{label}: {e}", skip) from None
    if not found.declared:
        return skip, text[skip:]
    body_at = len(text) - len(found.body)
    template = found.body.strip()
    return body_at + (len(found.body) - len(found.body.lstrip())), template


# ---------------------------------------------------------------------------------------
# Tag boundaries, found as dotpromptz_handlebars' tokenizer (`_render._tokens`) finds them.


@dataclass
class _Tag:
    """A `{{…}}` tag: its span, and its body as the engine reads it (no braces, no `~`,
    no surrounding spaces)."""

    start: int
    end: int
    body: str
    triple: bool = False
    strip_before: bool = False
    strip_after: bool = False
    raw_block: bool = False
    lead: int = 0  # backslashes before it: the engine prints `lead - 1` of them, then the tag


@dataclass
class _Scan:
    literals: list[Span] = field(default_factory=list)
    tags: list[_Tag] = field(default_factory=list)

    def text(self, start: int, end: int) -> None:
        if start >= end:
            return
        if self.literals and self.literals[-1][1] == start:
            self.literals[-1] = (self.literals[-1][0], end)
        else:
            self.literals.append((start, end))


class _ScanError(ValueError):
    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.at = at


def _scan(source: str) -> _Scan:
    """Literal runs and tags of a template, with their positions: the same boundaries as the
    engine's tokenizer (`\\{{` escapes, `{{{{raw}}}}` blocks, `{{!-- --}}` comments, triple
    braces, `~`; a tag ends at the first `}}`, strings included, as the engine reads it)."""
    from dotpromptz_handlebars._render import _long_comment_end

    out = _Scan()
    i, n = 0, len(source)
    while i < n:
        start = source.find("{{", i)
        if start < 0:
            out.text(i, n)
            break
        slashes, j = 0, start - 1
        while j >= i and source[j] == "\\":
            slashes += 1
            j -= 1
        if slashes == 1:  # `\{{` is the two characters `{{`
            out.text(i, start + 2)
            i = start + 2
            continue
        lead = slashes if slashes >= 2 else 0
        out.text(i, start - lead)
        if source.startswith("{{{{", start):
            if source.startswith("{{{{/", start):
                raise _ScanError("unexpected closing tag", start)
            open_end = source.find("}}}}", start + 4)
            if open_end < 0:
                raise _ScanError("unclosed tag", start)
            header = source[start + 4 : open_end].strip()
            if not header:
                raise _ScanError("empty tag", start)
            raw_name = header.split()[0]
            close_tag = "{{{{/" + raw_name + "}}}}"
            content = open_end + 4
            close_pos = source.find(close_tag, content)
            if close_pos < 0:
                raise _ScanError(f"unclosed raw block {raw_name}", start)
            out.tags.append(_Tag(start, content, f"#{header}", raw_block=True, lead=lead))
            out.text(content, close_pos)
            end = close_pos + len(close_tag)
            out.tags.append(_Tag(close_pos, end, f"/{raw_name}", raw_block=True))
            i = end
            continue
        try:
            long_end = _long_comment_end(source, start)
        except ValueError as e:
            raise _ScanError(str(e), start) from None
        if long_end is not None:
            end, closer = long_end
            out.tags.append(_tag(source[start + closer : end], start, end + closer, lead))
            i = end + closer
            continue
        if source.startswith(("{{~{", "{{{"), start):
            body_start = start + (4 if source.startswith("{{~{", start) else 3)
            p1, p2 = source.find("}}}", body_start), source.find("}~}}", body_start)
            if p1 < 0 and p2 < 0:
                raise _ScanError("unclosed tag", start)
            strip_after = p2 >= 0 and (p1 < 0 or p2 < p1)
            end = p2 if strip_after else p1
            closer = 4 if strip_after else 3
            body = source[body_start:end].strip()
            strip_before = body_start == start + 4
            out.tags.append(
                _Tag(start, end + closer, body, True, strip_before, strip_after, lead=lead)
            )
            i = end + closer
            continue
        end = source.find("}}", start + 2)
        if end < 0:
            raise _ScanError("unclosed tag", start)
        out.tags.append(_tag(source[start + 2 : end], start, end + 2, lead))
        i = end + 2
    return out


def _tag(inner: str, start: int, end: int, lead: int) -> _Tag:
    strip_before, strip_after = inner.startswith("~"), inner.endswith("~")
    inner = inner[1:] if strip_before else inner
    inner = inner[:-1] if strip_after else inner
    return _Tag(start, end, inner.strip(), False, strip_before, strip_after, lead=lead)


def _kind(tag: _Tag) -> str:
    """comment, block (`#`, `/`, `^`, `else`, raw blocks, decorators), partial, partial-block,
    or mustache (a simple `{{…}}`, `{{{…}}}` or `{{&…}}`)."""
    body = tag.body
    if tag.raw_block:
        return "block"
    if body.startswith("!"):
        return "comment"
    if body.startswith("#>"):
        return "partial-block"
    if body.startswith(("#", "/", "^", "*")) or body == "else" or body.startswith("else "):
        return "block"
    if body.startswith(">"):
        return "partial"
    return "mustache"


def _mustache_source(tag: _Tag) -> str:
    return tag.body[1:].strip() if tag.body.startswith("&") else tag.body


def _call(src: str) -> dict[str, Any]:
    from dotpromptz_handlebars._render import _call as engine_call

    return cast(dict[str, Any], engine_call(src))


def _partial_call(tag: _Tag) -> dict[str, Any]:
    return _call(tag.body[1:].strip())


def _inline_names(tags: list[_Tag]) -> set[str]:
    names = set()
    for tag in tags:
        if tag.body.startswith("#*inline"):
            bits = tag.body.split(None, 2)
            if len(bits) > 1:
                names.add(bits[1].strip("\"'"))
    return names


def _file_partial(tag: _Tag, inline: set[str]) -> str | None:
    """The name of the file partial a `{{> name}}` tag includes (None for a dynamic name,
    `@partial-block`, or an inline partial of the template)."""
    call = _partial_call(tag)
    name = str(call["name"])
    if name.startswith("(") or name.startswith("@") or name in inline:
        return None
    return name


# ---------------------------------------------------------------------------------------
# Errors with their place in the file.


def _parse_error_tag(source: str) -> tuple[int, str | None]:
    """Where in `source` the engine's parser stops (its tokenizer's place, else the first tag
    that breaks the block structure or does not parse, else an unclosed block's opening
    tag), and the tokenizer's message if it was the tokenizer; 0 if not found."""
    try:
        tags = _scan(source).tags
    except _ScanError as e:
        return e.at, str(e)
    stack: list[tuple[str, _Tag]] = []
    for tag in tags:
        body = tag.body
        try:
            if tag.raw_block:
                if body.startswith("#"):
                    stack.append((body[1:].split()[0], tag))
                    _call(body[1:])
                elif stack:
                    stack.pop()
                continue
            if body.startswith("!"):
                continue
            if body.startswith("*"):
                return tag.start, None
            if body.startswith("/"):
                bits = body[1:].split()
                if not bits or not stack or stack[-1][0] != bits[0]:
                    return tag.start, None
                stack.pop()
                continue
            if body == "else" or body.startswith("else "):
                if not stack:
                    return tag.start, None
                if body.startswith(("else if ", "else unless ")):
                    _call(body[len("else ") :])
                continue
            if body.startswith("#*inline"):
                body.split(None, 2)[1]
                stack.append(("inline", tag))
            elif body.startswith("#>"):
                stack.append((str(_call(body[2:].strip())["name"]), tag))
            elif body.startswith(("#", "^")):
                stack.append((str(_call(body[1:])["name"]), tag))
            elif body.startswith(">"):
                _partial_call(tag)
            else:
                _call(_mustache_source(tag))
        except (ValueError, IndexError):
            return tag.start, None
    return (stack[-1][1].start, None) if stack else (0, None)


def _compile(
    source: str, text: str, at: int, label: str, included: str = "", offset: int | None = None
) -> None:
    """Parse `source` (found at `at` in `text`) with the engine; a parse error names its
    line and column in `text`. For a partial's file: `included` says where it is included
    from, and `offset` is that place in the prompt file (the error's offset)."""
    from dotpromptz_handlebars._render import compile_template

    try:
        compile_template(source)
    except Exception as e:  # the engine's parser raises ValueError, IndexError, RecursionError
        pos, message = _parse_error_tag(source)
        message = message or str(e) or type(e).__name__
        here = where(text, label, at + pos)
        raise TemplateSyntaxError(
            f"{here}: Handlebars syntax error: {message}{included}",
            at + pos if offset is None else offset,
        ) from None


def _first_tag_reading(tags: list[_Tag], word: str) -> _Tag | None:
    """The first tag (not a comment) that names `word` outside a string."""
    pattern = re.compile(rf"(?<![\w\-]){re.escape(word)}(?![\w\-])")
    for tag in tags:
        if _kind(tag) == "comment":
            continue
        bare = re.sub(r'"[^"]*"|\'[^\']*\'', "", tag.body)
        if pattern.search(bare):
            return tag
    return None


# ---------------------------------------------------------------------------------------
# Samples that say which paths the template read and found nothing at.


# Where a missing value is simply false, as in the runtime (and in Prompty's renderer here):
# the condition of `{{#if}}`, `{{#unless}}`, `{{else if}}`, and the compared values of
# `{{#ifEquals}}`/`{{#unlessEquals}}`. Anywhere else (written out, looped over, passed to
# `{{json}}`) it would leave a hole in the prompt.
_CONDITION_HELPERS = ("ifEquals", "unlessEquals")


def _in_condition() -> bool:
    """Whether the engine is evaluating a condition (read off its own call stack, up to the
    node it is rendering)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_name
        if name == "_if_condition":
            return True
        if name == "_eval_call":
            call = frame.f_locals.get("call")
            if isinstance(call, dict) and call.get("name") in _CONDITION_HELPERS:
                return True
        if name in ("_render_one", "_render"):
            return False
        frame = frame.f_back  # type: ignore[assignment]
    return False


class _Tracked(dict[str, Any]):
    """A sample mapping that notes each key the engine looks up and does not find, except
    in a condition."""

    def __init__(self, values: Mapping[str, Any], path: str, misses: list[str]) -> None:
        super().__init__(values)
        self.path = path
        self.misses = misses

    def __contains__(self, key: object) -> bool:
        found = super().__contains__(key)
        if not found and not _in_condition():
            self.misses.append(f"{self.path}.{key}" if self.path else str(key))
        return found


def _track(value: Any, path: str, misses: list[str]) -> Any:
    if isinstance(value, Mapping):
        items = {
            str(k): _track(v, f"{path}.{k}" if path else str(k), misses) for k, v in value.items()
        }
        return _Tracked(items, path, misses)
    if isinstance(value, list):
        return [_track(v, f"{path}.[{i}]", misses) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------------------------------
# Partials from the prompt's folder.


def _load_partials(
    tags: list[_Tag], inline: set[str], text: str, at: int, label: str, folder: Path | None
) -> dict[str, str]:
    """The text of each file partial the template includes, directly or through another
    partial, by name; each one is checked (name, place, syntax, refused helpers, cycles)."""
    out: dict[str, str] = {}

    def load(name: str, via: _Tag, chain: tuple[str, ...]) -> None:
        offset = at + via.start
        here = where(text, label, offset)
        if name in chain:
            loop = " → ".join((*chain[chain.index(name) :], name))
            raise UnsupportedTemplateError(f"{here}: partials include each other: {loop}", offset)
        if name in out:
            return
        if not _PARTIAL_NAME.fullmatch(name) or ".." in name:
            raise UnsupportedTemplateError(
                f"{here}: the partial name {name!r} is not a file name in the prompt's "
                "folder; partials are read only from `_<name>.prompt` next to the prompt",
                offset,
            )
        if folder is None:
            raise DocumentError(
                f"{here}: the template includes the partial {name!r}, but the prompt has no "
                f"folder to read `_{name}.prompt` from (save the file first)",
                offset,
            )
        root = folder.resolve()
        path = folder / f"_{name}.prompt"
        if not path.is_file():
            raise DocumentError(
                f"{here}: the template includes the partial {name!r}, but there is no "
                f"`_{name}.prompt` in {folder} (Dotprompt reads `{{{{> {name}}}}}` from "
                f"that file)",
                offset,
            )
        if path.resolve().parent != root:
            raise UnsupportedTemplateError(
                f"{here}: `_{name}.prompt` links outside the prompt's folder; partials are "
                "read only from the prompt's own folder",
                offset,
            )
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DocumentError(f"{here}: cannot read the partial {path}: {e}", offset) from None
        out[name] = source
        included = f" (in the partial included at {here})"
        _compile(source, source, 0, str(path), included, offset)
        inner = _scan(source).tags
        _refuse(inner, source, str(path), 0, offset, included)
        more_inline = inline | _inline_names(inner)
        for tag in inner:
            if _kind(tag) == "partial":
                nested = _file_partial(tag, more_inline)
                if nested is not None:
                    load(nested, via, (*chain, name))

    for tag in tags:
        if _kind(tag) == "partial":
            name = _file_partial(tag, inline)
            if name is not None:
                load(name, tag, ())
    return out


def _refuse(
    tags: list[_Tag], text: str, label: str, at: int, offset: int | None = None, included: str = ""
) -> None:
    """Refuse what has no text to explain: `{{media}}`, `{{history}}`, partial blocks.
    `offset`: the error's offset when the tags are not in the prompt file itself."""
    for tag in tags:
        kind = _kind(tag)
        here = where(text, label, at + tag.start)
        place = at + tag.start if offset is None else offset
        if kind == "partial-block":
            raise UnsupportedTemplateError(
                f"{here}: partial blocks (`{{{{#> …}}}}`) are not supported; include the "
                f"partial with `{{{{> name}}}}`{included}",
                place,
            )
        if kind != "mustache":
            continue
        name = str(_call(_mustache_source(tag))["name"])
        if name in _REFUSED_HELPERS:
            raise UnsupportedTemplateError(
                f"{here}: `{{{{{tag.body}}}}}` stands for {_REFUSED_HELPERS[name]}: no model "
                f"input to explain; remove it to explain the prompt's text{included}",
                place,
            )


# ---------------------------------------------------------------------------------------
# The render.


@dataclass
class _Engine:
    """A `Dotprompt`'s own Handlebars (its helpers and settings), made strict and quiet."""

    handlebars: Any
    misses: list[str] = field(default_factory=list)

    @classmethod
    def make(cls) -> _Engine:
        from dotpromptz import Dotprompt

        handlebars = Dotprompt()._handlebars
        handlebars.strict = True  # a missing printed path raises instead of printing ''
        handlebars.register_helper("log", lambda args, options: "")  # never print (stdio LSP)
        return cls(handlebars)


def render(
    text: str,
    body_start: int,
    front: Mapping[str, Any],
    samples: Mapping[str, Any],
    label: str,
    folder: Path | None,
) -> tuple[MappedText, list[tuple[str, MappedText]]]:
    """Render the template of normalised file text `text`; return the whole render and each
    message (role, mapped content) as dotpromptz's `to_messages` splits it. Spans are
    offsets into `text`.

    `body_start`: where the caller's front matter split puts the body; the template rendered
    is the one dotpromptz's own parser takes from `text` (`template_start`: its body,
    stripped), which is the same wherever both read the front matter alike. `front`: the
    front matter, whose `input.default` the caller's `samples` overlay; `folder`: the only
    place partials (`_name.prompt`) are read from."""
    from dotpromptz_handlebars import StrictModeError, TemplateRecursionError, Text
    from dotpromptz_handlebars._render import compile_template

    del body_start  # the template is where dotpromptz's own parser finds it
    at, template = template_start(text, label)
    _compile(template, text, at, label)
    scan = _scan(template)
    tags = scan.tags
    _refuse(tags, text, label, at)
    inline = _inline_names(tags)
    partials = _load_partials(tags, inline, text, at, label, folder)

    engine = _Engine.make()
    hb = engine.handlebars
    for name, source in partials.items():
        hb.register_partial(name, source)
    values = {**file_samples(front), **samples}
    context = _track(values, "", engine.misses)

    def located(word: str) -> int:
        tag = _first_tag_reading(tags, word)
        return at + tag.start if tag is not None else at

    def run(source: str) -> str:
        engine.misses.clear()
        try:
            out = str(hb.compile(source)(context, {"data": {}}))
        except StrictModeError as e:
            path = engine.misses[0] if engine.misses else str(e.path)
            raise _missing(path, text, label, located) from None
        except TemplateRecursionError as e:
            raise DocumentError(f"{label}: the template nests too deep: {e}", at) from None
        except ValueError as e:
            message = str(e)
            helper = re.match(r'Missing helper: "(.*)"', message)
            if helper:
                name = helper.group(1)
                offset = located(name)
                raise UnsupportedTemplateError(
                    f"{where(text, label, offset)}: the template calls the helper {name!r}, "
                    "which Dotprompt does not define (its helpers: "
                    f"{', '.join(sorted(hb._helpers))}; the block helpers if, unless, each, "
                    "with)",
                    offset,
                ) from None
            word = re.search(r"#(\w+)|partial (\S+) could not|^(\S+) is not defined", message)
            offset = located(next(g for g in word.groups() if g)) if word else at
            raise TemplateSyntaxError(
                f"{where(text, label, offset)}: the template failed to render: {message}",
                offset,
            ) from None
        if engine.misses:
            raise _missing(engine.misses[0], text, label, located)
        return out

    structure: set[Span] = set()
    expressions: list[Expression] = []
    leads: dict[int, int] = {}  # id of an expression -> backslashes before its tag
    for tag in tags:
        if _kind(tag) != "mustache":
            continue
        src = _mustache_source(tag)
        strip_before = tag.strip_before and not tag.lead
        expr = Expression(tag.start, tag.end, src, strip_before, tag.strip_after)
        expressions.append(expr)
        if tag.lead:
            leads[id(expr)] = tag.lead
        if str(_call(src)["name"]) in _STRUCTURE_HELPERS:
            structure.add((tag.start, tag.end))

    def prepare(marked: Marked) -> None:
        """Move the opening mark of a tag after `\\` before the backslashes (between them
        and the tag it would unescape one). Give each `{{> name}}` of the template a name
        of its own whose partial is the file's, between marks: its output maps to that tag."""
        for ident, expr in marked.expressions.items():
            lead = leads.get(id(expr), 0)
            opening = _OPEN_EXPRESSION + chr(_ID_BASE + ident)
            found_at = marked.text.find("\\" * lead + opening) if lead else -1
            if found_at >= 0:
                end = found_at + lead + len(opening)
                marked.text = marked.text[:found_at] + opening + "\\" * lead + marked.text[end:]
        clean = [t for t in tags if _kind(t) == "partial"]
        found = [t for t in _scan(marked.text).tags if _kind(t) == "partial"]
        if len(found) != len(clean):
            return
        edits: list[tuple[int, int, str]] = []
        for tag, here in zip(clean, found, strict=True):
            name = _file_partial(tag, inline)
            if name is None:
                continue
            expr = Expression(tag.start, tag.end, f"> {name}")
            open_mark, close_mark = marked.add_expression(expr)
            program = compile_template(partials[name])
            tail: list[Any] = [Text(close_mark)]
            last = program[-1] if program else None
            if (
                _indented_alone(template, tag)
                and isinstance(last, Text)
                and last.value.endswith("\n")
            ):  # the engine indents each line of its output but an empty last one
                program[-1] = Text(last.value[:-1])
                tail.append(Text("\n"))
            hb.register_partial(open_mark, cast(Any, [Text(open_mark), *program, *tail]))
            raw = str(_partial_call(here).get("name"))
            token = _args_of(here.body)[0]
            pos = marked.text.index(">", here.start) + 1
            while marked.text[pos].isspace():
                pos += 1
            if not marked.text.startswith(token, pos) or raw != name:
                return
            edits.append((pos, pos + len(token), open_mark))
        parts, cursor = [], 0
        for a, b, new in edits:
            parts += [marked.text[cursor:a], new]
            cursor = b
        parts.append(marked.text[cursor:])
        marked.text = "".join(parts)

    values_text = json.dumps(values, default=str) + "".join(partials.values())
    whole = render_mapped(
        run, template, scan.literals, expressions, values_text=values_text, prepare=prepare
    )
    if structure:
        names = [
            None if s in structure else n for s, n in zip(whole.spans, whole.names, strict=True)
        ]
        whole = MappedText(whole.text, whole.spans, whole.exact, names)
    whole = whole.shift(at)
    return whole, _split_messages(whole, text, label, at)


def _indented_alone(source: str, tag: _Tag) -> bool:
    """Whether a `{{> name}}` tag is alone on its line after spaces: the engine then indents
    each line of the partial's output, but not an empty last one."""
    line_start = source.rfind("\n", 0, tag.start) + 1
    indent = source[line_start : tag.start]
    line_end = source.find("\n", tag.end)
    rest = source[tag.end : len(source) if line_end < 0 else line_end]
    return bool(indent) and not indent.strip(" \t") and not rest.strip(" \t")


def _args_of(body: str) -> list[str]:
    from dotpromptz_handlebars._render import _args

    return cast(list[str], _args(body[1:].strip()))


def _missing(path: str, text: str, label: str, located: Callable[[str], int]) -> DocumentError:
    """The error for a path the template reads that has no value."""
    bits = [b for b in re.split(r"[./]", path) if b and b not in ("this", "..", "[", "]")]
    if path.startswith("@") and not path.startswith("@root"):
        offset = located(path[1:].split(".")[0])
        return DocumentError(
            f"{where(text, label, offset)}: the template reads the data variable {path!r}, "
            "which is not defined there",
            offset,
        )
    bits = [b for b in bits if b != "@root" and not b.startswith("[")]
    top = bits[0] if bits else path
    offset = located(bits[-1] if bits else path)
    return MissingSampleError(
        f"{where(text, label, offset)}: the template reads {path!r}, which has no sample "
        f"value; {SAMPLE_HINT.format(name=top)}",
        offset,
    )


def _join(parts: list[MappedText]) -> MappedText:
    return MappedText(
        "".join(p.text for p in parts),
        [s for p in parts for s in p.spans],
        [e for p in parts for e in p.exact],
        [n for p in parts for n in p.names],
    )


def _split_messages(
    whole: MappedText, text: str, label: str, at: int
) -> list[tuple[str, MappedText]]:
    """The messages dotpromptz's `to_messages` makes of the render (text parts), mapped."""
    from dotpromptz._parse import ROLE_AND_HISTORY_MARKER_REGEX, to_messages
    from dotpromptz._typing import TextPart

    def role_tag(role: str | None) -> int:
        for m in ROLE_AND_HISTORY_MARKER_REGEX.finditer(whole.text):
            name = m.group(1).rsplit(":", 1)[-1]
            if role is None and name not in (*_ROLES, "tool", "history"):
                role = name
            if name == role:
                span = whole.spans[m.start()]
                return span[0] if span is not None else at
        return at

    try:
        messages = to_messages(whole.text)
    except ValueError as e:
        offset = role_tag(None)
        raise UnsupportedTemplateError(
            f"{where(text, label, offset)}: {e}; Dotprompt's roles are system, user and model",
            offset,
        ) from None
    out: list[tuple[str, MappedText]] = []
    cursor = 0
    for message in messages:
        role = str(getattr(message.role, "value", message.role))
        pieces = [p.text for p in message.content if isinstance(p, TextPart)]
        if role not in _ROLES:
            offset = role_tag(role)
            raise UnsupportedTemplateError(
                f"{where(text, label, offset)}: a `{role}` message is the answer of a tool the "
                "model called, which a prompt to explain cannot hold; use system, user or "
                "model",
                offset,
            )
        mapped = []
        for piece in pieces:
            part, cursor = whole.locate(piece, cursor)
            mapped.append(part)
        content = _join(mapped)
        if content.text:
            out.append((_ROLES[role], content))
    return out
