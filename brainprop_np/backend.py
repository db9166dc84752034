"""The one place that chooses NumPy (CPU) or CuPy (GPU).

Layers never import cupy: they receive a `Backend` and use `backend.xp` as their
array module, and `backend.kernels` for the hot loops (im2col, max-pool, ...): on the
CPU the fast set `kernels.fast` (numba: compiled, fused, multi-core) when numba imports,
else — or with `kernels="numpy"` / BRAINPROP_KERNELS=numpy — the NumPy reference
`kernels.cpu`; on CuPy `kernels.gpu` (hand-written CUDA).

    be = get_backend("auto")      # GPU when CuPy imports and sees a device, else NumPy
    be = get_backend("cpu", kernels="numpy")   # the reference kernels
    x = be.asarray(host_array, "float32")
    host = to_host(x)

Random numbers: weights are initialised on the host with NumPy from the seed, so the
same seed gives the same initial network on both backends. Per-batch randomness
(exploration, dropout masks) is drawn inside the kernels from the counter-based generator
of brainprop_np/philox.py (Philox4x32-10): the same bits on NumPy, the fast set and CUDA,
and no generator state on the device.
"""
import sys

import numpy as np

from .errors import one_line

DEVICES = ("auto", "cpu", "gpu")
KERNEL_SETS = ("auto", "fast", "numpy")
DTYPES = ("float32", "float64")

_cache = {}


class BackendError(RuntimeError):
    """The requested device or kernel set cannot be used (e.g. `gpu` without CuPy or a CUDA
    device). str(e): the one-line message with what to do; e.reason: why alone; e.setting:
    the config key that asked for it ('device' or 'kernels')."""

    def __init__(self, message, reason=None, setting=None):
        super().__init__(message)
        self.reason, self.setting = reason or message, setting


def _import_cupy():
    import cupy
    return cupy


def _one_line(e):
    """The first line of `TypeName: message` (CUDA errors carry long multi-line texts)."""
    return one_line(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip(": "))


_PROBE_KERNEL = r"""
extern "C" __global__ void brainprop_probe(float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 2.0f * x[i] + 1.0f;
}
"""


def _probe_nvrtc(cupy):
    """NVRTC and the kernel cache: compile and launch a tiny RawKernel."""
    x = cupy.arange(4, dtype=np.float32)
    cupy.RawKernel(_PROBE_KERNEL, "brainprop_probe")((1,), (32,), (x, np.int32(4)))
    got = cupy.asnumpy(x)
    if not np.array_equal(got, np.array([1, 3, 5, 7], np.float32)):
        raise RuntimeError(f"the probe kernel computed {got.tolist()}")


def _probe_cublas(cupy):
    """cuBLAS: one small GEMM."""
    a = cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    got = cupy.asnumpy(a @ a.T)
    if not np.array_equal(got, np.array([[5, 14], [14, 50]], np.float32)):
        raise RuntimeError(f"a 2x3 GEMM gave {got.tolist()}")


PROBES = (("NVRTC (a RawKernel launch)", _probe_nvrtc), ("cuBLAS (a GEMM)", _probe_cublas))


def _try_cupy():
    """(cupy, None) when CuPy imports, sees a device, and NVRTC and cuBLAS work on it;
    else (None, reason) and whether CuPy saw a device (a GPU that is there but cannot be used)."""
    try:
        cupy = _import_cupy()
    except Exception as e:  # ImportError, or a broken CUDA install
        return None, (f"CuPy is not importable ({_one_line(e)}); install the GPU extra: "
                      "pip install -e \".[gpu]\" (CUDA 12) or \".[gpu13]\" (CUDA 13)"), False
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return None, f"CuPy sees no CUDA device ({_one_line(e)})", False
    if n < 1:
        return None, "CuPy sees no CUDA device", False
    for what, probe in PROBES:
        try:
            probe(cupy)
        except Exception as e:
            return None, (f"{what} failed on the GPU ({_one_line(e)}); CuPy needs the CUDA toolkit's "
                          "libraries: pip install cupy-cudaXXx[ctk] or a system CUDA toolkit"), True
    return cupy, None, True


class Backend:
    """An array module and its kernels.

    Attributes: name ('numpy' | 'cupy'), device ('cpu' | 'gpu'), xp (the array module),
    kernels (module of hot-loop functions with one signature for both backends),
    kernel_set ('fast' | 'numpy' | 'cuda': kernels.NAME, recorded in summary.json).
    """

    def __init__(self, name, xp, kernels):
        self.name = name
        self.device = "cpu" if name == "numpy" else "gpu"
        self.xp = xp
        self.kernels = kernels
        self.kernel_set = getattr(kernels, "NAME", name)

    def __repr__(self):
        return f"Backend({self.name}, device={self.device}, kernels={self.kernel_set})"

    def asarray(self, a, dtype=None):
        """Copy/convert a host or device array onto this backend."""
        if self.name == "cupy":
            return self.xp.asarray(a, dtype=dtype)
        return np.asarray(to_host(a), dtype=dtype)

    def synchronize(self):
        """Wait for the device (no-op on the CPU); call before reading host timers."""
        if self.name == "cupy":
            self.xp.cuda.Device().synchronize()

    def device_name(self):
        """A human-readable name of the device that computes."""
        if self.name == "cupy":
            props = self.xp.cuda.runtime.getDeviceProperties(self.xp.cuda.Device().id)
            name = props["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        import platform
        return platform.processor() or platform.machine() or "cpu"


def kernel_set_wanted(kernels=None):
    """The CPU kernel set asked for: `kernels` when it names one ('fast' | 'numpy'), else
    (None or 'auto', the default) $BRAINPROP_KERNELS when set, else 'auto'."""
    import os
    if kernels not in (None, "auto"):
        if kernels not in KERNEL_SETS:
            raise ValueError(f"kernels={kernels!r} is not allowed; use one of {', '.join(KERNEL_SETS)}")
        return kernels
    k = os.environ.get("BRAINPROP_KERNELS") or "auto"
    if k not in KERNEL_SETS:
        raise ValueError(f"BRAINPROP_KERNELS={k!r} is not allowed; use one of {', '.join(KERNEL_SETS)}")
    return k


def _cpu_kernels(kernels):
    """kernels.fast (numba) for 'fast' and for 'auto' when numba imports; else kernels.cpu."""
    from .kernels import cpu
    if kernels == "numpy":
        return cpu
    try:
        from .kernels import fast
    except ImportError as e:
        if kernels == "fast":
            raise BackendError(f"kernels=fast needs numba ({e}); pip install numba, or use kernels=numpy",
                               reason=f"numba does not import ({e})", setting="kernels")
        return cpu
    return fast


def get_backend(device="auto", kernels=None):
    """Backend for `device` in {'auto', 'cpu', 'gpu'} (a Backend passes through).

    'auto' takes the GPU when CuPy imports, sees a device and passes the checks of
    `_try_cupy` (a RawKernel launch through NVRTC, a cuBLAS GEMM), else
    the CPU — with a one-line note on stderr when a GPU was seen but failed a check;
    'gpu' without a usable one raises BackendError with the reason (one line). On the
    CPU, `kernels` ('auto' | 'fast' | 'numpy'; default $BRAINPROP_KERNELS, else 'auto')
    picks the kernel set: 'auto' is the fast one when numba imports.
    """
    if isinstance(device, Backend):
        return device
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not allowed; use one of {', '.join(DEVICES)}")
    ks = kernel_set_wanted(kernels)
    key = (device, ks)
    if key in _cache:
        return _cache[key]
    if device == "cpu":
        be = Backend("numpy", np, _cpu_kernels(ks))
    else:
        cupy, why, seen = _try_cupy()
        if cupy is None:
            if device == "gpu":
                raise BackendError(f"device=gpu is not available: {why}. Use device=cpu or device=auto.",
                                   reason=why, setting="device")
            if seen:
                print(f"brainprop_np: device=auto: using the CPU, since {why}", file=sys.stderr)
            _cache[key] = be = get_backend("cpu", ks)
            return be
        from .kernels import gpu
        be = Backend("cupy", cupy, gpu)
    _cache[key] = be
    return be


def to_host(a):
    """A NumPy copy (or view) of a NumPy or CuPy array; scalars pass through."""
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def check_dtype(dtype):
    """Return the numpy dtype for 'float32' | 'float64', or raise a one-line error."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not allowed; use one of {', '.join(DTYPES)}")
    return np.dtype(name)
