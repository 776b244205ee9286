"""Anytime explanations in a warm language server on long prompts (not a test).

The real server (a subprocess, default model, default settings: occlusion at granularity
auto) is warmed on a short document; then each long prompt of `prompts_long.py` is opened and
the time from didOpen to each stage's diagnostics is taken: the exact blocks, the lines (bf16
where the CPU has it fast, then exact) and the final (refined) result. One plain forward of
the same prompt, timed in this process after the server run, gives the scale ("forwards"
columns). All figures come from one run.

    python bench/anytime.py [--prompts long_1k,long_4k]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.prompts_long import LONG_PROMPTS
from tests.e2e.lsp_harness import Harness

WARM = "What is the capital of France?\nAnswer with the city name.\n"


STAGES = ["outline", "blocks", "lines bf16", "top lines", "lines", "final"]
TAG = re.compile(r"^\[(.+?) \d+/\d+(?: · ([^\]]*))?\]")


def stage_of(diags: list) -> str | None:
    """An early stage's name from its tagged messages ("[top lines 2/4 · exact] ...");
    "lines bf16" for the approximate lines stage ("[lines 2/5 · bf16 ±0.23 nats]")."""
    for d in diags:
        found = TAG.match(d.message)
        if found:
            name, fidelity = found.group(1), found.group(2) or ""
            return f"{name} bf16" if "bf16" in fidelity else name
    return None


async def stage_times(prompts: dict[str, str], until: str = "final") -> dict[str, dict[str, float]]:
    folder = Path(tempfile.mkdtemp())
    out: dict[str, dict[str, float]] = {}
    async with Harness({"debounceMs": 0}) as h:
        warm = h.open(folder / "warm.prompt", WARM)
        await h.diagnostics_after(warm, 0)
        for name, text in prompts.items():
            started = time.perf_counter()
            uri = h.open(folder / f"{name}.prompt", text)
            seen: dict[str, float] = {}
            count = 0
            while "final" not in seen and until not in seen:
                # a new publication, or the job's end ("ready" follows the final diagnostics)
                await h.wait_for(
                    lambda n=count: len(h.diagnostics[uri]) > n or h.settled(uri),  # noqa: B023
                    timeout=3600,
                )
                now = time.perf_counter() - started
                for diags in h.diagnostics[uri][count:]:
                    stage = stage_of(diags)
                    if stage is not None:
                        seen.setdefault(stage, now)
                count = len(h.diagnostics[uri])
                if h.settled(uri):
                    seen["final"] = now
            out[name] = seen
            # closing the document cancels a job stopped at `until`
            h.client.text_document_did_close(
                types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
            )
    return out


def plain_forward_seconds(text: str, repeats: int = 2) -> tuple[int, float]:
    """Tokens and seconds of one plain forward of the prompt as the server builds it."""
    import torch

    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document

    backend = get_backend("torch", None)
    ids = build_input(parse_document(text), backend).ids
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.inference_mode():
            backend.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        best = min(best, time.perf_counter() - t0)
    return len(ids), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", default="long_1k", help=f"of {', '.join(LONG_PROMPTS)}")
    parser.add_argument("--until", default="final", help=f"stop at this stage: {STAGES}")
    args = parser.parse_args()
    names = [n for n in args.prompts.split(",") if n]
    prompts = {n: LONG_PROMPTS[n] for n in names}
    times = asyncio.run(stage_times(prompts, args.until))
    print("warm server, default model, occlusion at granularity auto (default settings)")
    print(
        f"{'prompt':10} {'tokens':>6} {'lines':>5} {'forward':>8} "
        + " ".join(f"{s:>14}" for s in STAGES)
    )
    for name, text in prompts.items():
        tokens, forward = plain_forward_seconds(text)
        row = times[name]

        def cell(stage: str, row: dict[str, float] = row, forward: float = forward) -> str:
            if stage not in row:
                return f"{'—':>14}"
            return f"{row[stage]:7.1f}s {row[stage] / forward:4.0f}x"

        print(
            f"{name:10} {tokens:6d} {text.count(chr(10)) + 1:5d} {forward:7.2f}s "
            + " ".join(cell(s) for s in STAGES)
        )
    print("(x: the stage's time from didOpen as a multiple of one plain forward of the prompt)")


if __name__ == "__main__":
    main()
