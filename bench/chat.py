"""Time the chat on a 3-turn conversation with the default model (not a test).

Per turn: time to the first streamed token, tokens per second while streaming, and the time
from the reply being finished to its explanation being ready to show (the explain handler's
whole run: explanation, highlighted conversation, summary). Torch by default; with
`--backend onnx` (when that backend is installed) the reply comes in one piece, not streamed,
so "first token" is the whole reply.

    python bench/chat.py [--model PATH] [--backend torch] [--method occlusion]
"""

from __future__ import annotations

import argparse
import time

import torch

from promptxray.chat_ui.engine import ChatEngine, GenSettings
from promptxray.chat_ui.handlers import Handlers
from promptxray.chat_ui.session import WHOLE, Session

TURNS = (
    "What is the capital of France? Answer in one word.",
    "Name one famous museum in that city.",
    "Why is it famous? Answer in two sentences.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--method", default="occlusion")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    started = time.perf_counter()
    engine = ChatEngine(args.model, args.backend, args.method)
    backend = engine.backend()
    print(
        f"model {backend.model_id} load: {time.perf_counter() - started:.2f}s  "
        f"threads: {torch.get_num_threads()}  backend: {backend.name}"
    )
    handlers = Handlers(engine)
    state = Session()
    settings = GenSettings(args.max_new_tokens)
    print(
        f"{'turn':>4} {'prompt':>6} {'reply':>5} {'first_tok_s':>11} {'tok/s':>7} "
        f"{'gen_s':>6} {'explain_s':>9}  reply"
    )
    for n, message in enumerate(TURNS, 1):
        history = state.history()
        prepared = engine.prepare(history, message, settings)
        last = None
        for event in engine.stream(prepared, settings.temperature):
            last = event
        assert last is not None and last.first_token_s is not None
        # the same generation again through the UI handler, so the state holds the turn
        for _ in handlers.chat(message, "", args.max_new_tokens, 0.0, state):
            pass
        decode_s = max(last.elapsed_s - last.first_token_s, 1e-9)
        tps = (len(last.ids) - 1) / decode_s if len(last.ids) > 1 else float("nan")
        finished = time.perf_counter()
        out = list(handlers.explain(None, args.method, WHOLE, state))[-1]
        explain_s = time.perf_counter() - finished
        assert str(out[0]).startswith("Explained"), out[0]
        reply = " ".join(last.text.split())
        print(
            f"{n:>4} {len(prepared.ids):>6} {len(last.ids):>5} {last.first_token_s:>11.3f} "
            f"{tps:>7.1f} {last.elapsed_s:>6.2f} {explain_s:>9.2f}  {reply[:50]!r}"
        )


if __name__ == "__main__":
    main()
