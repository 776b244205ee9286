"""The lookup every nl module shares: a language's template table (an unknown language is a
request error naming the known) and quoting in that language's marks. Its own module so the
wording modules (summary_text, stage_text, pairs_text, ...) can all import it."""

from __future__ import annotations

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.nl.figures import short
from promptxray.explainers.nl.templates import LANGUAGES, TEMPLATES


def templates(lang: str, tables: dict[str, dict[str, str]] = TEMPLATES) -> dict[str, str]:
    """The template table of `lang` (in `tables`: every language has one); an unknown language
    is a request error naming the known."""
    table = tables.get(lang)
    if table is None:
        raise InvalidRequestError(
            f"unknown language {lang!r}; supported languages: {', '.join(LANGUAGES)}"
        )
    return table


def quote(t: dict[str, str], text: str) -> str:
    """`text` in the language's quotation marks (`t`: a table with a "quote" template)."""
    return t["quote"].format(text=text)


def quote_short(t: dict[str, str], text: str, limit: int = 40) -> str:
    """`text` quoted for a short view: white space folded, long text cut (`figures.short`)."""
    return quote(t, short(text, limit))
