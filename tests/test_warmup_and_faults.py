"""The warm-up before the first epoch (run/warmup.py) and device faults (run/failures.py).

The warm-up compiles and runs every kernel of a step on a throw-away network: it must not
change a single bit of the run, and it is recorded apart in summary.json. A CUDA error
(recognised by CuPy's type name and module, here a fake class) is one line with the
CUDA_LAUNCH_BLOCKING hint, exit status 1, and no checkpoint is attempted after it.
"""
import importlib
import json

import pytest

from brainprop_np.run import failures as F
from brainprop_np.run.checkpoint import load_checkpoint
from test_train import _config, _run, _same_run

T = importlib.import_module("brainprop_np.run.train")
W = importlib.import_module("brainprop_np.run.warmup")


def cuda_error(name="CUDARuntimeError", module="cupy_backends.cuda.api.runtime", base=RuntimeError):
    """A class with the type name and module of one of CuPy's CUDA errors."""
    return type(name, (base,), {"__module__": module})


# ---- the warm-up

def test_warm_up_changes_no_bit_of_the_run(tmp_path, monkeypatch):
    with_warmup = _run(tmp_path, "with")
    assert with_warmup.summary["warmup_seconds"] > 0
    monkeypatch.setattr(T, "warm_up", lambda run: None)
    without = _run(tmp_path, "without")
    assert without.summary["warmup_seconds"] is None
    _same_run(tmp_path / "with", tmp_path / "without")


def test_summary_records_warm_up_and_no_cublas_fallback_on_the_cpu(tmp_path):
    _run(tmp_path, "s", _config(epochs=1))
    s = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert isinstance(s["warmup_seconds"], float) and s["warmup_seconds"] >= 0
    assert s["cublas_fallback"] is None


def test_warm_up_trains_a_throw_away_network_with_each_batch_size(tmp_path, monkeypatch):
    """A full batch and the last, smaller one (300 images in batches of 64: 64 and 44), then
    inference; the run's own rule is never asked (the interrupt tests count its trials)."""
    sizes, trials = [], []
    real_step = W.step
    monkeypatch.setattr(W, "step", lambda rule, opt, net, x, y, *a: (sizes.append(len(y)),
                                                                     real_step(rule, opt, net, x, y, *a))[1])
    real_rule = T.make_rule

    class Counted:
        def __init__(self, rule):
            self.rule = rule

        def trial(self, *a, **k):
            trials.append(1)
            return self.rule.trial(*a, **k)

    monkeypatch.setattr(T, "make_rule", lambda *a, **k: Counted(real_rule(*a, **k)))
    _run(tmp_path, "w", _config(epochs=1))
    assert sizes == [64, 300 % 64]
    assert len(trials) == 5                     # the epoch's 5 batches, none from the warm-up


def test_compile_notice_only_when_numba_compiles(monkeypatch, capsys):
    jit = pytest.importorskip("brainprop_np.kernels.fast.jit")
    from brainprop_np.run.console import Say

    def add_one(x):
        return x + 1

    for cached, said in ((True, False), (False, True)):
        k = jit.Kernel(add_one, cache=False)
        monkeypatch.setattr(jit, "_in_cache", lambda f: cached)
        be = type("Be", (), {"kernel_set": "fast"})()
        with W._compile_notice(be, Say(True)):
            assert k(1, 1.0) == 2.0 and k(1, 2.0) == 3.0
        err = capsys.readouterr().err
        assert (W.COMPILING in err) == said and err.count(W.COMPILING) <= 1
    k = jit.Kernel(add_one, cache=False)
    k(1, 1.0)                                   # outside the warm-up: never said
    assert W.COMPILING not in capsys.readouterr().err


# ---- device faults

@pytest.mark.parametrize("name,module", [
    ("CUDARuntimeError", "cupy_backends.cuda.api.runtime"), ("CUDADriverError", "cupy_backends.cuda.api.driver"),
    ("CUBLASError", "cupy_backends.cuda.libs.cublas")])
def test_cuda_errors_are_recognised_by_name_and_module(name, module):
    assert F.is_device_fault(cuda_error(name, module)("x"))
    sub = type("Sub", (cuda_error(name, module),), {})       # a subclass counts too
    assert F.is_device_fault(sub("x"))


def test_other_errors_are_not_device_faults():
    assert not F.is_device_fault(RuntimeError("x"))
    assert not F.is_device_fault(cuda_error("CUDARuntimeError", "mylib")("x"))        # not CuPy's
    assert not F.is_device_fault(cuda_error("OutOfMemoryError", "cupy.cuda.memory", MemoryError)("x"))


class _FaultAt:
    """The run's rule, raising a fake CUDA error at its n-th learning trial."""

    def __init__(self, rule, n):
        self.rule, self.n, self.calls = rule, n, 0

    def trial(self, *a, **kw):
        self.calls += 1
        if self.calls == self.n:
            raise cuda_error()("cudaErrorIllegalAddress: an illegal memory access was encountered")
        return self.rule.trial(*a, **kw)


def test_device_fault_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _FaultAt(real(*a, **k), 8))   # epoch 2 (5 batches each)
    writes = []
    R = importlib.import_module("brainprop_np.run.records")
    real_write = R.write_checkpoint
    monkeypatch.setattr(R, "write_checkpoint", lambda run, *a: (writes.append(run.epoch), real_write(run, *a)))
    with pytest.raises(F.DeviceFault) as info:
        _run(tmp_path, "f")
    line = str(info.value)
    assert "\n" not in line and line.startswith("training stopped in epoch 2: device fault (CUDARuntimeError: ")
    assert "illegal memory access" in line and line.endswith(F.CUDA_HINT)
    assert "CUDA_LAUNCH_BLOCKING=1" in line and f"last good checkpoint in {tmp_path / 'f'} is kept" in line
    assert writes == [1]                                        # the epoch-1 checkpoint, none after the fault
    _, meta, _ = load_checkpoint(tmp_path / "f" / "checkpoint.npz")
    assert (meta["epoch"], meta["batch"]) == (1, 0)


def test_device_fault_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _FaultAt(real(*a, **k), 2))
    with pytest.raises(F.DeviceFault, match="none was written before; rerun with CUDA_LAUNCH_BLOCKING=1"):
        _run(tmp_path, "g")
    assert not (tmp_path / "g" / "checkpoint.npz").exists()


def test_cuda_error_outside_training_is_one_line_exit_1(monkeypatch, capsys, tmp_path):
    from test_run_cli import _main, _raise, _write_config
    err = cuda_error("CUDADriverError", "cupy_backends.cuda.api.driver")("CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure")
    code, line = _main(monkeypatch, capsys, [_write_config(tmp_path)], [("brainprop_np.run.train", "train", _raise(err))])
    assert code == 1 and "CUDADriverError" in line and "launch failure" in line
    assert line.endswith("rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel")


def test_a_device_fault_in_the_warm_up_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "step", _raise_cuda)
    with pytest.raises(F.DeviceFault, match=r"^warming up the kernels: device fault \(CUDARuntimeError"):
        _run(tmp_path, "h")


def _raise_cuda(*a, **k):
    raise cuda_error()("cudaErrorLaunchFailure: unspecified launch failure")

