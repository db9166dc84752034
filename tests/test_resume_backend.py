"""A resume continues on the device and kernel set its checkpoint was written on, or says
that it does not: bit for bit needs the same arithmetic (brainprop_np/run/resume.py).

Runs use test_train.py's tiny network on a few hundred MNIST images.
"""
import importlib
import sys

import pytest

from brainprop_np.run.checkpoint import load_checkpoint, save_checkpoint
from brainprop_np.run.failures import TrainingError
from test_train import _KillAfter, _config, _run, _same_run

pytest.importorskip("numba", reason="the fast CPU kernel set needs numba")
T = importlib.import_module("brainprop_np.run.train")
backend = importlib.import_module("brainprop_np.backend")


def _without_numba(monkeypatch):
    """This process as on a machine where numba does not import."""
    kernels = importlib.import_module("brainprop_np.kernels")
    monkeypatch.setattr(backend, "_cache", {})
    monkeypatch.delattr(kernels, "fast")
    monkeypatch.setitem(sys.modules, "brainprop_np.kernels.fast", None)


def _resume(run_dir, *overrides):
    return T.train(resume=run_dir, overrides=list(overrides), verbose=False, progress=False)


@pytest.fixture()
def one_epoch(tmp_path, monkeypatch):
    """A run of 1 of 2 epochs on the fast kernels (config kernels: auto, device: auto)."""
    monkeypatch.delenv("BRAINPROP_KERNELS", raising=False)
    cfg = _config(epochs=1)
    cfg["device"] = "auto"
    res = _run(tmp_path, "run", cfg)
    assert res.summary["kernels"] == "fast" and res.summary["backend_changes"] == []
    meta = load_checkpoint(tmp_path / "run" / "checkpoint.npz")[1]
    assert meta["backend"] == {"device": "cpu", "kernels": "fast"} and meta["backend_changes"] == []
    return tmp_path / "run"


def test_a_resume_without_the_kernel_set_it_ran_on_stops_and_says_what_continues(one_epoch, monkeypatch):
    _without_numba(monkeypatch)
    with pytest.raises(TrainingError, match=(
            r"^cannot resume \S+ on the fast kernels, which it ran on: numba does not import \(.*\); "
            r"give kernels=numpy to continue it elsewhere \(then to float rounding of an uninterrupted run, "
            r"not bit for bit\)$")):
        _resume(one_epoch, "train.epochs=2")
    assert load_checkpoint(one_epoch / "checkpoint.npz")[1]["epoch"] == 1          # nothing was trained


def test_a_resume_on_a_set_the_config_names_records_the_change(one_epoch, monkeypatch, capsys):
    _without_numba(monkeypatch)
    res = T.train(resume=one_epoch, overrides=["train.epochs=2", "kernels=numpy"], progress=False)
    change = "epoch 2: fast kernels on the CPU → numpy kernels on the CPU"
    assert res.summary["kernels"] == "numpy" and res.summary["backend_changes"] == [change]
    assert f"note: resumed on another device or kernel set ({change})" in capsys.readouterr().err
    meta = load_checkpoint(one_epoch / "checkpoint.npz")[1]
    assert meta["backend"] == {"device": "cpu", "kernels": "numpy"} and meta["backend_changes"] == [change]
    assert "device: auto" in (one_epoch / "config.yaml").read_text()          # the pinned device is not written


def test_brainprop_kernels_at_the_resume_is_a_named_set(one_epoch, monkeypatch):
    monkeypatch.setenv("BRAINPROP_KERNELS", "numpy")
    res = _resume(one_epoch, "train.epochs=2")
    assert res.summary["backend_changes"] == ["epoch 2: fast kernels on the CPU → numpy kernels on the CPU"]


def test_a_missing_set_the_run_did_not_use_keeps_its_own_message(tmp_path, monkeypatch):
    """A numpy-kernel run resumed with $BRAINPROP_KERNELS=fast where numba does not import: the
    set the run used is there, so the error is the plain one of kernels=fast."""
    monkeypatch.setenv("BRAINPROP_KERNELS", "numpy")
    _run(tmp_path, "np", _config(epochs=1))
    monkeypatch.setenv("BRAINPROP_KERNELS", "fast")
    _without_numba(monkeypatch)
    with pytest.raises(TrainingError, match=r"^kernels=fast needs numba \(.*\); pip install numba, or use "
                                            r"kernels=numpy$"):
        _resume(tmp_path / "np", "train.epochs=2")


def test_a_change_inside_an_epoch_names_the_batch(tmp_path, monkeypatch):
    monkeypatch.delenv("BRAINPROP_KERNELS", raising=False)
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _KillAfter(real(*a, **k), 3))
    assert _run(tmp_path, "cut").interrupted
    monkeypatch.setattr(T, "make_rule", real)
    first = _resume(tmp_path / "cut", "kernels=numpy").summary["backend_changes"]
    assert first == ["epoch 1 batch 4: fast kernels on the CPU → numpy kernels on the CPU"]


def test_a_checkpoint_from_before_the_backend_was_recorded_pins_nothing(one_epoch):
    path = one_epoch / "checkpoint.npz"
    weights, meta, arrays = load_checkpoint(path)
    del meta["backend"], meta["backend_changes"]
    save_checkpoint(path, weights, meta, arrays)
    res = _resume(one_epoch, "train.epochs=2", "kernels=numpy")
    assert res.summary["kernels"] == "numpy" and res.summary["backend_changes"] == []


def test_a_resume_with_auto_kernels_stays_on_the_set_the_run_used_bit_for_bit(tmp_path, monkeypatch):
    """The config says auto, $BRAINPROP_KERNELS=numpy when the run started, unset at the
    resume: the resume pins the numpy set the run used, and ends as an uninterrupted run."""
    monkeypatch.setenv("BRAINPROP_KERNELS", "numpy")
    whole = _run(tmp_path, "whole")
    assert whole.summary["kernels"] == "numpy"
    assert _run(tmp_path, "half", _config(epochs=1)).summary["kernels"] == "numpy"
    monkeypatch.delenv("BRAINPROP_KERNELS")
    res = _resume(tmp_path / "half", "train.epochs=2")
    assert res.summary["kernels"] == "numpy" and res.summary["backend_changes"] == []
    _same_run(tmp_path / "whole", tmp_path / "half")


def test_a_resume_of_a_gpu_run_without_a_gpu_stops_and_names_device_cpu(one_epoch, monkeypatch):
    path = one_epoch / "checkpoint.npz"
    weights, meta, arrays = load_checkpoint(path)
    meta["backend"] = {"device": "gpu", "kernels": "cuda"}          # as written by a run on a GPU
    save_checkpoint(path, weights, meta, arrays)
    monkeypatch.setattr(backend, "_cache", {})
    monkeypatch.setattr(backend, "_try_cupy", lambda: (None, "CuPy is not installed", False))
    with pytest.raises(TrainingError, match=r"^cannot resume \S+ on the GPU, which it ran on: CuPy is not "
                                            r"installed; give device=cpu to continue it elsewhere"):
        _resume(one_epoch, "train.epochs=2")
    with pytest.raises(TrainingError, match=r"^cannot resume \S+ on the GPU, which it ran on: CuPy is not "
                                            r"installed; give device=cpu to continue it elsewhere"):
        _resume(one_epoch, "train.epochs=2", "device=gpu")          # named: the same advice, not device=auto
    res = _resume(one_epoch, "train.epochs=2", "device=cpu")
    assert res.summary["backend_changes"] == ["epoch 2: cuda kernels on the GPU → fast kernels on the CPU"]
