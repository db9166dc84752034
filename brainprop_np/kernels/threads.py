"""The one place that decides how many threads the CPU uses: BLAS's and the kernels' together.

    n = configure()            # at the start of a run or benchmark; returns the count

n is `BRAINPROP_THREADS` when set, else the cores this process may use (its affinity
mask) less those that other processes keep busy right now (the machine's busy share over
a quarter of a second, from /proc/stat; the 1-minute load average where there is no
/proc), at least 1. On a shared 2-core machine with two other jobs running this gives 1: more
threads than free cores make every thread wait for the others at each barrier (a 2–4×
slowdown was measured with the defaults). The count is applied with threadpoolctl to
every BLAS library NumPy and SciPy loaded (OpenBLAS, MKL, BLIS) and to numba's thread
pool, so GEMMs and the fast kernels never run more threads than that.

Two pools share the cores: OpenBLAS's (GEMMs) and numba's OpenMP pool (the fast kernels).
Idle workers of either spin for a while after their work and take the cores from the
other's next call (on 2 cores a dense step took 2× as long): `import brainprop_np` sets
OPENBLAS_THREAD_TIMEOUT=4 and OMP_WAIT_POLICY=PASSIVE (BLAS_ENV in the package's
__init__.py) before NumPy and numba load (environment variables, read once when each
pool starts).
"""
import os

_state = {"n": None, "limiter": None}


def usable_cores():
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _busy_cores(window=0.25):
    """Cores' worth of CPU time other processes used over `window` seconds (/proc/stat)."""
    import time

    def times():
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)       # total, idle + iowait
    try:
        t0, i0 = times()
        time.sleep(window)
        t1, i1 = times()
    except (OSError, ValueError, IndexError):
        return float(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
    cores = os.cpu_count() or 1
    return cores * (1.0 - (i1 - i0) / max(t1 - t0, 1))


def free_cores():
    """usable_cores() less the cores busy with other work now (rounded), at least 1."""
    n = usable_cores()
    busy = int(_busy_cores() + 0.5)
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
    try:        # SciPy's BLAS (the fast set's update GEMM) loaded first, so that the limit reaches it too
        import scipy.linalg.blas  # noqa: F401
    except ImportError:
        pass
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
