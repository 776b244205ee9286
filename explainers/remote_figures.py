"""What an explanation scored by a server records about its figures: the model, endpoint,
tier and cost, and for each part whose figure is not exact whether it is a bound (and what
the model answers without the part) or a sampled estimate (and its 95% interval)."""

from __future__ import annotations

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import PartFigure, RemoteInfo


def remote_figures(ctx: MethodContext, backend: Backend) -> RemoteInfo | None:
    """The explanation's `remote` part (None for a model run here)."""
    from promptxray.explainers.backends.openai_chat import difference_interval

    info = backend.remote_info()
    if info is None:
        return None
    base = backend.score_note(ctx.input.ids, ctx.target_ids)
    if base is not None and base.kind == "estimate":
        info.base_low, info.base_high = base.low, base.high
    for i, unit in enumerate(ctx.units):
        note = backend.score_note(ctx.ids_without(unit), ctx.target_ids)
        if note is None or note.kind == "exact":
            continue
        if note.kind == "bound":
            info.parts.append(PartFigure(i, "bound", answer=note.answer))
        elif base is not None:
            low, high = difference_interval(base.samples, note.samples)
            info.parts.append(PartFigure(i, "estimate", low=low, high=high))
    return info
