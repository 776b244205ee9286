"""The server's commands (workspace/executeCommand) and its custom request.

- `promptxray.explain` uri [method [target [granularity]]] (or uri, {method, target, ...}):
  explain now, keeping the given values as the document's own overrides.
- `promptxray.explainWith` uri [method]: the same with a method the user picks if not given.
- `promptxray.setTarget` uri target|null: explain this continuation (null: the model's own).
- `promptxray.whyNot` uri foil|null: explain why the answer rather than `foil` (contrastive;
  the code lenses offer the model's own alternative answers); null drops the foil.
- `promptxray.compareMethods` uri [methods]: rank agreement of two or more methods; the
  document's own method, overrides and shown explanation stay as they were.
- `promptxray.showReport` uri: the full report of the document's explanation, returned as
  `{"uri", "text", "markdown"}` and shown with window/showMessage (the hover links to it).
- `promptxray.diffWithSaved` uri: what the edits since the last save (or the opening) changed:
  the current explanation against the saved version's, the current text scored against the
  saved answer when its own differs (`diff.rescore_target`, the policy `promptxray diff`
  follows too); `{"uri", "text", "markdown", "diff"}` (the text and Markdown in the server's
  language), the diff as `ExplanationDiff.to_dict()`. When an assertion of the document's
  `checks:` fails now, the hunks of the edit are reverted one at a time (server/blame.py):
  the verdict leads the text and Markdown (what was tried in a <details> block), and
  `"blame"` holds it as data.
- request `promptxray/explanation` {uri}: `Explanation.to_dict()` (explaining first if needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from promptxray.explainers import nl
from promptxray.server.compare import rank_agreement
from promptxray.server.convert import escape_md
from promptxray.server.documents import OVERRIDABLE
from promptxray.server.scheduler import JobResult

if TYPE_CHECKING:
    from promptxray.server.server import PromptXrayServer

DEFAULT_COMPARISON = ["occlusion", "gradient_x_input"]


def _invalid(message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams.of(ValueError(message))


def _why(result: JobResult | None) -> str:
    if result is None:
        return "superseded by a newer edit"
    return str(result.error) if result.error else "no explanation"


def result_summary(result: JobResult | None) -> dict[str, Any]:
    """What a command returns: the explanation's headline, or why there is none."""
    if result is None:
        return {"superseded": True}
    if result.error is not None:
        return {"error": str(result.error)}
    expl = result.explanation
    assert expl is not None
    return {
        "target": expl.target.text,
        "prob": expl.target.prob,
        "method": expl.method,
        "granularity": expl.granularity,
        "wall_time_s": expl.wall_time_s,
        "top": [s.text for s in expl.ranked_spans()[:5]],
        **({"foil": expl.foil.text, "foil_prob": expl.foil.prob} if expl.foil else {}),
    }


def _kind(expl: Any) -> tuple[Any, ...]:
    """What must match for two explanations' scores to be compared (diffWithSaved)."""
    foil = getattr(expl, "foil", None)
    return (expl.method, expl.granularity, foil.text if foil is not None else None)


class Commands:
    """The command handlers of one server (their arguments as the client sends them)."""

    def __init__(self, ls: PromptXrayServer) -> None:
        self.ls = ls

    def _uri_args(self, args: tuple[Any, ...]) -> tuple[str, list[Any]]:
        if not args or not isinstance(args[0], str):
            raise _invalid("the first argument must be a document uri")
        self.ls.documents.require(args[0])
        return args[0], list(args[1:])

    async def explain(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        if rest and isinstance(rest[0], dict):
            overrides = {k: rest[0][k] for k in OVERRIDABLE if k in rest[0]}
        else:
            overrides = {k: v for k, v in zip(OVERRIDABLE, rest, strict=False) if v is not None}
        return result_summary(await self.ls.documents.run(uri, overrides))

    async def explain_with(self, args: tuple[Any, ...]) -> dict[str, Any]:
        from promptxray.explainers.registry import list_methods

        uri, rest = self._uri_args(args)
        method = rest[0] if rest else None
        if method is None:
            choice = await self.ls.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Info,
                    message="Explain with which method?",
                    actions=[types.MessageActionItem(title=m.name) for m in list_methods()],
                )
            )
            if choice is None:
                return {"cancelled": True}
            method = choice.title
        return result_summary(await self.ls.documents.run(uri, {"method": method}))

    async def set_target(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        target = rest[0] if rest else None
        if target is not None and not isinstance(target, str):
            raise _invalid("the target must be a string or null")
        return result_summary(await self.ls.documents.run(uri, {"target": target or None}))

    async def why_not(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        foil = rest[0] if rest else None
        if foil is not None and not isinstance(foil, str):
            raise _invalid("the foil must be a string or null")
        return result_summary(await self.ls.documents.run(uri, {"foil": foil or None}))

    async def compare(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, rest = self._uri_args(args)
        methods = rest[0] if rest else DEFAULT_COMPARISON
        if not isinstance(methods, list) or len(methods) < 2:
            raise _invalid("compareMethods takes a list of 2+ methods")
        doc = self.ls.documents.docs[uri]
        granularity = doc.overrides.get("granularity", self.ls.settings.granularity)
        # rankings compare only over the same units: "auto" levels differ per method
        extra = {"granularity": "word"} if granularity == "auto" else {}
        results = {}
        for method in methods:
            result = await self.ls.documents.run_aside(uri, {"method": method, **extra})
            if result is None or result.explanation is None:
                raise _invalid(f"{method} failed: {_why(result)}")
            results[method] = result.explanation
        report = rank_agreement(results)
        self.ls.message(report["summary"])
        return report

    async def show_report(self, args: tuple[Any, ...]) -> dict[str, Any]:
        uri, _ = self._uri_args(args)
        shown = self.ls.documents.shown(uri)
        expl = shown.expl if shown else await self._explained(uri)
        s = self.ls.settings
        report = nl.describe(expl, s.language, threshold=s.unnecessaryThreshold)
        self.ls.message(report)
        return {"uri": uri, "text": report, "markdown": escape_md(report)}

    async def diff_with_saved(self, args: tuple[Any, ...]) -> dict[str, Any]:
        from promptxray.explainers.diff import diff_explanations, rescore_target
        from promptxray.explainers.nl.blame_text import blame_markdown, verdict
        from promptxray.explainers.nl.diff_text import render_diff_markdown, render_diff_text
        from promptxray.server.blame import blame_saved_edit, blame_view

        uri, _ = self._uri_args(args)
        docs = self.ls.documents
        doc, text = docs.docs[uri], docs.require(uri).source
        if doc.saved_text is None:
            raise _invalid("this document has no saved version yet")
        shown = docs.shown(uri)
        new = current = shown.expl if shown else await self._explained(uri)
        old = doc.saved
        if old is None or _kind(old) != _kind(new):  # saved under other settings
            old = await self._aside(uri, {}, doc.saved_text)
        own = new.target
        target = rescore_target(old, own)
        if target is not None:  # score the edit against the saved answer
            new = await self._aside(uri, {"target": target.text}, text)
        diff = diff_explanations(old, new, doc.saved_text, text, new_own=own)
        lang = self.ls.settings.language
        result = {
            "uri": uri,
            "text": render_diff_text(diff, doc.saved_text, text, more=False, lang=lang),
            "markdown": render_diff_markdown(diff, doc.saved_text, text, lang=lang),
            "diff": diff.to_dict(),
        }
        blame = await blame_saved_edit(self.ls, uri, text, doc.saved_text, current)
        if blame is not None:  # a check fails now: which edit broke it, first
            head, rest = result["markdown"].split("\n", 1)
            result["markdown"] = f"{head}\n\n{blame_markdown(blame, lang)}{rest}"
            result["text"] = f"{verdict(blame, lang)}\n{result['text']}"
            result["blame"] = blame_view(blame, lang)
        return result

    async def _aside(self, uri: str, overrides: dict[str, Any], text: str) -> Any:
        result = await self.ls.documents.run_aside(uri, overrides, text)
        if result is None or result.explanation is None:
            raise _invalid(_why(result))
        return result.explanation

    async def explanation(self, params: Any) -> dict[str, Any]:
        uri = params.get("uri") if isinstance(params, dict) else getattr(params, "uri", None)
        if not isinstance(uri, str):
            raise _invalid("promptxray/explanation takes {uri}")
        self.ls.documents.require(uri)
        shown = self.ls.documents.shown(uri)
        return (shown.expl if shown else await self._explained(uri)).to_dict()

    async def _explained(self, uri: str) -> Any:
        result = await self.ls.documents.run(uri)
        if result is None or result.explanation is None:
            raise _invalid(_why(result))
        return result.explanation
