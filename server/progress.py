"""How a job's progress reaches the client, twice: for people and for programs.

- `$/progress` (LSP work-done progress, when the client supports it): a cancellable
  "promptxray: <file>" task whose reports carry human text ("loading the model",
  "attributing", ...) and a percentage.
- `promptxray/status` (a custom notification, always sent): machine-readable, one object
  `{"uri": str, "stage": str, "done": int, "total": int}` where `stage` is one of

    queued        a job for the document was submitted (done = total = 0)
    load          the model is loading (done/total 0/1, then 1/1)
    target        the answer to explain is being found (generated or teacher-forced)
    attribute     the method runs; done/total count its steps when it reports them
    outline       anytime explanations (long prompts): a few large parts, scored exactly
    blocks        anytime explanations (occlusion, granularity auto): the prompt's blocks,
                  scored exactly (and the inert ones tested for redundancy)
    lines_bf16    ... lines in bf16, the top ones rescored exactly (CPUs with fast bf16)
    top_lines     ... exact lines of the blocks that matter most (each result shown when it ends)
    lines         ... exact lines of every block that matters
    refine        ... the other lines, then words and tokens where they matter (then "ready")
    self-explain  the model is asked why it answered so (setting selfExplain)
    ready         the document's explanation is ready (done = total = 1)
    error         the job ended with an error, shown as a diagnostic (done = total = 0)

  Stages arrive in this order, possibly repeating "target"/"attribute" for the line-level
  pass; a job superseded by a newer edit sends nothing more (the newer job starts again at
  "queued"). A client shows "ready"/"error" as the document's state.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from promptxray.explainers.nl.stage_text import STAGE_PROGRESS
from promptxray.server.scheduler import Job, JobResult

if TYPE_CHECKING:
    from promptxray.server.server import PromptXrayServer

STATUS_NOTIFICATION = "promptxray/status"
STATUS_STAGES = (
    "queued",
    "load",
    "target",
    "attribute",
    "outline",
    "blocks",
    "lines_bf16",
    "top_lines",
    "lines",
    "refine",
    "self-explain",
    "ready",
    "error",
)
MESSAGES = {  # the human text of each working stage in $/progress
    "queued": "queued",
    "load": "loading the model",
    "target": "finding the answer",
    "attribute": "attributing",
    **STAGE_PROGRESS,
    "self-explain": "asking the model why",
}
STEP_PERCENT = 10  # report a stage's progress again after this many percent


class ProgressReporter:
    """Reports jobs' progress; maps `$/progress` tokens to jobs so the user can cancel them."""

    def __init__(self, ls: PromptXrayServer) -> None:
        self.ls = ls
        self.jobs: dict[str, Job] = {}

    def status(self, uri: str, stage: str, done: int = 0, total: int = 0) -> None:
        """Send one `promptxray/status` notification (from the event loop's thread)."""
        params = {"uri": uri, "stage": stage, "done": done, "total": total}
        self.ls.protocol.notify(STATUS_NOTIFICATION, params)

    def finished(self, uri: str, result: JobResult) -> None:
        if result.error is not None:
            self.status(uri, "error")
        else:
            self.status(uri, "ready", 1, 1)

    async def run(self, job: Job, submit: Callable[[Job], Future[JobResult]]) -> JobResult:
        """Run `submit(job)` (a concurrent Future) while reporting its progress."""
        self.status(job.uri, "queued")
        token = await self._begin(job)
        job.progress = self._reporter(job, token, asyncio.get_running_loop())
        try:
            return await asyncio.wrap_future(submit(job))
        finally:
            if token is not None:
                self.jobs.pop(token, None)
                self.ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))

    def cancel(self, token: Any) -> None:
        """window/workDoneProgress/cancel: the user stopped this job."""
        job = self.jobs.get(str(token))
        if job is not None:
            job.cancelled.set()

    async def _begin(self, job: Job) -> str | None:
        caps = self.ls.client_capabilities.window
        if caps is None or not caps.work_done_progress:
            return None
        token = f"promptxray-{uuid.uuid4()}"
        try:
            await self.ls.work_done_progress.create_async(token)
        except Exception:
            return None
        self.jobs[token] = job
        name = job.uri.rsplit("/", 1)[-1]
        self.ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=f"promptxray: {name}", message="queued", cancellable=True, percentage=0
            ),
        )
        return token

    def _reporter(self, job: Job, token: str | None, loop: asyncio.AbstractEventLoop) -> Any:
        """The worker-thread callback: throttled, handed to the event loop's thread."""
        last: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            percent = int(100 * done / total) if total else 0
            if last.get("stage") == stage:
                step = percent - last["percent"]
                if step <= 0 or (step < STEP_PERCENT and percent < 100):
                    return
            last.update(stage=stage, percent=percent)
            status = stage if stage in STATUS_STAGES else "attribute"
            loop.call_soon_threadsafe(self.status, job.uri, status, done, total)
            if token is not None:
                value = types.WorkDoneProgressReport(
                    message=MESSAGES.get(stage, stage), percentage=percent, cancellable=True
                )
                loop.call_soon_threadsafe(self.ls.work_done_progress.report, token, value)

        return report
