"""Typed errors: every bad input raises one of these with a message a user can act on.

Front ends catch `PromptXrayError` and show its message (CLI: stderr + exit code 2; the server:
a diagnostic; the chat: an error note). Nothing here imports torch.
"""

from __future__ import annotations


class PromptXrayError(Exception):
    """Base class of the errors promptxray reports to users."""

    exit_code = 2


class DocumentError(PromptXrayError):
    """The prompt file cannot be read as a prompt; `offset` is where in the file, if known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class EmptyPromptError(DocumentError):
    """The prompt has no text to explain."""


class BinaryFileError(DocumentError):
    """The file is binary or not valid UTF-8."""


class FrontMatterError(DocumentError):
    """The YAML front matter does not parse or has the wrong shape."""


class MissingSampleError(DocumentError):
    """A template variable has no sample value to fill it with."""


class TemplateSyntaxError(DocumentError):
    """The template does not parse with its format's engine (line and column in the message)."""


class UnsupportedTemplateError(DocumentError):
    """The template uses something promptxray refuses to render: a helper with no model input
    to explain (`{{media}}`, `{{history}}`), a partial outside the prompt's folder, code."""


class ContextLengthError(PromptXrayError):
    """The prompt (plus the target) does not fit in the model's context."""

    def __init__(self, prompt_tokens: int, extra_tokens: int, limit: int, model: str) -> None:
        self.prompt_tokens = prompt_tokens
        self.extra_tokens = extra_tokens
        self.limit = limit
        super().__init__(
            f"the prompt is {prompt_tokens} tokens (plus {extra_tokens} target tokens) but "
            f"{model} has a context of {limit} tokens; shorten the prompt by at least "
            f"{prompt_tokens + extra_tokens - limit} tokens"
        )


class ModelLoadError(PromptXrayError):
    """The model cannot be found or is not a causal language model."""


class UnknownMethodError(PromptXrayError):
    """No explainer is registered under that name."""


class UnsupportedMethodError(PromptXrayError):
    """The method needs a capability the backend lacks; the message names what would work."""


class InvalidRequestError(PromptXrayError):
    """A setting of the request is out of range or of the wrong kind."""


class EngineError(PromptXrayError):
    """A server (the `openai` backend) cannot be reached or answered with an error; the
    message says what to do. `retry`: whether trying again may help; `status`, `detail`: the
    HTTP answer, if any; `retry_after`: the seconds a 429 answer asked to wait."""

    def __init__(
        self, message: str, retry: bool = False, status: int = 0, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.detail = detail
        self.retry_after: float | None = None


class MemoryLimitError(PromptXrayError):
    """A method's smallest unit of work does not fit in the memory available now.

    Methods catch it and fall back to line-level occlusion (explainers/methods/degrade.py),
    saying so in the result; it reaches users only where no fallback applies."""

    def __init__(self, what: str, tokens: int, needed: int, available: int) -> None:
        self.what = what
        self.tokens = tokens
        self.needed = needed
        self.available = available
        super().__init__(
            f"{what} needs about {size(needed)} at {tokens} tokens, more than the "
            f"{size(available)} of memory available; occlusion, shapley, surrogate and "
            "counterfactual run in batches that fit (use line granularity on long prompts)"
        )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's long message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def size(n: float) -> str:
    """Bytes for people: 1.5 GiB, 300 MiB, 12 KiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{int(n)} B"


class BudgetError(PromptXrayError):
    """An explanation would send more requests to a server than the budget allows; the
    message gives the estimate (requests, tokens, price) before any of that work starts."""
