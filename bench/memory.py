"""Peak memory of each method's heaviest step on long prompts (default model, fp32, CPU).

    python bench/memory.py                      # the table in bench/README.md (2k and 4k)
    python bench/memory.py gradient 4000        # one case at one length

Each case runs in its own process, one after another (never two at once), on a synthetic
prompt of numbered lines padded to the length asked for, with a fixed target. Peak memory
is the process's peak RSS (VmHWM, reset through /proc/self/clear_refs after the model is
loaded) minus its RSS at that point; about 0.45 GiB of it is paid once by the first forward
of any process (kernels and allocator pools). Next to it, memory.py's estimate for the step.
The all-layers-at-once attention maps (`maps_at_once`, the old path) are refused above 2,500
tokens: their estimate at 4,000 is ~20 GiB.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from typing import Any

CASES = {
    "forward": "one plain forward (target log-probs); also counterfactual's and occlusion's rows",
    "occlusion_batch": "the widest batch of line occlusion (first two lines dropped)",
    "gradient": "one forward+backward row: gradient_x_input, saliency, one IG chunk",
    "gradient_checkpointed": "the same row with every decoder layer checkpointed",
    "attention_rows": "the attention method: target rows after a cached prefix",
    "rollout_stored": "attention_rollout: layer by layer, every head-mean map kept",
    "rollout_streamed": "attention_rollout: layer by layer, maps multiplied as they come",
    "maps_at_once": "the old path: every layer's [heads, L, L] maps held at once",
    "activation_max": "activation_max end to end (line granularity)",
}
WORDS = (  # noqa: SIM905
    "order shipment warehouse invoice customer refund label carrier pallet route driver morning "
    "late damaged box address phone note policy manager team report week day north south city "
    "station checked delivered returned scanned priority standard"
).split()
TARGET = " Line 12"


def prompt_text(tokenizer: Any, n_tokens: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    while True:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
        lines.append(f"{len(lines) + 1}. The {words}.")
        text = "\n".join(lines)
        if len(tokenizer(text)["input_ids"]) >= n_tokens:
            return text + "\nQuestion: which line mentions a refund first? Answer:"


def status_gib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / (1 << 20)
    return float("nan")


def child(case: str, n_tokens: int) -> dict[str, Any]:
    import numpy as np
    import torch

    from promptxray.explainers.backends import get_backend, memory
    from promptxray.explainers.context import MethodContext
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document

    b: Any = get_backend("torch", None)
    text = prompt_text(b.tokenizer, n_tokens)
    mi = build_input(parse_document(text), b)
    ids, target = mi.ids, b.encode_target(TARGET)
    seq = ids + target[:-1]
    width, t = len(seq), len(target)
    estimate = {
        "forward": b.row_bytes(width),
        "occlusion_batch": b.row_bytes(width),
        "gradient": memory.gradient_row_bytes(b.model, width, t),
        "gradient_checkpointed": memory.gradient_row_bytes(b.model, width, t, True),
        "attention_rows": b.row_bytes(width),
        "rollout_stored": memory.rollout_plan(b.model, width).peak_bytes,
        "rollout_streamed": memory.attention_layer_bytes(b.model, width, width) + 3 * 4 * width**2,
        "maps_at_once": memory.Shape.of(b.model).attention_maps(width, width)
        * memory.Shape.of(b.model).layers
        + memory.attention_layer_bytes(b.model, width, width),
        "activation_max": b.row_bytes(width),
    }[case]
    if case == "maps_at_once" and width > 2500:
        return {"case": case, "tokens": width, "estimate_gib": estimate / 2**30, "skipped": True}
    base = status_gib("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")
    start = time.perf_counter()
    if case == "forward":
        b.target_logprobs([ids], target)
    elif case == "occlusion_batch":
        from promptxray.explainers.units import group_units

        lines = group_units(text, mi.tokens, "line")[:2]
        drops = [{mi.positions[i] for i in unit} for unit in lines]
        variants = [[x for p, x in enumerate(ids) if p not in d] for d in drops]
        b.target_logprobs(variants, target, reference=ids)
    elif case.startswith("gradient"):
        emb = b.embed(seq).unsqueeze(0).requires_grad_(True)
        score = b.logprobs_from_embeds(emb, target, case == "gradient_checkpointed").sum()
        torch.autograd.grad(score, emb)
    elif case == "attention_rows":
        b.attention_rows(seq, len(ids) - 1, layers=[-1])
    elif case.startswith("rollout"):
        from promptxray.explainers.methods.attention_rollout import rollout_rows

        ctx = MethodContext(b, mi, [[i] for i in range(len(mi.tokens))], target, np.zeros(t))
        rollout_rows(ctx, seq, len(ids) - 1, t, case == "rollout_stored")
    elif case == "maps_at_once":
        b.attentions(seq)
    elif case == "activation_max":
        from promptxray.explainers.explain import explain
        from promptxray.explainers.types import ExplainRequest

        request = ExplainRequest(
            text, method=case, target=TARGET, granularity="line", faithfulness=False
        )
        explain(request, backend=b)
    return {
        "case": case,
        "tokens": width,
        "estimate_gib": estimate / 2**30,
        "peak_gib": status_gib("VmHWM") - base,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        return
    if len(sys.argv) == 3:
        runs = [(sys.argv[1], int(sys.argv[2]))]
    else:
        runs = [(case, n) for case in CASES for n in (2000, 4000)]
    print("| case | tokens | estimate | observed peak | seconds |")
    print("|---|---|---|---|---|")
    for case, n in runs:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"| {case} | {n} | | failed: {out.stderr.strip().splitlines()[-1:]} | |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peak = "skipped (would not fit)" if r.get("skipped") else f"{r['peak_gib']:.2f} GiB"
        secs = "" if r.get("skipped") else f"{r['seconds']:.0f}"
        print(f"| {case} | {r['tokens']} | {r['estimate_gib']:.2f} GiB | {peak} | {secs} |")


if __name__ == "__main__":
    main()
