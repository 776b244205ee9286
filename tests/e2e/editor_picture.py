"""A picture of what VS Code shows for a prompt file, made only from what the real language
server returned: an HTML page that imitates VS Code's dark editor (Dark+ colours), for the
README's screenshot (tests/e2e/test_readme_pictures.py).

Everything on the page comes from the server's answers (semantic tokens decoded with the
legend of its initialize result, inlay hints, code lenses, published diagnostics, one hover)
and from the VS Code client's own colour rules (`configurationDefaults` in
client-vscode/package.json); the only other things drawn are VS Code's frame (a tab with the
file name, line numbers) and its default colours for diagnostics, inlay hints and hovers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from markdown_it import MarkdownIt

from .lsp_harness import decode_semantic_tokens

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "client-vscode" / "package.json"
FOREGROUND = "#d4d4d4"  # Dark+ editor.foreground
INFO = "#3794ff"  # Dark+ editorInfo.foreground (the squiggle under an Information diagnostic)
WARNING = "#cca700"
ERROR = "#f14c4c"


@dataclass(frozen=True)
class Token:
    """One decoded semantic token: a piece of one line, its type and modifiers by name."""

    line: int
    start: int  # UTF-16 code units, as LSP counts them
    length: int
    type: str
    modifiers: tuple[str, ...]


@dataclass(frozen=True)
class Hint:
    """An inlay hint: a label shown between characters, greyed out."""

    line: int
    character: int
    label: str
    padding_left: bool = False
    padding_right: bool = False


@dataclass(frozen=True)
class Mark:
    """A published diagnostic: squiggled (information, warning, error) or faded (a hint tagged
    unnecessary)."""

    start: tuple[int, int]
    end: tuple[int, int]
    severity: int
    message: str
    source: str = ""
    unnecessary: bool = False


@dataclass(frozen=True)
class HoverBox:
    """The hover the server returned at a position: its Markdown and the range it covers."""

    start: tuple[int, int]
    end: tuple[int, int]
    markdown: str


@dataclass
class EditorPicture:
    """Everything one editor screenshot shows, as the server sent it."""

    file_name: str
    text: str
    tokens: list[Token] = field(default_factory=list)
    hints: list[Hint] = field(default_factory=list)
    lenses: dict[int, list[str]] = field(default_factory=dict)  # line -> lens titles
    marks: list[Mark] = field(default_factory=list)
    hover: HoverBox | None = None

    @classmethod
    def from_lsp(
        cls,
        file_name: str,
        text: str,
        legend: types.SemanticTokensLegend,
        tokens: types.SemanticTokens | None,
        hints: Sequence[types.InlayHint] | None,
        lenses: Sequence[types.CodeLens] | None,
        diagnostics: Sequence[types.Diagnostic],
        hover: types.Hover | None,
    ) -> EditorPicture:
        """The picture from the server's own LSP objects (the token types and modifiers are
        named with `legend`, from the server's initialize result)."""
        decoded = [
            Token(
                line,
                start,
                length,
                legend.token_types[kind],
                tuple(m for i, m in enumerate(legend.token_modifiers) if mods >> i & 1),
            )
            for line, start, length, kind, mods in decode_semantic_tokens(
                tokens.data if tokens else []
            )
        ]
        hint_list = [
            Hint(
                h.position.line,
                h.position.character,
                h.label if isinstance(h.label, str) else "".join(p.value for p in h.label),
                bool(h.padding_left),
                bool(h.padding_right),
            )
            for h in hints or []
        ]
        lens_titles: dict[int, list[str]] = {}
        for lens in lenses or []:
            if lens.command is not None:
                lens_titles.setdefault(lens.range.start.line, []).append(lens.command.title)
        marks = [
            Mark(
                (d.range.start.line, d.range.start.character),
                (d.range.end.line, d.range.end.character),
                int(d.severity or types.DiagnosticSeverity.Error),
                d.message,
                d.source or "",
                types.DiagnosticTag.Unnecessary in (d.tags or []),
            )
            for d in diagnostics
        ]
        box = None
        if hover is not None and isinstance(hover.contents, types.MarkupContent):
            assert hover.range is not None, "the server's hovers carry their span's range"
            box = HoverBox(
                (hover.range.start.line, hover.range.start.character),
                (hover.range.end.line, hover.range.end.character),
                hover.contents.value,
            )
        return cls(file_name, text, decoded, hint_list, lens_titles, marks, box)


def token_rules(package_json: Path = PACKAGE_JSON) -> dict[str, dict[str, Any]]:
    """The client's semantic-token colour rules (`configurationDefaults` →
    `editor.semanticTokenColorCustomizations` → `rules`); a bare colour string becomes
    `{"foreground": colour}` as VS Code reads it."""
    manifest = json.loads(package_json.read_text(encoding="utf-8"))
    rules = manifest["contributes"]["configurationDefaults"][
        "editor.semanticTokenColorCustomizations"
    ]["rules"]
    return {k: v if isinstance(v, dict) else {"foreground": v} for k, v in rules.items()}


def token_style(token: Token, rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The style VS Code gives `token`: every rule whose selector (`type` or `*`, then
    `.modifier`s) matches it, the more specific ones overriding the less specific ones."""
    matching = []
    for selector, style in rules.items():
        kind, *mods = selector.split(".")
        if kind in ("*", token.type) and set(mods) <= set(token.modifiers):
            matching.append((len(mods) + (kind != "*"), style))
    merged: dict[str, Any] = {}
    for _, style in sorted(matching, key=lambda m: m[0]):
        merged.update(style)
    return merged


def _css(style: dict[str, Any]) -> str:
    """A VS Code token style as inline CSS."""
    out = []
    if style.get("foreground"):
        out.append(f"color:{style['foreground']}")
    if style.get("background"):  # not a VS Code rule property today; drawn if a rule has it
        out.append(f"background:{style['background']}")
    if style.get("bold"):
        out.append("font-weight:bold")
    if style.get("italic"):
        out.append("font-style:italic")
    lines = [n for n in ("underline", "strikethrough") if style.get(n)]
    if lines:
        names = " ".join("line-through" if n == "strikethrough" else n for n in lines)
        out.append(f"text-decoration:{names}")
    return ";".join(out)


def _index(line: str, utf16: int) -> int:
    """The Python index of a UTF-16 offset into `line` (LSP's default position encoding)."""
    units = 0
    for i, ch in enumerate(line):
        if units >= utf16:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def _line_range(
    start: tuple[int, int], end: tuple[int, int], line: int, text: str
) -> tuple[int, int] | None:
    """The [a, b) Python indices of the part of a range on `line`, or None."""
    if not start[0] <= line <= end[0]:
        return None
    a = _index(text, start[1]) if start[0] == line else 0
    b = _index(text, end[1]) if end[0] == line else len(text)
    return (a, b) if b > a or start == end else None


def _render_line(
    n: int, text: str, pic: EditorPicture, rules: dict[str, dict[str, Any]], md: MarkdownIt
) -> str:
    """Line `n` (0-based) as HTML: its code lens line above it, its line number, its text cut
    into pieces at every token, diagnostic, hover and inlay-hint boundary."""
    styled: list[tuple[int, int, str]] = []  # (a, b, css) of the semantic tokens
    for t in pic.tokens:
        if t.line == n:
            a = _index(text, t.start)
            styled.append((a, _index(text, t.start + t.length), _css(token_style(t, rules))))
    marks = [(r, m) for m in pic.marks if (r := _line_range(m.start, m.end, n, text))]
    hover = _line_range(pic.hover.start, pic.hover.end, n, text) if pic.hover else None
    hints: dict[int, list[Hint]] = {}
    for h in pic.hints:
        if h.line == n:
            hints.setdefault(_index(text, h.character), []).append(h)
    cuts = {0, len(text), *hints}
    for a, b, _ in styled:
        cuts |= {a, b}
    for (a, b), _ in marks:
        cuts |= {a, b}
    if hover:
        cuts |= set(hover)
    points = sorted(c for c in cuts if 0 <= c <= len(text))
    html_parts: list[str] = []
    for i, a in enumerate(points):
        for h in hints.get(a, []):
            cls = "hint" + (" pl" if h.padding_left else "") + (" pr" if h.padding_right else "")
            html_parts.append(f'<span class="{cls}">{html.escape(h.label)}</span>')
        if hover and a == hover[0] and pic.hover and pic.hover.start[0] == n:
            html_parts.append(f'<span class="hover-anchor">{_hover_box(pic, md)}</span>')
        if i + 1 == len(points):
            break
        b = points[i + 1]
        piece = html.escape(text[a:b])
        css = next((c for x, y, c in styled if x <= a and b <= y), "")
        piece = f'<span style="{css}">{piece}</span>' if css else piece
        for (x, y), m in marks:
            if x <= a and b <= y:
                if m.unnecessary:
                    piece = f'<span class="faded">{piece}</span>'
                elif m.severity <= types.DiagnosticSeverity.Information:
                    piece = f'<span class="squiggle s{m.severity}">{piece}</span>'
        if hover and hover[0] <= a and b <= hover[1]:
            piece = f'<span class="hover-range">{piece}</span>'
        html_parts.append(piece)
    lens = ""
    if n in pic.lenses:
        indent = len(text) - len(text.lstrip(" "))
        titles = " | ".join(html.escape(t) for t in pic.lenses[n])
        lens = (
            '<div class="row lens"><span class="gutter"></span>'
            f"<span>{' ' * indent}{titles}</span></div>"
        )
    code = "".join(html_parts) or "&#8203;"
    return (
        f'{lens}<div class="row"><span class="gutter">{n + 1}</span>'
        f'<span class="code">{code}</span></div>'
    )


def _hover_box(pic: EditorPicture, md: MarkdownIt) -> str:
    """VS Code's hover, to be placed under the start of the hovered span: the diagnostics
    there, then the provider's Markdown."""
    assert pic.hover is not None
    sections = []
    for m in pic.marks:
        if m.unnecessary or m.severity > types.DiagnosticSeverity.Information:
            continue
        if m.start <= pic.hover.start < m.end or m.start == pic.hover.start:
            source = f' <span class="source">{html.escape(m.source)}</span>' if m.source else ""
            sections.append(f'<div class="section marker">{html.escape(m.message)}{source}</div>')
    sections.append(f'<div class="section markdown">{md.render(pic.hover.markdown)}</div>')
    return f'<div class="hover">{"".join(sections)}</div>'


CSS = """
body { margin: 0; background: #1e1e1e; font-family: -apple-system, "Segoe UI", Ubuntu,
  "Droid Sans", sans-serif; }
.window { width: 100%; background: #1e1e1e; }
.tabs { background: #252526; height: 35px; display: flex; }
.tab { background: #1e1e1e; color: #ffffff; font-size: 13px; padding: 0 16px; line-height: 35px;
  border-top: 1px solid #0078d4; }
.editor { padding: 6px 0 24px 0; font-family: "DejaVu Sans Mono", "Droid Sans Mono",
  Consolas, monospace; font-size: 14px; line-height: 19px; color: #d4d4d4; }
.row { display: flex; white-space: pre; position: relative; }
.gutter { width: 52px; padding-right: 26px; text-align: right; color: #858585;
  flex: none; }
.code { position: relative; flex: 1; white-space: pre-wrap; }
.lens { white-space: pre-wrap; font-family: -apple-system, "Segoe UI", Ubuntu, sans-serif;
  font-size: 12px; color: #999999; line-height: 19px; }
.hint { font-size: 12.5px; color: #969696; background: rgba(97, 97, 97, 0.35);
  border-radius: 3px; padding: 0 4px; vertical-align: 1px; }
.hint.pl { margin-left: 4px; } .hint.pr { margin-right: 4px; }
.faded { opacity: 0.45; }
.squiggle { text-decoration: underline wavy; text-decoration-skip-ink: none;
  text-underline-offset: 3px; }
.s1 { text-decoration-color: #f14c4c; } .s2 { text-decoration-color: #cca700; }
.s3 { text-decoration-color: #3794ff; }
.hover-range { background: rgba(38, 79, 120, 0.45); }
.hover-anchor { position: relative; display: inline-block; width: 0; height: 19px;
  vertical-align: top; }
.hover { position: absolute; top: 25px; left: 0; z-index: 10; width: 520px; white-space: normal;
  background: #252526; border: 1px solid #454545; border-radius: 3px; color: #cccccc;
  font-family: -apple-system, "Segoe UI", Ubuntu, "Droid Sans", sans-serif; font-size: 13px;
  line-height: 19px; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.6); }
.hover .section { padding: 4px 8px; }
.hover .section + .section { border-top: 1px solid rgba(69, 69, 69, 0.9); }
.hover p { margin: 6px 0; } .hover em { color: #bbbbbb; }
.hover code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12.5px;
  color: #d7ba7d; background: rgba(255, 255, 255, 0.06); border-radius: 3px; padding: 0 2px; }
.hover a { color: #3794ff; text-decoration: none; }
.hover .source { color: #999999; margin-left: 6px; }
"""


def render_html(pic: EditorPicture, rules: dict[str, dict[str, Any]] | None = None) -> str:
    """A self-contained page imitating VS Code's dark editor showing `pic` (the hover box is
    positioned under its span, over the lines below it: leave room under the text)."""
    rules = token_rules() if rules is None else rules
    md = MarkdownIt("commonmark")
    lines = pic.text.split("\n")
    body = "".join(_render_line(n, line, pic, rules, md) for n, line in enumerate(lines))
    name = html.escape(pic.file_name)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{name}</title>'
        f"<style>{CSS}</style></head><body><div class='window'>"
        f"<div class='tabs'><div class='tab'>{name}</div></div>"
        f"<div class='editor' id='editor'>{body}</div></div></body></html>"
    )
