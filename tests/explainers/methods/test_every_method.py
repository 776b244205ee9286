"""Every registered method (and auto) runs on a real model end to end: finite scores for
every unit, and faithfulness figures on every method that attributes the target."""

from __future__ import annotations

import math

import pytest

from promptxray.explainers.explain import explain
from promptxray.explainers.registry import list_methods
from tests.helpers import request_for

TEXT = "Once upon a time, a little cat found a red ball in the garden."
FAITHFULNESS = ("comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc")


@pytest.mark.parametrize("method", [m.name for m in list_methods()] + ["auto"])
def test_every_method_explains_with_faithfulness(stories, method):
    expl = explain(request_for(TEXT, method=method, granularity="word"), backend=stories)
    assert expl.spans and all(math.isfinite(s.score) for s in expl.spans)
    spec = next((m for m in list_methods() if m.name == expl.method), None)
    assert spec is not None
    if spec.attributes_target:
        assert all(math.isfinite(expl.metrics[k]) for k in FAITHFULNESS)
        assert 0.0 <= expl.metrics["deletion_auc"] <= 1.0
    else:
        assert not any(k in expl.metrics for k in FAITHFULNESS)
    assert expl.to_json()  # every detail is JSON-able
