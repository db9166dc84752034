"""Spread large element-wise NumPy work over the CPU cores.

NumPy runs each element-wise operation on one core; only the GEMMs (BLAS) use them all.
`chunked(fn, n, size)` calls fn(start, stop) on contiguous slices of range(n) (rows of
the work) from a small thread pool; NumPy releases the GIL inside its loops. It is used
only for element-wise work and copies, whose results do not depend on how the rows are
split, so the output is bit-identical to one call on all rows. Reductions stay in one
thread for the same reason.

Work below MIN_ELEMENTS runs in the calling thread (a hand-off costs more than it saves).
`BRAINPROP_THREADS=1` turns the pool off; the default is the number of usable cores, at
most 4. OpenBLAS's worker threads spin for a long time after each GEMM and then compete
with these threads: run.py and the benchmarks set OPENBLAS_THREAD_TIMEOUT=4 before NumPy
loads (an environment variable; it cannot be changed once NumPy is imported).
"""
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

MIN_ELEMENTS = 1 << 20


def _n_threads():
    env = os.environ.get("BRAINPROP_THREADS")
    if env:
        return max(1, int(env))
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


N_THREADS = _n_threads()
_pool = None


def chunked(fn, n, size):
    """Run fn(start, stop) over ≤ N_THREADS contiguous chunks of range(n); size: elements touched."""
    global _pool
    if N_THREADS == 1 or n < 2 or size < MIN_ELEMENTS:
        fn(0, n)
        return
    parts = min(N_THREADS, n)
    bounds = [n * i // parts for i in range(parts + 1)]
    if _pool is None:
        _pool = ThreadPoolExecutor(N_THREADS - 1, thread_name_prefix="brainprop")
    # the calling thread takes the first chunk itself
    # each worker runs in a copy of the caller's context, so np.errstate applies there too
    futures = [_pool.submit(contextvars.copy_context().run, fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()
