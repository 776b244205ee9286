"""Thread settings for small machines, shared by the torch and ONNX Runtime backends.

One pool of intra-op threads, one per core (at most 8: more rarely helps a 135M model), and
no inter-op parallelism: our work is one large batched op after another, and two pools
competing for two cores (or a worker thread plus the editor) only thrash. `PROMPTXRAY_THREADS`
overrides the count.
"""

from __future__ import annotations

import contextlib
import os

MAX_THREADS = 8


def default_threads() -> int:
    """Intra-op threads: $PROMPTXRAY_THREADS, else the usable cores, at most MAX_THREADS."""
    raw = os.environ.get("PROMPTXRAY_THREADS", "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def configure_torch_threads() -> int:
    """Apply default_threads() to torch (intra-op) and use one inter-op thread."""
    import torch

    threads = default_threads()
    torch.set_num_threads(threads)
    # raises once set, or once parallel work has started: then the earlier setting stays
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return threads
