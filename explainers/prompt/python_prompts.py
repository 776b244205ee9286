"""Prompts written in Python code, found without running it, every char mapped to its span.

Only `ast` and `tokenize` read the user's code; nothing is imported, executed or evaluated.
`find_prompts` returns, in file order, the prompts a file defines:

- a string expression assigned to (or passed as the keyword argument, dict key, or default of)
  a name that says prompt, system, instruction(s) or template, or returned by a function whose
  name says so: `SYSTEM_PROMPT = \"\"\"...\"\"\"`, `self.instructions = "..."`,
  `Agent(instructions="...")`;
- chat messages: role dicts `{"role": "system", "content": ...}`, a list or tuple of them being
  one prompt (with the `system=`/`instructions=` argument of the same call, if any);
- LangChain templates: `ChatPromptTemplate.from_messages([...])`, `XPromptTemplate.from_template(
  ...)`, `PromptTemplate(template=...)`, whose `{name}` fields are variables;
- a string of 20 or more characters passed first to an LLM call (`llm.invoke(...)` and kin).

A string expression is a literal (any prefix but bytes, implicit concatenation included), an
f-string, `"...".format(...)`, `textwrap.dedent(...)`, `.strip()`, `+` of such parts, or the name
of a module constant assigned once. Each decoded char keeps the source chars that produced it
(an escape or a CRLF line break maps to all its source chars), a variable keeps its `{...}` field
(or the expression that gives it), so the explainers can put scores back where the user typed.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from promptxray.explainers.errors import DocumentError, MissingSampleError
from promptxray.explainers.prompt.document import BOM, Message, Segment

UNSET: Any = object()  # CodeField.value when the code gives the field no literal value
MIN_LOOSE_CHARS = 20  # a string passed to an LLM call counts from this many visible chars on

_PROMPT_PART = re.compile(r"prompt|instruction|template", re.IGNORECASE)  # `sysprompt` too
# a name ending in one of these words names a file, key or label, not the text: `PROMPT_PATH`
_NOT_TEXT_WORDS = frozenset(
    (
        "dir",
        "dirs",
        "path",
        "paths",
        "file",
        "files",
        "filename",
        "folder",
        "name",
        "names",
        "id",
        "ids",
        "key",
        "keys",
        "url",
        "uri",
        "ext",
        "type",
        "types",
        "version",
        "versions",
        "env",
        "loader",
        "engine",
        "class",
        "cls",
        "module",
        "role",
        "roles",
        "format",
        "encoding",
        "mode",
    )
)
_ROLES = {"human": "user", "ai": "assistant", "developer": "system"}
_LC_MESSAGE_CLASSES = {"SystemMessage": "system", "HumanMessage": "user", "AIMessage": "assistant"}
_LC_TEMPLATE_CLASSES = {
    "SystemMessagePromptTemplate": "system",
    "HumanMessagePromptTemplate": "user",
    "AIMessagePromptTemplate": "assistant",
}
_LLM_METHODS = frozenset(
    (
        "invoke",
        "ainvoke",
        "predict",
        "apredict",
        "complete",
        "acomplete",
        "generate_content",
        "generate_content_async",
        "create_completion",
        "stream",
        "astream",
    )
)
_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_OCTAL = "01234567"
_FORMAT_KINDS = ("format", "format_map")
_STRIPS = ("strip", "lstrip", "rstrip")


@dataclass
class CodeField:
    """A variable of a prompt: an f-string or template field, or an expression used as text.

    `name` is the field's expression (`{user.name!r:>10}` -> "user.name"), `start:end` the file
    span of the whole `{...}` (or of the expression). `conversion`, `format_spec` (None when it
    has nested fields) and `prefix` (the `x=` text of a self-documenting `{x=}`) say how a value
    is shown. `value` is a literal the code itself passes (`.format(n=3)`), else UNSET: such a
    field is always filled with it and is not one of the prompt's variables.
    """

    name: str
    start: int
    end: int
    line: int = 0
    conversion: str | None = None
    format_spec: str | None = None
    prefix: str = ""
    value: Any = field(default=UNSET, repr=False, compare=False)

    def render(self, value: Any) -> str:
        """The text Python would put in place of this field for `value`."""
        conv = self.conversion or ("r" if self.prefix and not self.format_spec else None)
        shown: Any = value
        if conv == "r":
            shown = repr(value)
        elif conv == "a":
            shown = ascii(value)
        elif conv == "s":
            shown = str(value)
        if self.format_spec:
            try:
                return self.prefix + format(shown, self.format_spec)
            except (TypeError, ValueError):
                pass
        return self.prefix + (shown if isinstance(shown, str) else str(shown))


Piece: TypeAlias = Segment | CodeField


@dataclass
class CodeMessage:
    """One message of a code prompt: its role and the pieces its content is made of.

    Segments are literal runs (`exact`) or single chars an escape, a `{{`/`}}` or a CRLF line
    break produced (`exact=False`, mapped to all those source chars); fields are variables.
    """

    role: str
    pieces: list[Piece]


@dataclass
class CodePrompt:
    """A prompt found in Python code: where it is, and its messages with fields unfilled."""

    name: str
    line: int
    start: int
    end: int
    pieces: list[CodeMessage]
    start_line: int = 0
    end_line: int = 0

    @property
    def fields(self) -> list[CodeField]:
        return [p for m in self.pieces for p in m.pieces if isinstance(p, CodeField)]

    @property
    def variables(self) -> list[str]:
        """The distinct names of the fields a sample must fill, in order of first use."""
        return list(dict.fromkeys(f.name for f in self.fields if f.value is UNSET))

    def messages(self, samples: Mapping[str, Any], path: str | None = None) -> list[Message]:
        """The messages with every field filled from `samples` (or the code's own literal).

        A filled field is one placeholder segment spanning its `{...}`; a field with neither a
        literal nor a sample raises MissingSampleError saying where a sample can be given.
        """
        out: list[Message] = []
        for msg in self.pieces:
            segs: list[Segment] = []
            for piece in msg.pieces:
                if isinstance(piece, Segment):
                    segs.append(Segment(piece.text, piece.start, piece.end, None, piece.exact))
                    continue
                found, value = (True, piece.value) if piece.value is not UNSET else (False, None)
                if not found:
                    found, value = _lookup(samples, piece.name)
                if not found:
                    raise MissingSampleError(_missing(piece, self.name, path))
                text = piece.render(value)
                if text:
                    segs.append(Segment(text, piece.start, piece.end, placeholder=piece.name))
            out.append(Message(msg.role, segs))
        return out


def _lookup(samples: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """`samples[name]`, or for `user.name` the key `name` of the mapping `samples["user"]`."""
    if name in samples:
        return True, samples[name]
    head, *rest = name.split(".")
    if not rest or head not in samples:
        return False, None
    value = samples[head]
    for key in rest:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return True, value


def _missing(fld: CodeField, prompt: str, path: str | None) -> str:
    where = f"{path}:{fld.line}" if path else f"line {fld.line}"
    sidecar = f"`{Path(path).name}.samples.yaml`" if path else "a `<file>.samples.yaml` sidecar"
    return (
        f"{where}: variable `{fld.name}` of {prompt} has no sample value; give one in "
        f"{sidecar} next to the code file (`{fld.name}: ...`), in the `promptxray.samples` "
        f"editor setting, or with `--sample {fld.name}=VALUE` on the command line"
    )


def prompt_at(prompts: list[CodePrompt], line: int) -> CodePrompt | None:
    """The prompt whose span covers 1-based `line` or whose lens is there (innermost first)."""
    hits = [p for p in prompts if p.line == line or p.start_line <= line <= p.end_line]
    return min(hits, key=lambda p: p.end - p.start) if hits else None


def find_prompts(source: str) -> list[CodePrompt]:
    """The prompts in Python `source`, in file order; never runs any of it.

    Invalid Python raises DocumentError with the parser's `line:col` and message.
    """
    skip = 1 if source.startswith(BOM) else 0  # the parser refuses a BOM in a str
    try:
        with warnings.catch_warnings():  # invalid escapes warn; that is the user's business
            warnings.simplefilter("ignore")
            tree = ast.parse(source[skip:])
    except SyntaxError as e:
        col = f":{e.offset}" if e.offset else ""
        raise DocumentError(f"{e.lineno or 1}{col}: invalid Python syntax: {e.msg}") from None
    except ValueError as e:  # null bytes on Python < 3.12
        raise DocumentError(f"1:1: invalid Python source: {e}") from None
    except (RecursionError, MemoryError):
        raise DocumentError("1:1: the code is nested too deeply to read its prompts") from None
    try:
        return _Finder(source, skip, tree).run()
    except RecursionError:
        raise DocumentError("1:1: the code is nested too deeply to read its prompts") from None


# -- the finder --------------------------------------------------------------------------------

# one decoded char and the source span that produced it, or a field
Atom: TypeAlias = tuple[str, int, int] | CodeField


class _Finder:
    def __init__(self, src: str, skip: int, tree: ast.Module) -> None:
        self.src = src
        self.skip = skip  # a BOM the parser and tokenizer did not see
        self.tree = tree
        # ast counts \r\n, \r and \n as line breaks; tokenize's readline only \n
        self.ast_starts = [skip] + [m.end() for m in re.finditer(r"\r\n|\r|\n", src)]
        self.tok_starts = [skip] + [m.end() for m in re.finditer(r"\n", src)]
        self.literals = self._literal_spans()
        self.literal_starts = [s for s, _ in self.literals]
        self.consts: dict[str, ast.expr] = {}
        self.templates: set[str] = set()
        self.claimed: set[int] = set()
        self.functions: list[str] = []
        self.prompts: list[CodePrompt] = []
        self._prepass()

    def run(self) -> list[CodePrompt]:
        self.visit(self.tree)
        return sorted(self.prompts, key=lambda p: (p.start, -p.end))

    # positions

    def offset(self, lineno: int, col_bytes: int) -> int:
        """File str offset of an ast position (1-based line, UTF-8 byte column)."""
        start = self.ast_starts[lineno - 1]
        line = self.src[start : start + col_bytes]  # a byte column is never fewer chars
        if line.isascii():
            return start + col_bytes
        return start + len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        end_line, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        start = self.offset(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        if end_line is None or end_col is None:
            return start, start
        return start, self.offset(end_line, end_col)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.ast_starts, offset)

    def _literal_spans(self) -> list[tuple[int, int]]:
        """Source spans of the top-level string literal tokens (an f-string is one)."""
        fstart = {getattr(tokenize, n, -1) for n in ("FSTRING_START", "TSTRING_START")}
        fend = {getattr(tokenize, n, -1) for n in ("FSTRING_END", "TSTRING_END")}
        spans: list[tuple[int, int]] = []
        depth, opened = 0, 0
        try:
            for tok in tokenize.generate_tokens(io.StringIO(self.src[self.skip :]).readline):
                if tok.type in fstart:
                    opened = opened if depth else self._tok_offset(tok.start)
                    depth += 1
                elif tok.type in fend:
                    depth -= 1
                    if depth == 0:
                        spans.append((opened, self._tok_offset(tok.end)))
                elif tok.type == tokenize.STRING and depth == 0:
                    start, end = self._tok_offset(tok.start), self._tok_offset(tok.end)
                    if self.src[start:end] == tok.string:  # positions we can trust
                        spans.append((start, end))
        except (tokenize.TokenError, SyntaxError) as e:
            raise DocumentError(f"invalid Python source: {e}") from None
        return spans

    def _tok_offset(self, pos: tuple[int, int]) -> int:
        row, col = pos
        return self.tok_starts[row - 1] + col if row <= len(self.tok_starts) else len(self.src)

    # the pass before the walk: module constants and the names used as templates

    def _prepass(self) -> None:
        stores: Counter[str] = Counter()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                stores[node.id] += 1
            elif isinstance(node, ast.arg):
                stores[node.arg] += 1
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                stores[node.name] += 1
            elif isinstance(node, ast.alias):
                stores[(node.asname or node.name).split(".")[0]] += 1
            elif isinstance(node, ast.Call):
                for used in self._template_uses(node):
                    key = _target_key(used)
                    if key:
                        self.templates.add(key)
        for stmt in self.tree.body:
            target, value = _single_assignment(stmt)
            if isinstance(target, ast.Name) and value is not None and stores[target.id] == 1:
                self.consts[target.id] = value

    def _template_uses(self, call: ast.Call) -> Iterator[ast.expr]:
        """Expressions this call uses as a str.format / LangChain template."""
        func, kw = call.func, _keywords(call)
        name = _call_name(call)
        if isinstance(func, ast.Attribute) and func.attr in _FORMAT_KINDS:
            yield func.value
        if name == "from_template" and call.args:
            yield call.args[0]
        if (name == "from_template" or name.endswith("PromptTemplate")) and "template" in kw:
            yield kw["template"]
        if name == "from_messages" or name.endswith("ChatPromptTemplate"):
            listed = call.args[0] if call.args else kw.get("messages")
            for elt in getattr(listed, "elts", []):
                if isinstance(elt, ast.Tuple | ast.List) and len(elt.elts) == 2:
                    yield elt.elts[1]

    # the walk

    def visit(self, node: ast.AST, hint: str | None = None) -> None:
        if id(node) in self.claimed or isinstance(node, ast.JoinedStr):
            return
        if isinstance(node, ast.Expr):
            if not _is_str_literal(node.value):  # docstrings and bare strings are not prompts
                self.visit(node.value)
            return
        if isinstance(node, ast.Assign | ast.AnnAssign):
            self._assignment(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._function(node)
        elif isinstance(node, ast.Return) and node.value is not None:
            fn = self.functions[-1] if self.functions else ""
            if not (_prompt_like(fn) and self.string_prompt(node.value, f"{fn}()", node.lineno)):
                self.visit(node.value)
        elif isinstance(node, ast.keyword):
            if not (
                node.arg
                and _prompt_like(node.arg)
                and self.string_prompt(node.value, node.arg, node.lineno)
            ):
                self.visit(node.value, node.arg)
        elif isinstance(node, ast.Dict):
            self._dict(node)
        elif isinstance(node, ast.List | ast.Tuple):
            if not self.role_list(node, node, hint or "messages", node.lineno):
                self._children(node)
        elif isinstance(node, ast.Call):
            if not self._call(node, hint):
                self._children(node)
        else:
            self._children(node)

    def _children(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def _assignment(self, node: ast.Assign | ast.AnnAssign) -> None:
        value = node.value
        if value is None:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            label = _target_label(target)
            if label and _prompt_like(label):
                template = _target_key(target) in self.templates
                if self.string_prompt(value, label, node.lineno, template=template):
                    return
        labels = [_target_label(t) for t in targets]
        self.visit(value, next((x for x in labels if x), None))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = list(
            zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
        )
        pairs += [
            (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
        ]
        for arg, default in pairs:
            if _prompt_like(arg.arg):
                self.string_prompt(default, arg.arg, default.lineno)
        self.functions.append(node.name)
        self._children(node)
        self.functions.pop()

    def _dict(self, node: ast.Dict) -> None:
        if _role_dict(node) is not None:  # a lone message; one in a list is the list's
            message = self.role_message(node, template=False)
            if message is not None:
                self.add(f"{message.role} message", node.lineno, node, [message])
            return
        for key, value in zip(node.keys, node.values, strict=True):
            label = key.value if isinstance(key, ast.Constant) else None
            if (
                isinstance(key, ast.Constant)
                and isinstance(label, str)
                and _prompt_like(label)
                and self.string_prompt(value, label, key.lineno)
            ):
                continue
            if key is not None:
                self.visit(key)
            self.visit(value, label if isinstance(label, str) else None)

    def _call(self, node: ast.Call, hint: str | None) -> bool:
        """Claim a LangChain template, a chat call's messages or an LLM call's text."""
        name, kw = _call_name(node), _keywords(node)
        fmt = kw.get("template_format")
        template = not (isinstance(fmt, ast.Constant) and fmt.value != "f-string")
        receiver = _dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        if name == "from_messages" or (
            name.endswith("ChatPromptTemplate") and (node.args or "messages" in kw)
        ):
            listed = node.args[0] if node.args else kw.get("messages")
            if isinstance(listed, ast.List | ast.Tuple):
                msgs = [m for e in listed.elts if (m := self.lc_message(e, template))]
                if msgs:
                    label = receiver.rsplit(".", 1)[-1] if name == "from_messages" else name
                    self.add(f"{label or name} ({_count(len(msgs))})", node.lineno, node, msgs)
                    return True
        text = node.args[0] if name == "from_template" and node.args else kw.get("template")
        if text is not None and (name == "from_template" or name.endswith("PromptTemplate")):
            cls = receiver.rsplit(".", 1)[-1] if name == "from_template" else name
            role = _LC_TEMPLATE_CLASSES.get(cls, "user")
            atoms = self.atoms(text, template=template)
            if atoms:
                self.add(cls or name, node.lineno, node, [self.message(role, atoms)])
                return True
        key = "messages" if "messages" in kw else "input"
        listed, system = kw.get(key), kw.get("system", kw.get("instructions"))
        if isinstance(listed, ast.List | ast.Tuple) and system is not None:
            atoms = self.atoms(system)
            first = [self.message("system", atoms)] if atoms else []
            if self.role_list(listed, node, key, node.lineno, first):
                self.claimed.add(id(system))
                return False  # the rest of the call may hold other prompts
        if name in _LLM_METHODS and node.args and not _is_name(node.args[0]):
            atoms = self.atoms(node.args[0])
            if atoms and _visible_len(atoms) >= MIN_LOOSE_CHARS:
                label = f"{_dotted(node.func) or name}()"
                self.add(label, node.args[0].lineno, node.args[0], [self.message("user", atoms)])
                self.claimed.add(id(node.args[0]))
                return False
        return False

    # prompts

    def add(self, name: str, line: int, node: ast.AST, messages: list[CodeMessage]) -> None:
        start, end = self.span(node)
        self.claimed.add(id(node))
        lines = (self.line_of(start), self.line_of(max(start, end - 1)))
        self.prompts.append(CodePrompt(name, line, start, end, messages, *lines))

    def string_prompt(
        self, node: ast.expr, name: str, line: int, template: bool = False, role: str = ""
    ) -> bool:
        """Add `node` as a one-message prompt if it is a string expression; say if it was."""
        if id(node) in self.claimed:
            return True
        if _is_name(node):
            return False  # `PROMPT = OTHER_PROMPT` is OTHER_PROMPT's, not a second one
        atoms = self.atoms(node, template=template)
        if atoms is None:
            return False
        if atoms:
            said = "system" in _words(name) or "instruction" in name.lower()
            role = role or ("system" if said else "user")
            self.add(name, line, node, [self.message(role, atoms)])
        self.claimed.add(id(node))
        return True

    def role_list(
        self,
        listed: ast.List | ast.Tuple,
        node: ast.AST,
        hint: str,
        line: int,
        first: list[CodeMessage] | None = None,
    ) -> bool:
        """Add a list of role dicts as one prompt (after `first`); say if it was one."""
        if not any(_role_dict(e) for e in listed.elts):
            return False
        msgs = list(first or [])
        msgs += [m for e in listed.elts if (m := self.role_message(e, template=False))]
        if msgs:
            self.add(f"{hint} ({_count(len(msgs))})", line, node, msgs)
        self.claimed.add(id(listed))
        return True

    def role_message(self, node: ast.AST, template: bool) -> CodeMessage | None:
        found = _role_dict(node)
        if found is None:
            return None
        role, content = found
        return self.content_message(role, content, template)

    def lc_message(self, node: ast.expr, template: bool) -> CodeMessage | None:
        """One element of `from_messages`: a (role, text) pair, a message object, a string."""
        if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 2:
            role, content = node.elts
            if isinstance(role, ast.Constant) and isinstance(role.value, str):
                if role.value == "placeholder":
                    return None  # a MessagesPlaceholder: its messages come at run time
                return self.content_message(role.value, content, template)
            return None
        if isinstance(node, ast.Dict):
            return self.role_message(node, template)
        if _is_str_literal(node):
            return self.content_message("user", node, template)
        if not isinstance(node, ast.Call):
            return None
        name, kw = _call_name(node), _keywords(node)
        given = node.args[0] if node.args else kw.get("content")
        if name in _LC_MESSAGE_CLASSES and given is not None:
            return self.content_message(_LC_MESSAGE_CLASSES[name], given, False)
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        cls = _dotted(receiver).rsplit(".", 1)[-1] if receiver is not None else ""
        text = node.args[0] if node.args else kw.get("template")
        if name == "from_template" and cls in _LC_TEMPLATE_CLASSES and text is not None:
            return self.content_message(_LC_TEMPLATE_CLASSES[cls], text, template)
        return None

    def content_message(self, role: str, content: ast.expr, template: bool) -> CodeMessage | None:
        """A message whose content is a string expression, or else one field for the value."""
        if isinstance(content, ast.Constant) and content.value is None:
            return None
        if isinstance(content, ast.List | ast.Tuple | ast.Dict | ast.Set | ast.ListComp):
            return None  # multimodal content parts are not read (yet)
        atoms = self.atoms(content, template=template)
        return self.message(role, atoms if atoms is not None else [self.expr_field(content)])

    def message(self, role: str, atoms: list[Atom]) -> CodeMessage:
        role = role.lower()
        return CodeMessage(_ROLES.get(role, role), self.pieces(atoms))

    def pieces(self, atoms: list[Atom]) -> list[Piece]:
        """Atoms -> pieces: runs of chars copied as written become one exact segment each."""
        out: list[Piece] = []
        run: list[str] = []
        run_start = run_end = -1

        def flush() -> None:
            if run:
                out.append(Segment("".join(run), run_start, run_end))
                run.clear()

        for atom in atoms:
            if isinstance(atom, CodeField):
                flush()
                out.append(atom)
                continue
            ch, start, end = atom
            if end - start == 1 and self.src[start] == ch:
                if not run or start != run_end:
                    flush()
                    run_start = start
                run.append(ch)
                run_end = end
            else:
                flush()
                out.append(Segment(ch, start, end, exact=False))
        flush()
        return out

    def expr_field(self, node: ast.AST) -> CodeField:
        start, end = self.span(node)
        return CodeField(" ".join(self.src[start:end].split()), start, end, self.line_of(start))

    # string expressions -> atoms

    def atoms(
        self, node: ast.AST, template: bool = False, seen: frozenset[str] = frozenset()
    ) -> list[Atom] | None:
        """The decoded chars and fields of a string expression; None if it is not one.

        With `template`, the result is then read as a str.format template (LangChain).
        """
        out: list[Atom] | None = None
        if isinstance(node, ast.Constant | ast.JoinedStr):
            out = self.literal(node)
        elif isinstance(node, ast.Name) and node.id in self.consts and node.id not in seen:
            out = self.atoms(self.consts[node.id], False, seen | {node.id})
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.atoms(node.left, False, seen), self.atoms(node.right, False, seen)
            if left is not None or right is not None:
                left = left if left is not None else [self.expr_field(node.left)]
                right = right if right is not None else [self.expr_field(node.right)]
                out = left + right
        elif isinstance(node, ast.Call):
            out = self._call_atoms(node, seen)
        if out is not None and template:
            out = self.template(out, None)
        return out

    def _call_atoms(self, node: ast.Call, seen: frozenset[str]) -> list[Atom] | None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _FORMAT_KINDS:
            inner = self.atoms(func.value, False, seen)
            return None if inner is None else self.template(inner, node)
        if isinstance(func, ast.Attribute) and func.attr in _STRIPS and not node.args:
            inner = self.atoms(func.value, False, seen)
            return None if inner is None else _strip(inner, func.attr)
        if _call_name(node) == "dedent" and len(node.args) == 1 and not node.keywords:
            inner = self.atoms(node.args[0], False, seen)
            return None if inner is None else _dedent(inner)
        return None

    def literal(self, node: ast.Constant | ast.JoinedStr) -> list[Atom] | None:
        """Decode the literal tokens of a (possibly implicitly concatenated) string node."""
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            return None
        start, end = self.span(node)
        i = bisect.bisect_left(self.literal_starts, start)
        atoms: list[Atom] = []
        while i < len(self.literals) and self.literals[i][1] <= end:
            atoms += self.decode(*self.literals[i])
            i += 1
        # cross-check with the parser's own value; a mismatch means positions we cannot trust
        if isinstance(node, ast.Constant):
            expected = node.value
        else:
            expected = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
        got = "".join(a.prefix if isinstance(a, CodeField) else a[0] for a in atoms)
        return atoms if got == expected else None

    def decode(self, start: int, end: int) -> list[Atom]:
        """One literal token -> atoms: escapes decoded, f-string fields read, quotes dropped."""
        src = self.src
        i = start
        while src[i] not in "'\"":
            i += 1
        prefix = src[start:i].lower()
        quote = src[i : i + 3] if src.startswith(('"""', "'''"), i) else src[i]
        raw, fstring = "r" in prefix, "f" in prefix
        out: list[Atom] = []
        j, stop = i + len(quote), end - len(quote)
        while j < stop:
            c = src[j]
            if c == "\r":  # a CRLF or CR line break inside the literal is one "\n"
                k = j + 2 if src.startswith("\r\n", j) else j + 1
                out.append(("\n", j, k))
            elif c == "\\" and not raw:
                ch, k = self.escape(j)
                if ch:
                    out.append((ch, j, k))
            elif fstring and c in "{}" and src.startswith(c * 2, j):
                out.append((c, j, j + 2))
                k = j + 2
            elif fstring and c == "{":
                fld, k = self.fstring_field(j, stop)
                out.append(fld)
            else:
                out.append((c, j, j + 1))
                k = j + 1
            j = k
        return out

    def escape(self, j: int) -> tuple[str, int]:
        """The char the escape at `j` means and where it ends ("" for a line continuation)."""
        src = self.src
        n = src[j + 1]
        if n == "\n":
            return "", j + 2
        if n == "\r":
            return "", j + 3 if src.startswith("\r\n", j + 1) else j + 2
        if n in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[n], j + 2
        if n in _OCTAL:
            k = j + 2
            while k < j + 4 and src[k] in _OCTAL:
                k += 1
            return chr(int(src[j + 1 : k], 8)), k
        width = {"x": 2, "u": 4, "U": 8}.get(n)
        if width:
            return chr(int(src[j + 2 : j + 2 + width], 16)), j + 2 + width
        if n == "N" and src.startswith("{", j + 2):
            close = src.index("}", j + 3)
            return unicodedata.lookup(src[j + 3 : close]), close + 1
        return "\\", j + 1  # an unknown escape keeps its backslash; the char follows as is

    def fstring_field(self, j: int, stop: int) -> tuple[CodeField, int]:
        """The replacement field opening at `j` in an f-string, and the offset after it."""
        src = self.src
        k, depth = j + 1, 0
        expr_end = debug_end = -1
        comments: list[tuple[int, int]] = []
        while k < stop:
            c = src[k]
            if c in "'\"":
                k = _skip_string(src, k, stop)
                continue
            if c == "#":  # a comment in a multi-line field (Python 3.12+)
                end = src.find("\n", k, stop)
                comments.append((k, stop if end < 0 else end))
                k = comments[-1][1]
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}" and depth:
                depth -= 1
            elif depth == 0 and expr_end < 0:
                if c == "}" or c == ":" or (c == "!" and src[k + 1] != "="):
                    expr_end = k
                    break
                if c == "=" and src[k + 1] != "=" and src[k - 1] not in "=!<>":
                    debug_end = k
            k += 1
        expr_stop = debug_end if debug_end >= 0 else expr_end
        expr, pos = "", j + 1
        for comment_start, comment_end in comments:  # the name leaves comments out
            expr, pos = expr + src[pos:comment_start], comment_end
        expr += src[pos:expr_stop]
        # `{x = }` shows the text "x = " before the value
        prefix = src[j + 1 : expr_end] if debug_end >= 0 else ""
        conversion = spec = None
        k = expr_end
        if src[k] == "!":
            conversion, k = src[k + 1], k + 2
        if src[k] == ":":
            spec_start, depth = k + 1, 0
            k += 1
            while src[k] != "}" or depth:
                depth += {"{": 1, "}": -1}.get(src[k], 0)
                k += 1
            spec = src[spec_start:k]
            spec = None if "{" in spec or "\\" in spec else spec
        name = " ".join(expr.split())
        fld = CodeField(name, j, k + 1, self.line_of(j), conversion, spec, prefix)
        return fld, k + 1

    def template(self, atoms: list[Atom], call: ast.Call | None) -> list[Atom]:
        """Read str.format fields in decoded atoms; `call` is `.format(...)` (names, literals)."""
        positional, keyword = _format_args(call, self) if call else ([], {})
        out: list[Atom] = []
        auto = 0
        i, n = 0, len(atoms)
        while i < n:
            atom = atoms[i]
            nxt = atoms[i + 1] if i + 1 < n else None
            if isinstance(atom, CodeField) or atom[0] not in "{}":
                out.append(atom)
                i += 1
                continue
            if isinstance(nxt, tuple) and nxt[0] == atom[0]:  # `{{` or `}}`: one brace
                out.append((atom[0], atom[1], nxt[2]))
                i += 2
                continue
            close = _closing_brace(atoms, i) if atom[0] == "{" else -1
            if close < 0:  # a lone brace (str.format would raise): keep it as text
                out.append(atom)
                i += 1
                continue
            inner = _chars(atoms[i + 1 : close])
            fname, conversion, spec = _split_field(inner)
            head = re.match(r"[^.\[]*", fname)
            first = head.group(0) if head else ""
            rest = fname[len(first) :]
            value = UNSET
            if first == "" or first.isdigit():
                index = auto if first == "" else int(first)
                auto += first == ""
                if index < len(positional):
                    first, value = positional[index]
                else:
                    first = str(index)
            elif first in keyword:
                value = keyword[first]
            closing = atoms[close]
            end = closing[2] if isinstance(closing, tuple) else closing.end
            start = atom[1]
            fld = CodeField(first + rest, start, end, self.line_of(start), conversion, spec)
            fld.value = value if not rest else UNSET
            out.append(fld)
            i = close + 1
        return out


# -- helpers -----------------------------------------------------------------------------------


def _chars(atoms: list[Atom]) -> str:
    """The text of char atoms (a field counts as nothing)."""
    return "".join(a[0] for a in atoms if not isinstance(a, CodeField))


def _count(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _prompt_like(name: str) -> bool:
    """Does this name say the value is prompt text (and not its path, key or kind)?

    `system` counts as a whole word only (`system_msg`, `systemPrompt`, not `subsystem`).
    """
    last = name.rsplit(".", 1)[-1]
    words = _words(last)
    if not words or words[-1] in _NOT_TEXT_WORDS:
        return False
    return bool(_PROMPT_PART.search(last)) or "system" in words


def _is_str_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Name)


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a chain of names and attributes, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else ""
    return ""


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def _target_label(target: ast.AST) -> str:
    """How an assignment target is shown: `NAME`, `self.attr`, `d["key"]`."""
    if isinstance(target, ast.Subscript):
        key = target.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return ""
    return _dotted(target)


def _target_key(node: ast.AST) -> str:
    """The key template uses and assignments meet on: `NAME`, or `.attr` for any `x.attr`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return "." + node.attr
    return ""


def _single_assignment(stmt: ast.stmt) -> tuple[ast.expr | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return stmt.targets[0], stmt.value
    if isinstance(stmt, ast.AnnAssign):
        return stmt.target, stmt.value
    return None, None


def _role_dict(node: ast.AST) -> tuple[str, ast.expr] | None:
    """(role, content expression) of a `{"role": "...", "content": ...}` dict literal."""
    if not isinstance(node, ast.Dict):
        return None
    items: dict[str, ast.expr] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        items[key.value] = value
    role = items.get("role")
    if not (isinstance(role, ast.Constant) and isinstance(role.value, str)):
        return None
    content = items.get("content")
    return (role.value, content) if content is not None else None


def _visible_len(atoms: list[Atom]) -> int:
    return sum(1 for a in atoms if not isinstance(a, CodeField))


def _skip_string(src: str, k: int, stop: int) -> int:
    """Offset after the string literal whose quote is at `k` (inside an f-string field)."""
    quote = src[k : k + 3] if src.startswith(src[k] * 3, k) else src[k]
    k += len(quote)
    while k < stop and not src.startswith(quote, k):
        k += 2 if src[k] == "\\" else 1
    return min(k + len(quote), stop)


def _closing_brace(atoms: list[Atom], i: int) -> int:
    """Index of the `}` closing the field opened at atoms[i] (nested once for a spec)."""
    depth = 0
    for k in range(i, len(atoms)):
        atom = atoms[k]
        if isinstance(atom, CodeField):
            return -1
        if atom[0] == "{":
            depth += 1
        elif atom[0] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _split_field(inner: str) -> tuple[str, str | None, str | None]:
    """`name!r:>10` -> ("name", "r", ">10"); the name ends at `!` or `:` outside brackets."""
    depth = 0
    for k, c in enumerate(inner):
        depth += {"[": 1, "]": -1}.get(c, 0)
        if depth == 0 and c in "!:":
            name, rest = inner[:k], inner[k:]
            conversion = None
            if rest.startswith("!"):
                conversion, rest = rest[1:2], rest[2:]
            spec = rest[1:] if rest.startswith(":") else None
            return name, conversion, None if spec and "{" in spec else spec
    return inner, None, None


def _format_args(call: ast.Call, finder: _Finder) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """`.format(...)` arguments: positional (label, literal or UNSET), keyword literals."""
    positional: list[tuple[str, Any]] = []
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            break
        positional.append((finder.expr_field(arg).name, _literal(arg)))
    keyword = {k.arg: _literal(k.value) for k in call.keywords if k.arg}
    if _call_name(call) == "format_map":
        positional = []
        mapping = call.args[0] if call.args else None
        for key, value in zip(
            getattr(mapping, "keys", []), getattr(mapping, "values", []), strict=False
        ):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                keyword[key.value] = _literal(value)
    return positional, keyword


def _literal(node: ast.AST) -> Any:
    """The value of a literal expression (numbers, strings, containers), else UNSET.

    `ast.literal_eval` only folds constants; it never runs code.
    """
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNSET


def _strip(atoms: list[Atom], how: str) -> list[Atom]:
    """`str.strip()` and kin on atoms (a field counts as text)."""

    def space(a: Atom) -> bool:
        return not isinstance(a, CodeField) and a[0].isspace()

    lo, hi = 0, len(atoms)
    if how in ("strip", "lstrip"):
        while lo < hi and space(atoms[lo]):
            lo += 1
    if how in ("strip", "rstrip"):
        while hi > lo and space(atoms[hi - 1]):
            hi -= 1
    return atoms[lo:hi]


def _dedent(atoms: list[Atom]) -> list[Atom]:
    """`textwrap.dedent` on atoms: removed indentation is dropped, kept chars keep their spans.

    Same rules as textwrap: whitespace-only lines lose their blanks, and the margin is the
    longest run of spaces and tabs that every line with text starts with. A field is text.
    """
    lines: list[list[Atom]] = [[]]
    for atom in atoms:
        lines[-1].append(atom)
        if not isinstance(atom, CodeField) and atom[0] == "\n":
            lines.append([])

    def blank(atom: Atom) -> bool:
        return not isinstance(atom, CodeField) and atom[0] in " \t"

    def text(line: list[Atom]) -> list[Atom]:  # the line without its line break
        return (
            line[:-1]
            if line and not isinstance(line[-1], CodeField) and line[-1][0] == "\n"
            else line
        )

    def indent(line: list[Atom]) -> str:
        k = 0
        while k < len(line) and blank(line[k]):
            k += 1
        return _chars(line[:k])

    texts = [text(line) for line in lines]
    indents = sorted(indent(t) for t in texts if not all(map(blank, t)))
    cut = 0  # the common prefix of all indents is that of the first and last in sort order
    while indents and cut < len(indents[0]) and indents[0][cut] == indents[-1][cut]:
        cut += 1
    out: list[Atom] = []
    for line, body in zip(lines, texts, strict=True):
        if all(map(blank, body)):  # empty or whitespace-only: only the line break stays
            out += line[len(body) :]
        else:
            out += line[cut:]
    return out
