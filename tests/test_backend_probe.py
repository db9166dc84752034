"""Choosing the GPU checks that it works: NVRTC (a RawKernel launch) and cuBLAS (a GEMM); cuRAND
is not needed (the draws come from philox.cuh in our own kernels). Without a GPU here, a fake `cupy` (NumPy underneath) stands in, with one part
broken at a time: device=gpu must fail with one line naming the part, device=auto must
fall back to the CPU with a one-line note on stderr.
"""
import types

import numpy as np
import pytest

from brainprop_np import backend


class FakeCupy(types.SimpleNamespace):
    """Enough of cupy for backend._try_cupy; `broken` names the part that raises."""

    def __init__(self, broken=None, devices=1, wrong=None):
        super().__init__()
        self.broken, self.wrong = broken, wrong
        runtime = types.SimpleNamespace(getDeviceCount=lambda: devices)
        self.cuda = types.SimpleNamespace(runtime=runtime)
        self.arange = np.arange
        self.asnumpy = np.asarray

    def asarray(self, a, dtype=None):
        if self.broken == "cublas":
            class NoBlas(np.ndarray):
                def __matmul__(self, other):
                    raise RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED\nsecond line")
            return np.asarray(a, dtype).view(NoBlas)
        return np.asarray(a, dtype)

    def RawKernel(self, code, name):
        if self.broken == "nvrtc":
            raise OSError("libnvrtc.so.13: cannot open shared object file: No such file or directory")
        assert f"void {name}(" in code

        def launch(grid, block, args):
            x, n = args
            assert isinstance(n, np.int32)
            x[:n] = 2 * x[:n] + (1 if self.wrong != "nvrtc" else 0)
        return launch


@pytest.fixture
def fake(monkeypatch):
    """Install a fake cupy (backend._import_cupy) with a fresh backend cache; returns a setter."""
    monkeypatch.setattr(backend, "_cache", {})

    def use(**kw):
        cp = FakeCupy(**kw)
        monkeypatch.setattr(backend, "_import_cupy", lambda: cp)
        backend._cache.clear()
        return cp
    return use


def test_working_gpu_is_chosen(fake, capsys):
    cp = fake()
    for device in ("gpu", "auto"):
        be = backend.get_backend(device)
        assert be.name == "cupy" and be.xp is cp
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("part,words", [("nvrtc", "NVRTC"), ("cublas", "cuBLAS")])
def test_broken_part_gpu_is_one_line_error(fake, capsys, part, words):
    fake(broken=part)
    with pytest.raises(backend.BackendError) as err:
        backend.get_backend("gpu")
    msg = str(err.value)
    assert "\n" not in msg and words in msg and "device=gpu is not available" in msg, msg
    assert "cupy-cudaXXx[ctk]" in msg


@pytest.mark.parametrize("part", ["nvrtc", "cublas"])
def test_broken_part_auto_falls_back_with_a_note(fake, capsys, part):
    fake(broken=part)
    be = backend.get_backend("auto")
    assert be.name == "numpy"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device=auto: using the CPU" in err, err
    assert backend.get_backend("auto") is be                  # decided once: no second note
    assert capsys.readouterr().err == ""


def test_wrong_result_counts_as_broken(fake):
    fake(wrong="nvrtc")
    with pytest.raises(backend.BackendError, match="probe kernel computed"):
        backend.get_backend("gpu")


def test_no_cupy_or_no_device_auto_is_silent(fake, monkeypatch, capsys):
    fake(devices=0)
    assert backend.get_backend("auto").name == "numpy"
    with pytest.raises(backend.BackendError, match="no CUDA device"):
        backend.get_backend("gpu")

    def missing():
        raise ImportError("No module named 'cupy'")
    monkeypatch.setattr(backend, "_import_cupy", missing)
    backend._cache.clear()
    assert backend.get_backend("auto").name == "numpy"
    with pytest.raises(backend.BackendError, match="CuPy is not importable"):
        backend.get_backend("gpu")
    assert capsys.readouterr().err == ""                      # the usual CPU machine: no note
