"""The one place that decides how many threads the CPU uses: BLAS's and the kernels' together.

    n = configure()            # at the start of a run or benchmark; returns the count

n is `BRAINPROP_THREADS` when set, else the cores this process may use (its affinity
mask) less those that other processes keep busy (the 1-minute load average, rounded),
at least 1. On a shared 2-core machine with two other jobs running this gives 1: more
threads than free cores make every thread wait for the others at each barrier (a 2–4×
slowdown was measured with the defaults). The count is applied with threadpoolctl to
every BLAS library NumPy loaded (OpenBLAS, MKL, BLIS) and to numba's thread pool, so
GEMMs and the fast kernels never run more threads than that.

OpenBLAS's idle workers spin for a while after each GEMM and then compete with the next
kernel's threads: run.py and the benchmarks set OPENBLAS_THREAD_TIMEOUT=4 before NumPy
loads (an environment variable; it cannot be changed once NumPy is imported).
"""
import os

_state = {"n": None, "limiter": None}


def usable_cores():
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def free_cores():
    """usable_cores() less the cores busy with other work (1-minute load average), ≥ 1."""
    n = usable_cores()
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, min(n, n - busy))


def wanted_threads():
    """BRAINPROP_THREADS when set (an integer ≥ 1), else free_cores()."""
    env = os.environ.get("BRAINPROP_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"BRAINPROP_THREADS={env!r} is not allowed; use an integer >= 1")
        return int(env)
    return free_cores()


def configure(n=None):
    """Set BLAS's and numba's thread counts to n (default wanted_threads()); return n."""
    n = wanted_threads() if n is None else max(1, int(n))
    try:
        from threadpoolctl import threadpool_limits
        _state["limiter"] = threadpool_limits(limits=n, user_api="blas")
    except ImportError:   # threadpoolctl is a dependency; without it BLAS keeps its own count
        pass
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    _state["n"] = n
    return n


def current():
    """The count set by the last configure(), or None."""
    return _state["n"]
