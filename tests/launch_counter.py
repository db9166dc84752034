"""Count what one training step asks of the GPU, on the CPU (tests/cuda_emulator.py).

`count_step(model, emulator)` builds a preset on the emulated GPU backend (kernels/gpu.py
on the .cu sources compiled by g++) and runs two training steps with the training loop's
own step (`run.loop.step`: `rule.trial`, which adds the epoch's metrics to the loop's
float64 accumulator, `SGD.step`, and the L2 term added to the loss sum); the second
(steady-state) step is counted. What is counted is what CuPy would launch on the GPU:

  raw      hand-written CUDA kernels (cupy.RawKernel; counted by the emulator)
  gemm     cuBLAS GEMMs (`@`, matmul, and kernels.gpu's own strided-batched calls)
  copy     copies CuPy makes: ascontiguousarray / reshape / ravel of a non-contiguous
           array, astype, `a[...] = b`, fancy indexing, and the operands CuPy's batched
           matmul makes contiguous first (cupy._core._routines_linalg.matmul does
           `ascontiguousarray(a)` for ndim > 2)
  ufunc    CuPy elementwise kernels and reductions (each ufunc call, `.sum()`, argmax, fill,
           zeros/ones fills)
  random   generator draws (cupy.random.Generator.random; none since the draws are made
           inside the kernels, kept to show it)

Allocations (cupy.empty) and views (reshape of a contiguous array, transpose, basic
slicing) launch nothing and are not counted. This is a model of CuPy, not CuPy: it
follows the rules above, which were read from CuPy's source.

    python tests/launch_counter.py          # the table for dense, conv, loccon, deep
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import cuda_emulator  # noqa: E402

KINDS = ("raw", "gemm", "copy", "ufunc", "random")


class Counts(dict):
    def add(self, kind, what, n=1):
        if Counts.enabled:
            self[kind] = self.get(kind, 0) + n
            self.log.append((kind, what))

    enabled = True
    log = []


COUNTS = Counts()


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, DevArray) else a


def _wrap(a):
    return a.view(DevArray) if isinstance(a, np.ndarray) and not isinstance(a, DevArray) else a


class DevArray(np.ndarray):
    """A NumPy array that counts the device work each operation on it would launch."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul and method == "__call__":
            a, b = inputs[:2]
            out = kwargs.get("out")
            out = out[0] if isinstance(out, tuple) else out
            COUNTS.add("gemm", "matmul")
            if max(np.ndim(a), np.ndim(b)) > 2:   # CuPy's batched matmul makes operands contiguous
                for op in (a, b):
                    if not op.flags.c_contiguous:
                        COUNTS.add("copy", "matmul operand")
            if out is not None and not out.flags.c_contiguous:
                COUNTS.add("copy", "matmul out")
        else:
            COUNTS.add("ufunc", f"{ufunc.__name__}.{method}")
        inputs = tuple(_plain(i) for i in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(o) for o in kwargs["out"])
        was = Counts.enabled
        Counts.enabled = False
        try:
            result = getattr(ufunc, method)(*inputs, **kwargs)
        finally:
            Counts.enabled = was
        if isinstance(result, tuple):
            return tuple(_wrap(r) for r in result)
        return _wrap(result) if isinstance(result, np.ndarray) else result

    def __array_function__(self, func, types, args, kwargs):
        name = func.__name__
        if name in ("vdot", "dot", "sum", "where", "concatenate", "stack", "copyto", "take_along_axis",
                    "put_along_axis", "cumsum", "maximum", "minimum", "argmax", "tile", "einsum"):
            COUNTS.add("ufunc" if name not in ("dot", "vdot") else "gemm", name)
        was = Counts.enabled
        Counts.enabled = False
        try:
            result = super().__array_function__(func, types, args, kwargs)
        finally:
            Counts.enabled = was
        return _wrap(result) if isinstance(result, np.ndarray) else result

    def _copying(self, result, what):
        if isinstance(result, np.ndarray) and not np.shares_memory(_plain(result), _plain(self)):
            COUNTS.add("copy", what)
        return _wrap(result)

    def reshape(self, *shape, **kw):
        return self._copying(super().reshape(*shape, **kw), "reshape")

    def ravel(self, order="C"):
        return self._copying(super().ravel(order), "ravel")

    def astype(self, dtype, *a, **kw):
        r = super().astype(dtype, *a, **kw)
        if r is not self:
            COUNTS.add("copy", "astype")
        return _wrap(r)

    def copy(self, *a, **kw):
        COUNTS.add("copy", "copy")
        return _wrap(super().copy(*a, **kw))

    def fill(self, v):
        COUNTS.add("ufunc", "fill")
        return super().fill(v)

    def argmax(self, *a, **kw):
        COUNTS.add("ufunc", "argmax")
        return _wrap(np.asarray(_plain(self).argmax(*a, **kw)))

    @staticmethod
    def _advanced(key):
        keys = key if isinstance(key, tuple) else (key,)
        return any(isinstance(k, (np.ndarray, list)) for k in keys)

    def __getitem__(self, key):
        if self._advanced(key):
            COUNTS.add("copy", "take")
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        COUNTS.add("copy", "setitem")
        was = Counts.enabled
        Counts.enabled = False
        try:
            return super().__setitem__(key, _plain(value) if isinstance(value, np.ndarray) else value)
        finally:
            Counts.enabled = was


class CountingNumpy(cuda_emulator.GuardedNumpy):
    """The stand-in for cupy: guarded arrays that count, and the module functions that launch."""
    ndarray = np.ndarray

    def empty(self, shape, dtype=float, order="C"):
        return super().empty(shape, dtype, order).view(DevArray)

    def zeros(self, shape, dtype=float):
        out = self.empty(shape, dtype)
        COUNTS.add("ufunc", "zeros (memset)")
        _plain(out)[...] = 0
        return out

    def ones(self, shape, dtype=float):
        out = self.empty(shape, dtype)
        COUNTS.add("ufunc", "ones (fill)")
        _plain(out)[...] = 1
        return out

    def zeros_like(self, a, dtype=None):
        return self.zeros(a.shape, a.dtype if dtype is None else dtype)

    def asarray(self, a, dtype=None):
        out = np.asanyarray(a)
        if dtype is not None and out.dtype != np.dtype(dtype):
            COUNTS.add("copy", "asarray astype")
            out = _plain(out).astype(dtype)
        return _wrap(out)

    def ascontiguousarray(self, a, dtype=None):
        a = self.asarray(a, dtype)
        if not a.flags.c_contiguous:
            COUNTS.add("copy", "ascontiguousarray")
            return _wrap(np.ascontiguousarray(_plain(a)))
        return a

    def matmul(self, a, b, out=None):
        if out is None:
            return np.matmul(_wrap(a), b)
        return np.matmul(_wrap(a), b, out=out)

    def vdot(self, a, b):
        COUNTS.add("gemm", "vdot")
        return _wrap(np.asarray(np.vdot(_plain(a), _plain(b))))

    def arange(self, *a, **kw):
        COUNTS.add("ufunc", "arange")
        return _wrap(np.arange(*a, **kw))


def counting_backend(monkeypatch, emulator):
    """A Backend on kernels.gpu, the emulator and counting arrays (monkeypatch undoes it)."""
    from brainprop_np.backend import Backend
    from brainprop_np.kernels import gpu
    xp = CountingNumpy()
    monkeypatch.setattr(gpu, "xp", xp)
    monkeypatch.setattr(gpu, "_function", emulator.get_function)
    if hasattr(gpu, "_gemm_strided_batched"):
        fake = getattr(cuda_emulator, "gemm_strided_batched", None)

        def counted(*args, **kw):
            COUNTS.add("gemm", "cublas strided batched")
            return fake(*args, **kw)
        monkeypatch.setattr(gpu, "_gemm_strided_batched", counted)

    class CountingBackend(Backend):
        def asarray(self, a, dtype=None):
            return xp.asarray(np.asarray(a) if not isinstance(a, np.ndarray) else a, dtype)

    return CountingBackend("numpy", xp, gpu)


CASES = {   # model: (input shape, batch of the benchmark)
    "dense": ((28, 28, 1), 128),
    "conv": ((28, 28, 1), 128),
    "loccon": ((28, 28, 1), 32),
    "deep": ((32, 32, 3), 16),     # batch 128 in the benchmark; the count does not depend on it
}


def count_step(model, emulator, monkeypatch):
    """{kind: launches} of one steady-state training step of `model` on the emulated GPU."""
    import brainprop_np as bp
    import importlib
    L = importlib.import_module("brainprop_np.run.loop")
    from brainprop_np.presets import PRESET_SETTINGS
    be = counting_backend(monkeypatch, emulator)
    shape, batch = CASES[model]
    l2 = PRESET_SETTINGS[model]["l2"]
    net = bp.build_network(model, shape, 10, seed=1, device=be)
    rule, opt = bp.BrainProp(epsilon=0.02), bp.SGD(lr=0.01, l2=l2)
    r = np.random.default_rng(0)
    x = be.asarray(r.random((batch,) + shape, dtype=np.float32))
    y = be.asarray(r.integers(0, 10, batch))
    metrics = be.xp.zeros(5, np.float64)          # the loop's accumulator, made once per run
    for i in range(2):
        COUNTS.clear()
        COUNTS.log.clear()
        emulator.launches.clear()
        L.step(rule, opt, net, x, y, 0.01, batch, metrics)
    out = dict(COUNTS)
    out["raw"] = sum(emulator.launches.values())
    out["total"] = sum(out.get(k, 0) for k in KINDS)
    return out


def table(emulator):
    import pytest
    rows = {}
    for model in CASES:
        mp = pytest.MonkeyPatch()
        try:
            rows[model] = count_step(model, emulator, mp)
        finally:
            mp.undo()
    lines = [f"{'network':<8}" + "".join(f"{k:>8}" for k in KINDS) + f"{'total':>8}"]
    for model, c in rows.items():
        lines.append(f"{model:<8}" + "".join(f"{c.get(k, 0):>8}" for k in KINDS) + f"{c['total']:>8}")
    return rows, "\n".join(lines)


if __name__ == "__main__":
    _, text = table(cuda_emulator.Emulator())
    print("device launches per training step (emulated GPU backend; see tests/launch_counter.py)")
    print(text)
