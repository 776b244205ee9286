"""How an ONNX export is checked against the fp32 torch model it came from: logits on a few
probe prompts (top-1 agreement decides whether it is usable) and greedy answers on more
(the manifest's `answer_agreement`, shown beside explanations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from promptxray.explainers.models.loading import LoadedModel

if TYPE_CHECKING:
    from promptxray.explainers.backends.onnx_backend import OnnxRunner

# Logits are compared on these, in one left-padded batch.
PROBES = [
    "What is the capital of France?",
    "Once upon a time there was a little girl named",
    "Write a haiku about the sea.",
    "def add(a, b):\n    return",
]
# Greedy answers (ANSWER_TOKENS new tokens, through the chat template where the model has one)
# are compared with fp32 torch's on these: the manifest's `answer_agreement`.
ANSWER_PROMPTS = [
    "What is the capital of France?",
    "Once upon a time there was a little girl named",
    "Write a haiku about the sea.",
    "def add(a, b):\n    return",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "Name three primary colours.",
    "Give me a synonym for 'happy'.",
    "Who wrote Romeo and Juliet?",
    "The dog ran to the park and saw a big red ball. He",
    "Summarise in one sentence: the meeting moved from Monday to Thursday at 3 pm.",
    "Is a tomato a fruit or a vegetable?",
    "List two uses of baking soda.",
    "Write a SQL query that counts the rows of the table users.",
    "What does HTTP stand for?",
    "Complete the sentence: The early bird",
    "Which planet is closest to the sun?",
    "Tom and Sue went to the beach. They played in the sand and",
    "Reply with yes or no: is water wet?",
    "Suggest a name for a grey cat.",
    "How many legs does a spider have?",
    "Explain recursion in five words.",
    "What is the boiling point of water in Celsius?",
    "Write the opening line of a mystery novel.",
]
ANSWER_TOKENS = 8  # ExplainRequest.max_new_tokens' default: the answer explain would explain


def verify(loaded: LoadedModel, runner: OnnxRunner) -> dict[str, float]:
    """Compare ORT logits with torch on the probe prompts, one left-padded batch."""
    import torch

    from promptxray.explainers.backends.base import left_pad

    tok = loaded.tokenizer
    rows = [list(tok(p)["input_ids"]) for p in PROBES]
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    batch = left_pad(rows, int(pad))
    with torch.no_grad():
        ref = loaded.model(
            input_ids=torch.from_numpy(batch.input_ids),
            attention_mask=torch.from_numpy(batch.attention_mask),
            position_ids=torch.from_numpy(batch.position_ids),
            use_cache=False,
        ).logits.numpy()
    out = runner.logits(batch)
    valid = batch.attention_mask.astype(bool)
    return {
        "max_abs_logit_diff": float(np.abs(out - ref)[valid].max()),
        "top1_agreement": float((out.argmax(-1) == ref.argmax(-1))[valid].mean()),
        "positions": int(valid.sum()),
    }


def answer_prompt_ids(loaded: LoadedModel, prompt: str) -> list[int]:
    """A verification prompt as explain would send it: through the chat template when the
    model has one (one user message), else as plain text with special tokens."""
    tok = loaded.tokenizer
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return list(tok(text, add_special_tokens=False)["input_ids"])
    return list(tok(prompt)["input_ids"])


def answer_agreement(loaded: LoadedModel, runner: OnnxRunner) -> dict[str, Any]:
    """Greedy answers (ANSWER_TOKENS new tokens) of the export and of fp32 torch on
    ANSWER_PROMPTS: the share of prompts answered identically, of first tokens that agree, and
    the prompts answered differently (with both answers)."""
    from promptxray.explainers.backends.torch_backend import TorchBackend

    reference = TorchBackend(loaded)
    eos = reference.eos_ids()
    same = first = 0
    differing = []
    for prompt in ANSWER_PROMPTS:
        ids = answer_prompt_ids(loaded, prompt)
        want = reference.generate(ids, ANSWER_TOKENS)
        got = runner.generate(ids, ANSWER_TOKENS, eos)
        same += got == want
        first += got[:1] == want[:1]
        if got != want:
            differing.append(
                {
                    "prompt": prompt,
                    "torch_fp32": loaded.tokenizer.decode(want),
                    "onnx": loaded.tokenizer.decode(got),
                }
            )
    n = len(ANSWER_PROMPTS)
    return {
        "prompts": n,
        "max_new_tokens": ANSWER_TOKENS,
        "same_answer": same / n,
        "same_first_token": first / n,
        "differing": differing,
    }
