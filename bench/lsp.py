"""Language-server latencies on the default model (not a test).

Prints: didOpen -> first diagnostics, cold (server start + model load) and warm (model
loaded, new document); hover latency on an explained document (median and p95 over 200
hovers); didChange (one-word edit) -> new diagnostics; and the hover's text and length.
All measured in one run.

    python bench/lsp.py [--method occlusion] [--granularity word]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.lsp_harness import Harness

PROMPT = "What is the capital of France?\nAnswer with the city name.\n"
SECOND = "Write a haiku about the sea at night.\nUse the word lantern.\n"


async def measure(method: str, granularity: str) -> None:
    folder = Path(tempfile.mkdtemp())
    options = {"method": method, "granularity": granularity, "debounceMs": 600}
    started = time.perf_counter()
    async with Harness(options) as h:
        uri = h.open(folder / "a.prompt", PROMPT)
        await h.diagnostics_after(uri, 0)
        cold = time.perf_counter() - started

        started = time.perf_counter()
        second = h.open(folder / "b.prompt", SECOND)
        await h.diagnostics_after(second, 0)
        warm = time.perf_counter() - started

        latencies = []
        for i in range(200):
            t0 = time.perf_counter()
            await h.hover(uri, 0, 8 + i % 20)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        hover = await h.hover(uri, 0, PROMPT.index("capital") + 2)
        hover_text = hover.contents.value if hover else ""  # type: ignore[union-attr]

        count = len(h.diagnostics[uri])
        started = time.perf_counter()
        h.replace(uri, PROMPT.replace("France", "Italy"))
        await h.diagnostics_after(uri, count)
        edit = time.perf_counter() - started
    print(f"method {method}, granularity {granularity}, default model, debounce 600 ms")
    print(f"didOpen -> diagnostics, cold (server start + model load): {cold:.2f} s")
    print(f"didOpen -> diagnostics, warm (new document):              {warm:.2f} s")
    median = 1000 * statistics.median(latencies)
    p95 = 1000 * latencies[int(0.95 * len(latencies)) - 1]
    print(f"hover on an explained document, 200 hovers: median {median:.2f} ms, p95 {p95:.2f} ms")
    print(f"one-word edit -> new diagnostics (incl. 600 ms debounce):  {edit:.2f} s")
    print(f"hover on 'capital': {len(hover_text)} characters\n{hover_text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="occlusion")
    parser.add_argument("--granularity", default="word")
    args = parser.parse_args()
    asyncio.run(measure(args.method, args.granularity))


if __name__ == "__main__":
    main()
