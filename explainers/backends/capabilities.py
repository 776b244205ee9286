"""What a backend can do, stated once on the backend: how exactly it scores an answer, whether
its tokens are known, whether it streams, gradients, attentions, next-token logits. Methods and
front ends ask these, never a backend's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Scoring(str, Enum):
    """How a backend learns the answer's log-probability after a prompt variant."""

    # teacher-forced: the log-probability of any given continuation, exactly (a local model,
    # or a server returning prompt log-probabilities: vLLM, SGLang)
    PROMPT = "prompt-logprobs"
    # the log-probabilities of generated tokens and their top alternatives (Chat Completions
    # `logprobs`): exact while the variant's greedy answer follows the original, else a bound
    GENERATED = "generated-logprobs"
    # sampled text only: the effect is how often the answer stays the same (an estimate with
    # a confidence interval)
    TEXT = "text-only"

    @property
    def exact(self) -> bool:
        """Whether every score is an exact log-probability (GENERATED: where it is exact)."""
        return self is Scoring.PROMPT

    @property
    def logprobs(self) -> bool:
        return self is not Scoring.TEXT


@dataclass(frozen=True)
class Capabilities:
    """A backend's declared capabilities; `Backend.capabilities` holds one."""

    scoring: Scoring = Scoring.PROMPT
    tokenizer: bool = True  # the model's own tokens are known (granularity `token`)
    streams: bool = False  # `stream_generate` yields tokens as the model makes them
    samples: bool = False  # generation at a temperature above zero (the chat's sampling)
    gradients: bool = False  # gradients on input embeddings
    attentions: bool = False  # attention weights
    logits: bool = False  # full next-token logits (`next_token_logits`)
    # a server's own top next tokens and a chosen token's log-probability (with `logits`,
    # the base class computes both from the logits)
    next_tokens: bool = False
    remote: bool = False  # prompts leave this machine (budget, endpoint named in results)

    def describe(self) -> str:
        """One line naming what this backend offers (for errors and `--list-backends`)."""
        offered = [self.scoring.value]
        offered += [
            name
            for name, on in (
                ("tokenizer", self.tokenizer),
                ("streaming", self.streams),
                ("gradients", self.gradients),
                ("attentions", self.attentions),
                ("logits", self.logits),
            )
            if on
        ]
        return ", ".join(offered)
