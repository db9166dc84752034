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

numba checks a cached kernel against its own source file only, while kernels here inline
helpers from other files of the set (conv_row, fb_in_value, the Philox rounds): an edit to
a helper would leave the kernels that inline it running old code from a warm cache. So the
import of this module (for numba's usual cache, __pycache__ beside the sources) and the
first call of a kernel cached elsewhere (NUMBA_CACHE_DIR, or numba's per-user folder when
the sources' folder is read-only) compare a digest of every source of the set with the one
stored beside the cache, and on a difference drop the set's cached kernels
(drop_stale_cache), which are then compiled again.
"""
import contextlib
import hashlib
import os
import time
import types
from pathlib import Path

# numba's OpenMP workers sleep when idle instead of spinning (OMP_WAIT_POLICY=PASSIVE):
# the package's BLAS_ENV sets it before numba can start them.
import numba

PARALLEL_MIN = 1 << 16
prange = numba.prange
_compile = {"seconds": 0.0, "notice": None, "checked": set()}
HERE = Path(__file__).resolve().parent
STAMP = "brainprop_fast_sources.sha256"


def sources_digest(folder=HERE):
    """sha256 over the set's sources (*.py of folder, in name order)."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def drop_stale_cache(cache_dir, digest, modules):
    """In cache_dir: when STAMP is not `digest`, remove the cached kernels of `modules` (numba's
    <module>.<function>-<line>.py<ver>.nbi/.nbc files) and write `digest` to STAMP (to a
    temporary name, then renamed). Returns how many files were removed."""
    cache_dir = Path(cache_dir)
    with contextlib.suppress(OSError):
        if (cache_dir / STAMP).read_text() == digest:
            return 0
    removed = 0
    for path in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
        if path.name.split(".")[0] in modules:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    with contextlib.suppress(OSError):          # a read-only cache is numba's to handle
        tmp = cache_dir / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        os.replace(tmp, cache_dir / STAMP)
    return removed


def _check_cache_once(f):
    """drop_stale_cache for the cache folder of dispatcher f, once per process and folder."""
    try:
        cache_dir = f._cache._cache_path          # numba's internals: skip the check if they moved
    except AttributeError:
        return
    if str(cache_dir) not in _compile["checked"]:
        _check_folder(cache_dir)


def _check_folder(cache_dir):
    """drop_stale_cache in cache_dir (made if missing, so that a new cache starts stamped)."""
    _compile["checked"].add(str(cache_dir))
    with contextlib.suppress(OSError):          # a folder that cannot be made: numba looks elsewhere
        os.makedirs(cache_dir, exist_ok=True)
        drop_stale_cache(cache_dir, sources_digest(), {p.stem for p in HERE.glob("*.py")})


_check_folder(HERE / "__pycache__")             # numba's usual place, before any kernel loads from it


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
            _check_cache_once(f)
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
