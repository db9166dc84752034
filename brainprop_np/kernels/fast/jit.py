"""The one numba decorator of the fast kernel set.

`@kernel` compiles a function twice with numba.njit(cache=True, fastmath=False, nogil=True,
error_model="numpy"): once with parallel=True (its `prange` loops run on numba's thread
pool, sized in kernels/threads.py) and once serial (`prange` is then `range`). Calling
it as `f(work, *args)` runs the parallel version when `work` (the elements touched) is
at least PARALLEL_MIN and more than one thread is allowed, else the serial one: a
thread hand-off costs microseconds, more than small arrays take.
  cache     compiled code is kept in __pycache__ beside the sources, so only the first
            run on a machine pays the compile time (`compile_seconds()` reports it;
            `notice_compiling(callback)` calls callback once, before the first kernel that
            numba compiles rather than loads from that cache);
  fastmath  off by default: no reassociation and no fused multiply-adds, so element-wise
            kernels round exactly as NumPy does (`fastmath=` overrides, for GEMM-like sums);
  error_model "numpy": division by zero gives inf/nan as in NumPy, not an exception.
`@serial` is a single serial njit for work that is always small.
"""
import time
import types

# numba's OpenMP workers sleep when idle instead of spinning (OMP_WAIT_POLICY=PASSIVE):
# the package's BLAS_ENV sets it before numba can start them.
import numba

PARALLEL_MIN = 1 << 16
prange = numba.prange
_compile = {"seconds": 0.0, "notice": None}


def _options(**over):
    opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
    opts.update(over)
    return opts


class Kernel:
    """A function compiled parallel and serial; call as k(work, *args)."""

    def __init__(self, fn, **over):
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__
        self.parallel = numba.njit(parallel=True, **_options(**over))(fn)
        self.serial = numba.njit(parallel=False, **_options(**over))(_renamed(fn, "_serial"))

    def __call__(self, work, *args):
        parallel = work >= PARALLEL_MIN and numba.get_num_threads() > 1
        f = self.parallel if parallel else self.serial
        if not f.signatures:                     # first call: compile, or load from the cache
            if _compile["notice"] is not None and not _in_cache(f):
                notice, _compile["notice"] = _compile["notice"], None
                notice()
            t = time.perf_counter()
            out = f(*args)
            _compile["seconds"] += time.perf_counter() - t
            return out
        return f(*args)


def _in_cache(f):
    """Whether numba's disk cache holds code of f's present source (an index that is missing,
    stale or of another numba version means a compile); True when that cannot be told."""
    try:
        return bool(f._cache._cache_file._load_index())
    except Exception:          # numba's internals moved: say nothing rather than something wrong
        return True


def _renamed(fn, suffix):
    """A copy of fn under another qualified name: numba's cache keys files by that name,
    not by the parallel option, so the two versions need names of their own."""
    g = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    g.__qualname__ = fn.__qualname__ + suffix
    g.__module__, g.__doc__ = fn.__module__, fn.__doc__
    return g


def kernel(fn=None, **over):
    """Decorator: @kernel or @kernel(fastmath={...})."""
    if fn is None:
        return lambda f: Kernel(f, **over)
    return Kernel(fn, **over)


def serial(fn):
    return numba.njit(parallel=False, **_options())(fn)


def compile_seconds():
    """Seconds spent so far in first calls (compiling, or loading cached code)."""
    return _compile["seconds"]


def notice_compiling(callback):
    """Call callback() once, just before the first kernel that must be compiled (not loaded
    from numba's cache) is; None withdraws it."""
    _compile["notice"] = callback
