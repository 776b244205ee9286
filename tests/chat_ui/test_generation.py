"""The one streaming helper (`Pump`), without a model: order, results, errors and stopping."""

from __future__ import annotations

import threading

import pytest

from promptxray.chat_ui.generation import Cancelled, Pump


def test_pump_yields_every_item_in_order_then_the_result():
    def work(emit):
        for i in range(50):
            emit(i)
        return "done"

    job = Pump(work)
    got = [x for batch in job.batches() for x in batch]
    assert got == list(range(50)) and job.result == "done"


def test_pump_raises_the_work_error_after_its_items():
    def work(emit):
        emit(1)
        raise ValueError("boom")

    job = Pump(work)
    got = []
    with pytest.raises(ValueError, match="boom"):
        for batch in job.batches():
            got += batch
    assert got == [1]
    with pytest.raises(RuntimeError):
        _ = job.result


def test_leaving_the_pump_early_stops_the_work():
    stopped = threading.Event()

    def work(emit):
        while True:
            if job.stop.is_set():
                stopped.set()
                raise Cancelled("stopped")
            emit("tick")
            job.stop.wait(0.01)

    job = Pump(work)
    batches = job.batches()
    next(batches)
    batches.close()  # what Gradio does when a Stop button cancels the event
    assert job.stop.is_set()
    assert stopped.wait(5), "the work kept running"
