"""The model's own account of its answer, checked: ask it which words of the prompt made it
answer as it did, and mark each part it names supported (it overlaps a top driver), not
supported, or not in the prompt. A model's account of itself is a claim to test, not an
explanation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.details import Claim, ClaimStatus, SelfExplanation
from promptxray.explainers.nl.figures import finite_score, format_signed
from promptxray.explainers.nl.tables import templates as _templates
from promptxray.explainers.targets import check_context
from promptxray.explainers.types import Explanation, Span

SUPPORT_FRACTION = 0.2  # the top max(3, 20% of spans) drivers count
SUPPORT_MIN = 3


def _quote(t: dict[str, str], text: str) -> str:
    return t["quote"].format(text=text)


# Quoted strings: straight, curly, CJK and back quotes; single quotes only when they are not
# apostrophes (not preceded or followed by a word character).
_QUOTED = re.compile(
    r'"([^"\n]+)"|“([^”\n]+)”|「([^」\n]+)」|『([^』\n]+)』|`([^`\n]+)`|‘([^’\n]+)’'
    r"|(?<!\w)'([^'\n]+)'(?!\w)"
)
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z0-9_]")


def extract_named(answer: str, prompt_text: str) -> list[str]:
    """The strings the model names: quoted strings in its answer, else its words that occur as
    words in the prompt. Case-insensitively de-duplicated, in order of appearance."""
    found = [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(answer)]
    found = [f for f in found if f]
    if not found:
        prompt_words = {w.lower() for w in _WORD.findall(prompt_text)}
        found = [w for w in _WORD.findall(answer) if w.lower() in prompt_words]
    seen: set[str] = set()
    out = []
    for f in found:
        if f.lower() not in seen:
            seen.add(f.lower())
            out.append(f)
    return out


def _occurrences(needle: str, haystack: str) -> list[tuple[int, int]]:
    """Case-insensitive places of `needle` in `haystack`, not inside a longer Latin word (so
    "a" is not found in "capital"); edges in scripts written without spaces match anywhere."""
    if not needle:
        return []
    head = r"(?<![A-Za-z0-9_])" if _LATIN.match(needle[0]) else ""
    tail = r"(?![A-Za-z0-9_])" if _LATIN.match(needle[-1]) else ""
    pattern = head + re.escape(needle) + tail
    return [m.span() for m in re.finditer(pattern, haystack, flags=re.IGNORECASE)]


def _span_places(span: Span, prompt_text: str) -> list[tuple[int, int]]:
    """Where a span lies in `prompt_text`: its own offsets when they match, else where its
    text occurs (the prompt may be given without the file's front matter)."""
    if prompt_text[span.start : span.end] == span.text and span.text:
        return [(span.start, span.end)]
    return [m.span() for m in re.finditer(re.escape(span.text), prompt_text)] if span.text else []


def support_k(n_spans: int) -> int:
    """How many top drivers a named part may overlap to count as supported."""
    return max(SUPPORT_MIN, math.ceil(SUPPORT_FRACTION * n_spans))


def top_drivers(explanation: Explanation) -> list[Span]:
    """The spans a named part must overlap to be supported: the top `support_k` by positive
    score (ties: earlier first)."""
    positive = [s for s in explanation.spans if finite_score(s.score) > 0]
    positive.sort(key=lambda s: (-finite_score(s.score), s.start))
    return positive[: support_k(len(explanation.spans))]


def check_claims(named: list[str], explanation: Explanation, prompt_text: str) -> list[Claim]:
    """Check each named string against the measured attributions: supported when it overlaps
    one of the top-k spans by positive score; absent from the prompt is reported as such."""
    top = {id(s) for s in top_drivers(explanation)}
    located = [(s, _span_places(s, prompt_text)) for s in explanation.spans]
    claims = []
    for text in named:
        places = _occurrences(text, prompt_text)
        if not places:
            claims.append(Claim(text, False, "not_in_prompt"))
            continue
        touched = [
            s for s, spots in located if any(a < d and c < b for a, b in places for c, d in spots)
        ]
        score = max((finite_score(s.score) for s in touched), default=None)
        touched.sort(key=lambda s: (-finite_score(s.score), s.start))
        matched = [s.text for s in touched if id(s) in top]
        status: ClaimStatus = "supported" if matched else "not_supported"
        claims.append(Claim(text, bool(matched), status, score, matched))
    return claims


def _clean_decode(backend: Backend, ids: list[int]) -> str:
    """Generated text without special tokens (end of turn, end of sequence)."""
    special = set(getattr(backend.tokenizer, "all_special_ids", None) or []) | backend.eos_ids()
    return backend.decode([i for i in ids if i not in special]).strip()


def self_explain(
    backend: Backend,
    explanation: Explanation,
    prompt: str | Sequence[str],
    lang: str = "en",
    max_new_tokens: int = 48,
) -> SelfExplanation:
    """Ask the model (greedily, through its chat template when it has one) which words of the
    prompt made it give the explained answer, and check what it names against the attributions.
    `prompt`: its text, or its messages' contents (shown to the model as one user turn, the
    messages a blank line apart)."""
    prompt_text = prompt if isinstance(prompt, str) else "\n\n".join(prompt)
    t = _templates(lang)
    question = t["question"]
    answer_text = explanation.target.text
    chat = backend.has_chat_template
    if chat:
        rendered = backend.render_chat(
            [
                {"role": "user", "content": prompt_text},
                {"role": "assistant", "content": answer_text},
                {"role": "user", "content": question},
            ]
        )
    else:
        rendered = f"User: {prompt_text}\nAssistant: {answer_text}\nUser: {question}\nAssistant:"
    ids, _ = backend.encode(rendered, add_special_tokens=not chat)
    check_context(backend, len(ids), max_new_tokens)
    answer = _clean_decode(backend, backend.generate(ids, max_new_tokens))
    claims = check_claims(extract_named(answer, prompt_text), explanation, prompt_text)
    drivers = [s.text for s in top_drivers(explanation)]
    return SelfExplanation(
        question, answer, claims, chat, support_k(len(explanation.spans)), drivers
    )


def describe_self_explanation(se: SelfExplanation, lang: str = "en") -> str:
    """The model's answer and, one line each, whether what it named is borne out."""
    t = _templates(lang)
    lines = [t["se_head"].format(answer=_quote(t, " ".join(se.answer.split())))]
    if not se.claims:
        lines.append(t["se_none"])
    for c in se.claims:
        span = _quote(t, c.text)
        if c.status == "supported":
            matched = t["list_sep"].join(_quote(t, m) for m in c.matched)
            lines.append("- " + t["se_supported"].format(span=span, matched=matched, k=se.top_k))
        elif c.status == "not_supported":
            score = "" if c.score is None else t["se_score"].format(value=format_signed(c.score))
            lines.append("- " + t["se_not_supported"].format(span=span, score=score))
        else:
            lines.append("- " + t["se_not_in_prompt"].format(span=span))
    checked = [c for c in se.claims if c.status != "not_in_prompt"]
    if checked:
        lines.append(
            t["se_summary"].format(
                supported=sum(c.supported for c in checked), checked=len(checked)
            )
        )
    return "\n".join(lines)


def self_explanation_line(se: SelfExplanation, lang: str = "en") -> str:
    """One line for a hover or bubble: how many of the parts the model named are supported."""
    checked = [c for c in se.claims if c.status != "not_in_prompt"]
    return _templates(lang)["se_short"].format(
        supported=sum(c.supported for c in checked), checked=len(checked)
    )
