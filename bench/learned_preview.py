"""Would an AT2-style learned preview be faithful here? (issue 23; not a test, not shipped)

AT2 scores a part of the prompt from one forward: the attention the answer's positions pay to
it, per layer and head, weighted by coefficients fitted to the model's own ablation results.
This fits those weights for the default model to exact line-level occlusion on the shared
prompts (bench/prompts.py, the examples, the two decisive-line prompts of stages.py and the
1.3k prompt) and measures each prompt held out (leave one prompt out): Spearman over its lines
and the top 3 lines shared with exact. A preview would be shown only if it met the floor the
anytime stages must meet (Spearman ≥ 0.8, 2 of the top 3); bench/README.md has the result.

    python bench/learned_preview.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.prompts import PROMPTS
from bench.prompts_long import LONG_PROMPTS
from bench.stages import EXTRA

REPO = Path(__file__).resolve().parents[1]


def features_and_scores(backend, name: str, text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per line: the attention the answer's positions pay to its tokens, per (layer, head),
    averaged over those positions; and its exact removal effect."""
    import torch

    from promptxray.explainers.explain import prepare
    from promptxray.explainers.hierarchy import line_pass
    from promptxray.explainers.registry import get_method
    from promptxray.explainers.types import ExplainRequest

    path = name if "." in name else f"{name}.prompt"
    _, prep = prepare(ExplainRequest(text=text, path=path, granularity="line"), backend)
    ctx = prep.ctx
    units, exact = line_pass(ctx, prep.source, get_method("occlusion"))
    if len(units) < 3:
        return None
    ids = list(ctx.input.ids) + list(ctx.target_ids)[:-1]
    model = backend.model
    model.set_attn_implementation("eager")  # attention weights are returned by eager only
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True, logits_to_keep=1)
    finally:
        model.set_attn_implementation("sdpa")
    answer = list(range(len(ctx.input.ids) - 1, len(ids)))
    positions = [[ctx.input.positions[t] for t in unit] for unit in units]
    feats = np.zeros((len(units), len(out.attentions), out.attentions[0].shape[1]))
    for layer, weights in enumerate(out.attentions):
        paid = weights[0][:, answer, :].mean(1)  # heads × keys
        for i, where in enumerate(positions):
            feats[i, layer] = paid[:, where].sum(-1).numpy()
    return feats.reshape(len(units), -1), np.asarray(exact)


def main() -> None:
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.metrics import spearman

    backend = get_backend("torch", None)
    texts = {**PROMPTS, **EXTRA, "long_1k": LONG_PROMPTS["long_1k"]}
    texts.update({p.name: p.read_text() for p in sorted((REPO / "examples").iterdir())})
    data = {}
    for name, text in texts.items():
        found = features_and_scores(backend, name, text)
        if found is not None:
            data[name] = found
    names = list(data)
    print(f"{len(names)} prompts, {sum(len(y) for _, y in data.values())} lines")
    for ridge in (1e-3, 1e-2, 1e-1, 1.0):
        rows = []
        for held in names:
            x = np.concatenate([data[n][0] for n in names if n != held])
            y = np.concatenate([data[n][1] for n in names if n != held])
            w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
            xh, yh = data[held]
            guess = xh @ w
            shared = len(set(np.argsort(-guess)[:3]) & set(np.argsort(-yh)[:3]))
            rows.append((held, len(yh), spearman(guess, yh), shared))
        mean = np.mean([r[2] for r in rows])
        print(f"ridge {ridge:g}: mean held-out Spearman {mean:.2f}")
        for held, n, rho, shared in rows:
            print(f"  {held:26} {n:3d} lines  Spearman {rho:5.2f}  top-3 shared {shared}/3")


if __name__ == "__main__":
    main()
