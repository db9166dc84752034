"""Device launches per training step (tests/launch_counter.py, on the emulated GPU backend, with the
training loop's own step and its metrics) stay at most what issue 19 brought them to: the draws made
inside the dropout and output-step kernels (no generator launches) and the epoch's metrics added by
`brainprop_step` (no per-step Σδ, Σ|δ|, argmax, != and sums). Before issue 11: dense 26, conv 54,
loccon 61, deep 171; before issue 19: dense 34, conv 55, loccon 55, deep 140 with the loop's whole
bookkeeping counted (25, 46, 46, 131 without its Σδ, Σ|δ| and explored counts)."""
import pytest

import launch_counter

BUDGET = {"dense": 22, "conv": 41, "loccon": 41, "deep": 124}


@pytest.mark.parametrize("model", list(BUDGET))
def test_launches_per_training_step(emulator, monkeypatch, model):
    counts = launch_counter.count_step(model, emulator, monkeypatch)
    assert counts["total"] <= BUDGET[model], counts
    assert counts.get("copy", 0) == 0, counts       # no transposing or contiguity copies in a step
    assert counts.get("random", 0) == 0, counts     # the draws are made inside the kernels
