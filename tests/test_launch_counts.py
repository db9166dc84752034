"""Device launches per training step (tests/launch_counter.py, on the emulated GPU backend, with the
training loop's own step and its metrics) stay within BUDGET: the draws are made inside the dropout and
output-step kernels (no generator launches) and the epoch's metrics are added by `brainprop_step` (no
per-step Σδ, Σ|δ|, argmax, != and sums). With a generator launch per draw and the metrics summed by
the loop, the same steps took dense 34, conv 55, loccon 55, deep 140 launches."""
import pytest

import launch_counter

BUDGET = {"dense": 22, "conv": 41, "loccon": 41, "deep": 124}


@pytest.mark.parametrize("model", list(BUDGET))
def test_launches_per_training_step(emulator, monkeypatch, model):
    counts = launch_counter.count_step(model, emulator, monkeypatch)
    assert counts["total"] <= BUDGET[model], counts
    assert counts.get("copy", 0) == 0, counts       # no transposing or contiguity copies in a step
    assert counts.get("random", 0) == 0, counts     # the draws are made inside the kernels
