"""Device launches per training step (tests/launch_counter.py, on the emulated GPU backend) stay
at most what issue 11 brought them to; before it: dense 26, conv 54, loccon 61, deep 171."""
import pytest

import launch_counter

BUDGET = {"dense": 25, "conv": 46, "loccon": 46, "deep": 131}


@pytest.mark.parametrize("model", list(BUDGET))
def test_launches_per_training_step(emulator, monkeypatch, model):
    counts = launch_counter.count_step(model, emulator, monkeypatch)
    assert counts["total"] <= BUDGET[model], counts
    assert counts.get("copy", 0) == 0, counts       # no transposing or contiguity copies in a step
