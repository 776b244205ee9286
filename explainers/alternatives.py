"""The model's own alternative answers, offered for a contrastive explanation ("why not …?"):
whole answers, each with its exact probability, best first.

How they are found (cost: one forward for the branch points, one batched forward per new
token for all branches together, one forward to score the survivors; on torch all three run
after the prompt's cached keys and values):

1. Branch points: the answer's first token, and the `MARGIN_POSITIONS` later answer tokens
   whose margin — log P(the answer's token) − log P(the best other token) — is smallest. At
   each, the model's most likely other tokens start a branch (the answer's tokens before the
   point, then that token). End-of-sequence, special and white-space-only tokens start none.
2. Each branch is completed greedily until the end of sequence, the end of the sentence or
   line it departs in (`answer_end`), or `new_tokens` tokens: a few more than the answer has
   left there.
3. A branch that says the same as the answer (`same_answer`) is dropped, and so is one that
   says the same as a likelier branch; what is left is scored by teacher forcing.

Each `Alternative`'s probability is exp(log P(text | prompt)) of its text tokenised as a foil
(`Backend.encode_target`), teacher-forced: the very figure `explain(foil=text)` reports as the
foil's. A backend without exact continuation scores, or that can rank no next tokens (a server
that returns text or generated log-probabilities only), offers none.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptxray.explainers.backends.base import Backend, common_prefix, log_softmax
from promptxray.explainers.backends.capabilities import Scoring
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import request_document
from promptxray.explainers.types import ExplainRequest

FOILS = 3  # alternatives offered by default
FIRST_BRANCHES = 4  # other tokens tried in place of the answer's first
MARGIN_POSITIONS = 2  # later answer positions with the smallest margin branched from
MARGIN_BRANCHES = 2  # other tokens tried at each of them
SLACK_TOKENS = 6  # a branch may run this many tokens past where the answer ends …
MAX_TOKENS = 48  # … and never grow by more than this

# a sentence ends at . ! ? … followed by white space, at 。！？, or at a line break
_END = re.compile(r"[.!?…](?=\s)|[。！？]|\n")


@dataclass(frozen=True)
class Alternative:
    """An answer the model could have given instead: its text (a valid foil), log P(text |
    prompt) teacher-forced, the answer token where it departs from the answer (0: the first),
    why it ends ("end": end of sequence, "sentence", "line" or "limit": the length cap) and
    where in `text` the sentence it departs in starts (a short view shows the text from there:
    what comes before is the answer's own)."""

    text: str
    logprob: float
    branch_position: int
    end: str
    sentence_start: int = 0

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "logprob": self.logprob,
            "prob": self.prob,
            "branch_position": self.branch_position,
            "end": self.end,
            "sentence_start": self.sentence_start,
        }


def words(text: str) -> list[str]:
    """`text` as words for comparing answers: NFKC, case folded, punctuation and symbols read
    as spaces, and each wide (CJK) character a word of its own."""
    out = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        kind = unicodedata.category(ch)[0]
        if kind in "PSZC":
            out.append(" ")
        elif unicodedata.east_asian_width(ch) in "WF":
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out).split()


# English words that carry no content of their own ("The capital of France: Paris" says what
# "The capital of France is Paris." says); negations and other words are kept
FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "is", "are", "was", "were", "be", "of", "it", "its", "this", "that"]
)


def same_answer(a: str, b: str) -> bool:
    """Whether two answers say the same, by this rule: after `words`, one's words run
    unbroken inside the other's (equal, a prefix: the answer cut short or continued, or the
    answer with words around it), or both are the same words in another order; the same
    again with FUNCTION_WORDS left out. Texts without words are never the same as one with
    words (and an empty answer matches nothing)."""
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return False
    if _contains(wa, wb):
        return True
    ca = [w for w in wa if w not in FUNCTION_WORDS]
    cb = [w for w in wb if w not in FUNCTION_WORDS]
    return bool(ca and cb) and _contains(ca, cb)


def _contains(wa: list[str], wb: list[str]) -> bool:
    """One word list runs unbroken inside the other, or both hold the same words."""
    ja, jb = f" {' '.join(wa)} ", f" {' '.join(wb)} "
    return ja in jb or jb in ja or Counter(wa) == Counter(wb)


def answer_end(text: str, start: int = 0) -> tuple[int, str] | None:
    """Where the first sentence or line that ends at or after character `start` of `text`
    ends (its length up to and with the sentence's mark, or before the line break) and which
    ("sentence" or "line"); None while it goes on. Leading white space is not a line."""
    lead = len(text) - len(text.lstrip())
    found = _END.search(text, max(lead, start))
    if found is None:
        return None
    if found.group() == "\n":
        return found.start(), "line"
    return found.end(), "sentence"


def sentence_start(text: str, at: int) -> int:
    """Where the sentence or line holding character `at` of `text` starts (after the last
    sentence or line end before it, and the white space after that end)."""
    begin = 0
    for found in _END.finditer(text, 0, at):
        begin = found.end()
    while begin < at and text[begin].isspace():
        begin += 1
    return begin


def new_tokens(answer_len: int, position: int) -> int:
    """How many tokens a branch departing at answer token `position` may grow by: a few more
    than the answer has left from there, capped."""
    return min(answer_len - position + SLACK_TOKENS, MAX_TOKENS)


def alternatives(
    backend: Backend, prompt_ids: Sequence[int], answer_ids: Sequence[int], k: int = FOILS
) -> list[Alternative]:
    """Up to `k` whole answers the model could have given after the prompt instead of
    `answer_ids` (the module's docstring says how), best first; none where the backend cannot
    rank next tokens or score a continuation exactly."""
    caps = backend.capabilities
    usable = caps.scoring is Scoring.PROMPT and (caps.logits or caps.next_tokens)
    if not prompt_ids or not answer_ids or k <= 0 or not usable:
        return []
    prompt = [int(t) for t in prompt_ids]
    eos = backend.eos_ids()
    answer = [int(t) for t in answer_ids]
    if len(answer) > 1 and answer[-1] in eos:
        answer = answer[:-1]
    answer_text = backend.decode(answer) if answer[-1] not in eos else ""
    branches = _branches(backend, prompt, answer)
    if not branches:
        return []
    starts = {0: 0}  # where the text departs from the answer's, by branch position
    for position, _ in branches:
        starts.setdefault(position, len(backend.decode(answer[:position])))

    def stop(ids: list[int]) -> bool:  # ids: a branch and its new tokens
        start = starts[min(common_prefix(ids, answer), len(ids) - 1)]
        return answer_end(backend.decode(ids), start) is not None

    grown = backend.complete(
        prompt,
        [b for _, b in branches],
        [new_tokens(len(answer), position) for position, _ in branches],
        stop,
    )
    found: dict[str, tuple[int, str, list[int]]] = {}  # text -> (position, end, foil ids)
    for (position, branch), more in zip(branches, grown, strict=True):
        text, end = _finished(backend, branch + more, eos, starts[position])
        if not words(text) or same_answer(text, answer_text) or text in found:
            continue
        ids = backend.encode_target(text)
        if ids and ids != answer:
            found[text] = (position, end, ids)
    if not found:
        return []
    scores = backend.continuation_logprobs(prompt, [ids for _, _, ids in found.values()])
    ranked = sorted(
        (
            Alternative(
                text, float(np.sum(lp)), position, end, sentence_start(text, starts[position])
            )
            for (text, (position, end, _)), lp in zip(found.items(), scores, strict=True)
        ),
        key=lambda a: -a.logprob,
    )
    kept: list[Alternative] = []
    for alt in ranked:  # a likelier alternative that says the same wins
        if not any(same_answer(alt.text, other.text) for other in kept):
            kept.append(alt)
    return kept[:k]


def request_alternatives(
    backend: Backend, request: ExplainRequest, answer_ids: Sequence[int], k: int = FOILS
) -> list[Alternative]:
    """`alternatives` for the prompt of a request (tokenised as `explain` does)."""
    doc = request_document(request)
    model_input = build_input(doc, backend, request.chat_template)
    return alternatives(backend, model_input.ids, answer_ids, k)


def _finished(backend: Backend, ids: list[int], eos: set[int], start: int) -> tuple[str, str]:
    """A completed branch's text, cut where the sentence or line it departs in (at character
    `start`) ends, and why it ends."""
    ended = bool(ids) and ids[-1] in eos
    text = backend.decode(ids[:-1] if ended else ids)
    cut = answer_end(text, start)
    if cut is not None:
        return text[: cut[0]].rstrip(), cut[1]
    return text.rstrip(), "end" if ended else "limit"


def _branches(
    backend: Backend, prompt: list[int], answer: list[int]
) -> list[tuple[int, list[int]]]:
    """(answer position, branch tokens) to complete: the answer's tokens before the position,
    then one of the model's likelier other tokens there (see the module's docstring)."""
    banned = backend.eos_ids() | {backend.pad_id}
    banned |= {int(t) for t in getattr(backend.tokenizer, "all_special_ids", None) or []}
    spare = len(banned) + 8  # ranked tokens looked at beyond those wanted

    def others(ranked: Sequence[int], position: int, n: int) -> list[list[int]]:
        picked: list[list[int]] = []
        for token in ranked:
            if token in banned or token == answer[position] or not backend.decode([token]).strip():
                continue
            picked.append([*answer[:position], int(token)])
            if len(picked) == n:
                break
        return picked

    if not backend.capabilities.logits:  # a server's top next tokens: the first position only
        ranked = backend.top_tokens(prompt, [len(prompt) - 1], FIRST_BRANCHES + spare)[0]
        return [(0, b) for b in others(ranked, 0, FIRST_BRANCHES)]
    logp = log_softmax(backend.continuation_logits(prompt, answer))
    wanted = max(FIRST_BRANCHES, MARGIN_BRANCHES) + spare
    order = np.argsort(-logp, axis=-1, kind="stable")[:, :wanted]
    out = [(0, b) for b in others(order[0].tolist(), 0, FIRST_BRANCHES)]
    for position in _narrowest(logp, answer)[:MARGIN_POSITIONS]:
        out += [(position, b) for b in others(order[position].tolist(), position, MARGIN_BRANCHES)]
    return out


def _narrowest(logp: np.ndarray, answer: list[int]) -> list[int]:
    """The answer's positions after the first, smallest margin first: log P(its token) −
    log P(the best other token) there."""
    margins = []
    for j in range(1, len(answer)):
        row = logp[j].copy()
        own = row[answer[j]]
        row[answer[j]] = -np.inf
        margins.append((float(own - row.max()), j))
    return [j for _, j in sorted(margins)]
