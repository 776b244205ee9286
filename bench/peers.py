"""promptxray vs Captum and Inseq on the default model (not a test).

Same prompts (the chat-template-rendered ids, about 40 to about 1,000 tokens), same targets
(promptxray's greedy answer, fixed first), same attributed tokens (the user's; template tokens
are left out on every side) and the same quantity, log p(target | prompt) summed over the
target's tokens:

- promptxray `occlusion` vs Captum `LLMAttribution(FeatureAblation)` and Inseq `occlusion`;
- promptxray `integrated_gradients` (32 fixed Gauss-Legendre nodes, pad-token baseline) vs
  Captum `LLMGradientAttribution(LayerIntegratedGradients)` and Inseq `integrated_gradients`
  (32 steps, Captum's default Gauss-Legendre rule, the same baseline).

    pip install -e '.[bench]'   # captum==0.9.0, inseq==0.7.1: never runtime dependencies
    python bench/peers.py [--prompts capital,haiku,...] [--max-tokens 1100]
                          [--peers captum,inseq] [--methods occlusion,integrated_gradients]
                          [--budget 180] [--total 840] [--threads 0] [--ig-floor]

Each tool lives in its own process, started once; the parent hands them one run at a time,
prompt by prompt (shortest first), method by method (promptxray, its floor, then the peers),
so every comparison that runs is complete and its runs are minutes apart, under the same load.
Peak memory is the process's peak RSS during the run (VmHWM, reset before each run).
A run is skipped, and printed as such, when its projected time (from two timed forwards on the
prompt) exceeds --budget seconds or what is left of --total; a run still going after
3 x --budget (or at the end of --total, given at least a minute) is stopped. The columns
are explained at the end of the output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from prompts import PROMPTS  # noqa: E402

TOOLS = ("promptxray", "captum", "inseq")
METHODS = ("occlusion", "integrated_gradients")
N_STEPS = 32
MAX_NEW_TOKENS = 8
FLOOR_BATCH_TOKENS = 32_768  # the floor's padded batch is split above this (memory)
IG_BATCH_TOKENS = 8_192  # peers' internal_batch_size for IG: path points per pass x length
CALIBRATION_TOKENS = 2_048  # the batched forward that sets projections
MARK = "@@ "  # children answer on stdout with this prefix

# --- prompts --------------------------------------------------------------------------------

REPORT = [
    "Quarterly status report for the Harbor Street library renovation, prepared for the city "
    "council's infrastructure committee. The project replaces the roof, the heating system and "
    "the lifts of the main building, adds a children's reading room on the ground floor, and "
    "moves the local history archive to a climate-controlled basement. Work started in March "
    "and is planned to finish in the autumn of next year.",
    "Budget. The council approved 4.2 million euros, of which 2.9 million have been committed "
    "in signed contracts and 1.6 million spent so far. The roof contract came in 8 percent "
    "over the estimate because the inspection found rotten beams under the north slope; the "
    "difference was covered from the contingency reserve, which now stands at 310,000 euros. "
    "No further overruns are expected this quarter.",
    "Schedule. The roof is finished and watertight. The new boilers were delivered three weeks "
    "late, so the heating work will overlap with the lift replacement in January. The "
    "contractor has proposed working two Saturdays a month to recover the delay; the library "
    "would then keep the reading rooms closed on those days. The archive move is on track for "
    "February.",
    "Risks. The basement walls showed damp patches after the heavy rain in October. A survey "
    "recommends a drainage channel along the east wall before any archive material is moved "
    "downstairs. If the channel is not approved by the end of December, the move slips by at "
    "least two months and the archive stays in temporary storage, which costs 4,000 euros a "
    "month.",
    "Public access. During the works the lending desk operates from the former exhibition hall "
    "and the opening hours are unchanged. Visitor numbers fell by 12 percent compared with the "
    "same quarter last year, mostly among older readers who relied on the lifts. A volunteer "
    "delivery service now brings books to 140 housebound readers every week.",
    "Staff. Two librarians retired in September and their posts were filled internally. The "
    "archivist has been seconded half-time to supervise the packing of the collection, and a "
    "temporary assistant was hired for six months to cover her desk hours. Training on the new "
    "self-service machines is planned for all staff in the spring.",
    "Sustainability. The new roof carries 180 square metres of solar panels, expected to cover "
    "about a fifth of the building's electricity. The heat pumps replace two gas boilers from "
    "1994. Together they should cut the building's emissions by roughly 60 percent, which "
    "would let the city claim a regional grant of 350,000 euros once the savings are verified "
    "over a full year of operation.",
    "Community. Parents' groups asked that the children's room include a quiet corner for "
    "children with sensory needs, and the design team has added one at no extra cost. Local "
    "schools have booked class visits for the opening month. The neighbourhood association "
    "offered to fund murals on the hoarding around the site, painted by pupils of the art "
    "school.",
    "Procurement. Tenders for the furniture and shelving close in January. The evaluation "
    "weights price at 40 percent, durability and repairability at 35 percent, and delivery "
    "time at 25 percent. Three suppliers attended the site visit. The committee is asked to "
    "note that the shelving must be ordered by March at the latest for the archive to open on "
    "time.",
    "Decisions requested. The committee is asked to approve the drainage channel along the "
    "east wall (estimated 95,000 euros, from the contingency reserve), to agree to Saturday "
    "working twice a month until the heating is finished, and to take note of the fall in "
    "visitor numbers and of the measures taken to support readers who cannot reach the upper "
    "floors.",
]
QUESTION = "\n\nIn one sentence: what is the main risk to the schedule, and what would fix it?"

PEER_PROMPTS: dict[str, str] = {
    **PROMPTS,
    "report": "\n\n".join(REPORT[:3]) + QUESTION,
    "long": "\n\n".join(REPORT) + "\n\n" + "\n\n".join(REPORT[:2]) + QUESTION,
}


# --- in a child: memory, time limits, the request loop ---------------------------------------


def _status_mb(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else float("nan")


def reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RunTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise RunTimeout(f"stopped after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measured(fn: Callable[[], Any], limit_s: float) -> tuple[dict[str, Any], Any]:
    """Run fn once: its seconds, peak MB and result, or the error."""
    import gc

    gc.collect()
    resettable = reset_peak()
    started = time.perf_counter()
    try:
        with time_limit(limit_s):
            result = fn()
    except Exception as exc:
        seconds = time.perf_counter() - started
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"
        return {"error": message, "seconds": seconds}, None
    seconds = time.perf_counter() - started
    if resettable:
        peak = _status_mb("VmHWM")
    else:  # the process's peak so far
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak}, result


def emit(record: dict[str, Any]) -> None:
    print(MARK + json.dumps(record), flush=True)


def serve(handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Answer the parent's requests (one JSON line each) until it closes stdin."""
    emit({"kind": "ready"})
    for line in sys.stdin:
        job = json.loads(line)
        emit(handlers[job["op"]](job))


# --- projections ----------------------------------------------------------------------------


def projected_seconds(tool: str, method: str, info: dict[str, Any]) -> float:
    """Rough cost of a run from two timed forwards on this prompt: one of batch 1 (`forward_s`,
    for a tool that runs one sequence at a time) and one batched (`token_s`, seconds per token
    when many rows share a forward). A backward pass to the inputs counts as one forward.

    Captum's FeatureAblation runs one sequence per feature; Captum's LLMGradientAttribution
    and Inseq redo the whole path for each target token; Inseq's occlusion covers every prefix
    position (template and generated tokens too) at every target step."""
    n, length, t = len(info["positions"]), len(info["ids"]), len(info["target_ids"])
    width = length + t
    if method == "occlusion":
        if tool == "captum":
            return float((n + 1) * info["forward_s"])
        if tool == "inseq":
            return float(t * width * width * info["token_s"])
        return float(n * width * info["token_s"])  # promptxray and its floor
    per_path = N_STEPS * 2 * width * info["token_s"]
    return float(per_path * (t if tool in ("captum", "inseq") else 1))


# --- promptxray child -----------------------------------------------------------------------


def child_promptxray(args: argparse.Namespace) -> None:
    import torch

    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.backends.base import left_pad
    from promptxray.explainers.explain import explain
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document
    from promptxray.explainers.targets import resolve_target
    from promptxray.explainers.types import ExplainRequest

    backend = get_backend("torch", None)
    model = backend.model
    explain(ExplainRequest(text="Hello there.", faithfulness=False), backend=backend)  # warm-up
    ig_options = {
        "n_steps": N_STEPS,
        "max_steps": N_STEPS,  # no doubling: exactly 32 nodes
        "quadrature": "gauss-legendre",  # Captum's default rule ("gausslegendre")
        "baseline": "pad",  # the pad token's embedding at user tokens; peers get the same
    }
    prepared: dict[str, tuple[str, Any, list[int]]] = {}

    def occlusion_floor(mi: Any, target: list[int]) -> None:
        """All leave-one-out variants in one padded forward (bench/methods.py's floor), split
        only when the batch would exceed FLOOR_BATCH_TOKENS."""
        rows = [mi.ids[:p] + mi.ids[p + 1 :] + target[:-1] for p in mi.positions]
        per = max(1, FLOOR_BATCH_TOKENS // max(len(r) for r in rows))
        with torch.inference_mode():
            for lo in range(0, len(rows), per):
                batch = left_pad(rows[lo : lo + per], backend.pad_id)
                model(
                    input_ids=torch.from_numpy(batch.input_ids),
                    attention_mask=torch.from_numpy(batch.attention_mask),
                    position_ids=torch.from_numpy(batch.position_ids),
                    logits_to_keep=len(target),
                    use_cache=False,
                )

    def ig_floor(mi: Any, target: list[int]) -> None:
        """Forward + backward to the inputs at the 32 path points, IG_BATCH_TOKENS a pass."""
        ids = torch.tensor([mi.ids + target[:-1]])
        embeds = model.get_input_embeddings()(ids).detach()
        per = max(1, IG_BATCH_TOKENS // ids.shape[1])
        tgt = torch.tensor(target)
        for lo in range(0, N_STEPS, per):
            points = embeds.expand(min(per, N_STEPS - lo), -1, -1).clone().requires_grad_(True)
            logits = model(inputs_embeds=points, logits_to_keep=len(target), use_cache=False)
            logp = logits.logits.log_softmax(-1)[:, :, tgt].diagonal(dim1=1, dim2=2).sum()
            torch.autograd.grad(logp, points)

    def prepare(job: dict[str, Any]) -> dict[str, Any]:
        """Ids, user positions, the greedy target and the two calibration forwards."""
        name = job["prompt"]
        text = PEER_PROMPTS[name]
        mi = build_input(parse_document(text), backend)
        info: dict[str, Any] = {"kind": "prompt", "prompt": name, "ids": mi.ids}
        info["positions"] = mi.positions
        if len(mi.ids) > args.max_tokens:
            return {**info, "target_ids": [], "over_max": True}
        target_ids, _ = resolve_target(backend, mi.ids, None, MAX_NEW_TOKENS)
        ids = torch.tensor([mi.ids + target_ids[:-1]])
        rows = max(1, CALIBRATION_TOKENS // ids.shape[1])
        with torch.inference_mode():
            started = time.perf_counter()
            model(input_ids=ids, use_cache=False)
            forward_s = time.perf_counter() - started
            started = time.perf_counter()
            model(input_ids=ids.expand(rows, -1), use_cache=False, logits_to_keep=1)
            token_s = (time.perf_counter() - started) / (rows * ids.shape[1])
        prepared[name] = (text, mi, target_ids)
        return {
            **info,
            "target_ids": target_ids,
            "target_text": backend.decode(target_ids),
            "rendered": mi.rendered,
            "forward_s": forward_s,
            "token_s": token_s,
        }

    def run(job: dict[str, Any]) -> dict[str, Any]:
        text, mi, target_ids = prepared[job["prompt"]]
        method = job["method"]
        if job["tool"] == "floor":
            floor = occlusion_floor if method == "occlusion" else ig_floor
            result, _ = measured(partial(floor, mi, target_ids), job["limit_s"])
            return result
        request = ExplainRequest(
            text=text,
            method=method,
            target_ids=target_ids,
            faithfulness=False,
            options=ig_options if method == "integrated_gradients" else {},
        )
        result, expl = measured(partial(explain, request, backend=backend), job["limit_s"])
        if expl is not None:
            assert [t.token_id for t in expl.target.tokens] == target_ids
            result["scores"] = [t.score for t in expl.tokens]
            if "completeness_relative_error" in expl.metrics:
                result["completeness"] = expl.metrics["completeness_relative_error"]
                result["steps"] = expl.details.get("n_steps")
        return result

    serve({"prepare": prepare, "run": run})


# --- peer children --------------------------------------------------------------------------


def load_model() -> tuple[Any, Any]:
    """The model and tokenizer promptxray uses (fp32, CPU, from the offline cache)."""
    from promptxray.explainers.backends import get_backend

    backend = get_backend("torch", None)
    return backend.model, backend.tokenizer


def serve_peer(runs: dict[str, Callable[[dict[str, Any]], list[float]]]) -> None:
    def run(job: dict[str, Any]) -> dict[str, Any]:
        result, scores = measured(partial(runs[job["method"]], job["info"]), job["limit_s"])
        if scores is not None:
            result["scores"] = scores
        return result

    serve({"run": run})


def child_captum() -> None:
    import torch
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        TextTokenInput,
    )

    model, tokenizer = load_model()
    pad_id = int(tokenizer.pad_token_id)

    class IdsTokenInput(TextTokenInput):
        """TextTokenInput from given ids (no re-tokenisation); only `positions` are features."""

        def __init__(self, ids: list[int], positions: list[int], baseline: int) -> None:
            tensor = torch.tensor([ids])
            mask = torch.zeros_like(tensor, dtype=torch.bool)
            mask[0, positions] = True
            self.inp_tensor = tensor
            self.itp_tensor = tensor[mask].unsqueeze(0)
            self.itp_mask = mask
            self.skip_tokens = None
            self.values = tokenizer.convert_ids_to_tokens(self.itp_tensor[0].tolist())
            self.tokenizer = tokenizer
            self.n_itp_features = len(positions)
            self.baselines = baseline

    ablation = LLMAttribution(FeatureAblation(model), tokenizer)
    gradients = LLMGradientAttribution(
        LayerIntegratedGradients(model, model.get_input_embeddings()), tokenizer
    )

    def occlusion(info: dict[str, Any]) -> list[float]:
        # Baseline token 0 (<|endoftext|>, Captum's default). forward_in_tokens=False: one
        # forward of prompt + target per feature, Captum's fastest mode (the default,
        # token-by-token with a cache, is ~7x slower here and its scores are off with
        # transformers 5). perturbations_per_eval stays 1: LLMAttribution's forward assumes
        # batch size 1 (any other value fails on a size mismatch).
        inp = IdsTokenInput(info["ids"], info["positions"], 0)
        target = torch.tensor(info["target_ids"])
        out = ablation.attribute(inp, target=target, forward_in_tokens=False)
        return [float(x) for x in out.seq_attr]

    def integrated_gradients(info: dict[str, Any]) -> list[float]:
        # Baseline: the pad token at user tokens, template tokens unchanged, as promptxray's.
        inp = IdsTokenInput(info["ids"], info["positions"], pad_id)
        width = len(info["ids"]) + len(info["target_ids"])
        out = gradients.attribute(
            inp,
            target=torch.tensor(info["target_ids"]),
            n_steps=N_STEPS,
            method="gausslegendre",
            internal_batch_size=max(1, min(N_STEPS, IG_BATCH_TOKENS // width)),
        )
        return [float(x) for x in out.seq_attr]

    warm = IdsTokenInput([1, 2, 3, 4], [1, 2], 0)
    ablation.attribute(warm, target=torch.tensor([5]), forward_in_tokens=False)
    serve_peer({"occlusion": occlusion, "integrated_gradients": integrated_gradients})


def child_inseq() -> None:
    import inseq
    import torch

    model, tokenizer = load_model()
    pad_id = int(tokenizer.pad_token_id)
    wrapped = {m: inseq.load_model(model, m, tokenizer=tokenizer) for m in METHODS}
    baseline_at: list[int] = []

    # Shim: Inseq's baseline is the unk token at every non-EOS position of the prefix (template
    # and generated tokens too). For IG it gets promptxray's and Captum's instead: the pad token
    # at user tokens, every other id unchanged. Occlusion keeps Inseq's default.
    ig = wrapped["integrated_gradients"]
    original_encode = ig.encode

    def encode(texts: Any, *a: Any, **kw: Any) -> Any:
        batch = original_encode(texts, *a, **kw)
        if kw.get("return_baseline") and baseline_at:
            base = batch.input_ids.clone()
            base[0, baseline_at] = pad_id
            batch.baseline_ids = base
        return batch

    ig.encode = encode

    def attribute(which: str, info: dict[str, Any], **kwargs: Any) -> list[float]:
        out = wrapped[which].attribute(
            input_texts=info["rendered"],
            generated_texts=info["rendered"] + info["target_text"],
            attributed_fn="probability",
            logprob=True,  # log p of each target token
            show_progress=False,
            **kwargs,
        )
        seq = out.sequence_attributions[0]
        # Inseq 0.7.1 leaves the pad token (here also <|im_end|>, which the chat template uses)
        # out of its token list, while its attribution rows stay indexed by the original
        # positions (cut to the shorter length): check the ids, then index by position.
        ids = info["ids"] + info["target_ids"]
        got = [t.id for t in seq.target]
        if got != [t for t in ids if t != pad_id]:
            raise ValueError(f"inseq tokenised prompt + target differently: ...{got[-12:]}")
        attr = seq.target_attributions  # [prefix + target positions, target steps, (hidden)]
        if attr.dim() == 3:
            attr = attr.sum(-1)  # IG's per-dimension terms, summed as Captum does
        per_position = torch.nansum(attr, dim=1)  # the sum over target steps
        return [float(per_position[p]) for p in info["positions"]]

    def occlusion(info: dict[str, Any]) -> list[float]:
        width = len(info["ids"]) + len(info["target_ids"])
        return attribute(
            "occlusion", info, perturbations_per_eval=max(1, min(64, IG_BATCH_TOKENS // width))
        )

    def integrated_gradients(info: dict[str, Any]) -> list[float]:
        width = len(info["ids"]) + len(info["target_ids"])
        baseline_at[:] = info["positions"]
        try:
            return attribute(
                "integrated_gradients",
                info,
                n_steps=N_STEPS,  # Captum's default rule, Gauss-Legendre ("method" is taken)
                internal_batch_size=max(1, min(N_STEPS, IG_BATCH_TOKENS // width)),
            )
        finally:
            baseline_at.clear()

    for method in METHODS:  # warm-up: one target token after a short prompt
        wrapped[method].attribute(input_texts="Hi", generated_texts="Hi there", show_progress=False)
    serve_peer({"occlusion": occlusion, "integrated_gradients": integrated_gradients})


# --- parent ---------------------------------------------------------------------------------


class Child:
    """One tool's process: started once, asked one job at a time."""

    def __init__(self, tool: str, args: argparse.Namespace, log: IO[str]) -> None:
        self.tool = tool
        command = [sys.executable, __file__, "--child", tool, "--threads", str(args.threads)]
        command += ["--max-tokens", str(args.max_tokens)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        started = time.perf_counter()
        self.error = None if self._read() else f"{tool} did not start; see {log.name}"
        self.start_s = time.perf_counter() - started

    def _read(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                record: dict[str, Any] = json.loads(line[len(MARK) :])
                return record
        return None

    def ask(self, job: dict[str, Any]) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if answer is None:
            self.error = f"{self.tool}'s process exited ({self.proc.wait()})"
            return {"error": self.error}
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def spearman(a: list[float], b: list[float]) -> float:
    from promptxray.explainers.metrics import spearman as rank_correlation

    return rank_correlation(np.asarray(a), np.asarray(b))


def fmt(value: float | None, spec: str, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:{width}{spec}}"


DEFINITIONS = {
    ("occlusion", "captum"): "B",
    ("occlusion", "inseq"): "B,A",
    ("integrated_gradients", "captum"): "=",
    ("integrated_gradients", "inseq"): "=",
}

LEGEND = """\
L: prompt tokens the model reads (chat template included); n: user tokens attributed (the
template's are not, on any side); T: target tokens (promptxray's greedy answer, given to all).
seconds: wall time of one call, in the tool's own process, after a warm-up; x ours: the tool's
seconds / promptxray's, same run; max|d|: max absolute difference from promptxray's scores
over the n user tokens (nats of log p(target)); spearman: rank correlation with them;
peak MB: the process's peak RSS during the call (weights and libraries included);
ours/floor: promptxray's seconds / the floor's, same run (occlusion: one padded forward over
all leave-one-out variants; IG, with --ig-floor: forward + backward at the 32 path points).
def: '=' same definition (scores agree to float rounding); 'B' Captum and Inseq occlude by
replacing the token with a baseline token (id 0, <|endoftext|>) where promptxray removes it
(the sequence gets shorter), so scores differ by definition; 'A' Inseq's occlusion keeps
|score| for each target token, so its sum over the target is sum |d_i|, not sum d_i."""


def skip_note(run: dict[str, Any]) -> str:
    if "skipped" in run:
        return f"skipped (projected {run['skipped']:.0f} s){run.get('why', '')}"
    return f"failed after {run.get('seconds', 0):.1f} s: {run['error']}"


def print_table(
    infos: dict[str, dict[str, Any]], runs: dict[tuple[str, str, str], dict[str, Any]], args: Any
) -> None:
    print(
        f"{'prompt':8} {'L':>4} {'n':>4} {'T':>2} {'method':9} {'tool':10} {'seconds':>8} "
        f"{'x ours':>6} {'max|d|':>7} {'spearman':>8} {'def':>3} {'peak MB':>7} "
        f"{'ours/floor':>10}  note"
    )
    for name, info in infos.items():
        if info.get("over_max"):
            print(f"{name:8} {len(info['ids']):>4}  longer than --max-tokens {args.max_tokens}")
            continue
        if "target_ids" not in info:
            print(f"{name:8} {info.get('note', 'not run')}")
            continue
        head = (
            f"{name:8} {len(info['ids']):>4} {len(info['positions']):>4} "
            f"{len(info['target_ids']):>2}"
        )
        for method in args.methods:
            ours = runs.get(("promptxray", method, name), {})
            floor = runs.get(("floor", method, name), {})
            short = "occlusion" if method == "occlusion" else "IG 32"
            for tool in ("promptxray", *args.peers):
                run = runs.get((tool, method, name))
                if run is None:
                    continue
                cells = f"{head} {short:9} {tool:10}"
                if "seconds" not in run or "error" in run:
                    print(f"{cells} {'':65}  {skip_note(run)}")
                    continue
                ratio = diff = rho = over_floor = None
                definition, note = "", ""
                if tool == "promptxray":
                    if "seconds" in floor and "error" not in floor:
                        over_floor = run["seconds"] / floor["seconds"]
                        note = f"floor {floor['seconds']:.2f} s"
                    elif floor:
                        note = "floor " + skip_note(floor)
                    if run.get("completeness") is not None:
                        note = (
                            f"completeness error {100 * run['completeness']:.0f}% "
                            f"({run['steps']} nodes)" + (f"; {note}" if note else "")
                        )
                elif "scores" in ours and "error" not in ours:
                    ratio = run["seconds"] / ours["seconds"]
                    a, b = np.asarray(ours["scores"]), np.asarray(run["scores"])
                    diff = float(np.max(np.abs(a - b)))
                    rho = spearman(ours["scores"], run["scores"])
                    definition = DEFINITIONS[(method, tool)]
                print(
                    f"{cells} {run['seconds']:8.2f} {fmt(ratio, '.1f', 6)} "
                    f"{fmt(diff, '.4f' if diff is None or diff >= 0.01 else '.0e', 7)} "
                    f"{fmt(rho, '.3f', 8)} {definition:>3} {fmt(run.get('peak_mb'), '.0f', 7)} "
                    f"{fmt(over_floor, '.2f', 10)}" + (f"  {note}" if note else "")
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=1100, help="skip longer prompts")
    parser.add_argument("--prompts", default=",".join(PEER_PROMPTS), help="names, in order")
    parser.add_argument("--peers", default="captum,inseq")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--budget", type=float, default=180, help="skip a run projected over this many seconds"
    )
    parser.add_argument(
        "--total", type=float, default=840, help="skip runs projected past this many seconds"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads in every process (0: torch's)"
    )
    parser.add_argument("--ig-floor", action="store_true", help="also time IG's floor")
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.methods = [m for m in args.methods.split(",") if m]
    args.peers = [p for p in args.peers.split(",") if p]
    args.prompts = [p for p in args.prompts.split(",") if p]
    unknown = set(args.prompts) - set(PEER_PROMPTS)
    if unknown:
        parser.error(f"unknown prompts {sorted(unknown)}; choose from {', '.join(PEER_PROMPTS)}")
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        entry: dict[str, Callable[[], None]] = {
            "promptxray": partial(child_promptxray, args),
            "captum": child_captum,
            "inseq": child_inseq,
        }
        entry[args.child]()
        return

    started = time.perf_counter()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    infos: dict[str, dict[str, Any]] = {}
    runs: dict[tuple[str, str, str], dict[str, Any]] = {}

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with tempfile.NamedTemporaryFile("w", prefix="peers-", suffix=".log", delete=False) as log:
        try:
            run_all(args, log, started, infos, runs)
        except KeyboardInterrupt:
            print("interrupted: the table shows the runs finished so far")
    env = [f"torch threads {args.threads or 'default'}", f"--budget {args.budget:.0f} s"]
    env += [f"--total {args.total:.0f} s", f"children's stderr: {log.name}"]
    print("model SmolLM2-135M-Instruct (default), fp32 CPU; " + ", ".join(env) + "\n")
    print_table(infos, runs, args)
    print("\n" + LEGEND)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s; load average at end: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


def run_all(
    args: argparse.Namespace,
    log: IO[str],
    started: float,
    infos: dict[str, dict[str, Any]],
    runs: dict[tuple[str, str, str], dict[str, Any]],
) -> None:
    """Prompt by prompt (shortest first), method by method: promptxray, the floor, then the
    peers, so every comparison that runs is complete (filling `infos` and `runs`)."""
    deadline = started + args.total
    children: dict[str, Child] = {"promptxray": Child("promptxray", args, log)}

    def progress(text: str) -> None:
        print(f"  [{time.perf_counter() - started:5.0f} s] {text}", file=sys.stderr, flush=True)

    for name in args.prompts:
        if time.perf_counter() > deadline:
            infos[name] = {"note": f"not run: --total {args.total:.0f} s reached"}
            continue
        info = children["promptxray"].ask({"op": "prepare", "prompt": name})
        infos[name] = info
        if "target_ids" not in info or info.get("over_max"):
            continue
        progress(f"{name:8} {len(info['ids'])} tokens, target {info['target_text']!r}")
        for method in args.methods:
            tools = ["promptxray"]
            if method == "occlusion" or args.ig_floor:
                tools.append("floor")
            for tool in [*tools, *args.peers]:
                mine = "promptxray" if tool == "floor" else tool
                projected = projected_seconds(mine, method, info)
                left = deadline - time.perf_counter()
                if projected > args.budget:
                    run: dict[str, Any] = {"skipped": projected}
                elif projected > left:
                    run = {"skipped": projected, "why": f"; {max(left, 0):.0f} s left of --total"}
                else:
                    if tool not in children and tool != "floor":
                        children[tool] = Child(tool, args, log)
                        progress(f"{tool} started in {children[tool].start_s:.0f} s")
                    job = {"op": "run", "tool": tool, "method": method, "prompt": name}
                    job.update(info=info, limit_s=min(3 * args.budget, max(60, left)))
                    run = children[mine].ask(job)
                runs[(tool, method, name)] = run
                what = skip_note(run) if "error" in run or "skipped" in run else ""
                progress(
                    f"{name:8} {method:20} {tool:10} "
                    + (what or f"{run['seconds']:.2f} s (projected {projected:.0f} s)")
                )
    for child in children.values():
        child.close()


if __name__ == "__main__":
    main()
