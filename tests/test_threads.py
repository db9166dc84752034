"""kernels/threads.py: one thread count for BLAS and the fast kernels."""
import ast
import subprocess
import sys

import pytest

from brainprop_np.kernels import threads


def test_configure_sets_blas_and_numba(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    numba = pytest.importorskip("numba")
    import numpy  # noqa: F401  (BLAS loaded)
    try:
        assert threads.configure(1) == 1 and threads.current() == 1
        assert numba.get_num_threads() == 1
        assert all(i["num_threads"] == 1 for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
        monkeypatch.setenv("BRAINPROP_THREADS", "2")
        assert threads.configure() == 2
    finally:
        monkeypatch.delenv("BRAINPROP_THREADS")
        threads.configure()


def test_configure_limits_scipys_blas_loaded_after_it():
    """The fast set's update GEMM runs in SciPy's BLAS (its own library in SciPy's wheels):
    configure() loads it before it sets the limit, in a process that had not loaded it."""
    code = ("import brainprop_np, sys; from brainprop_np.kernels import threads; threads.configure(1); "
            "import threadpoolctl; assert 'scipy.linalg.blas' in sys.modules; "
            "print(sorted({(i['filepath'], i['num_threads']) for i in threadpoolctl.threadpool_info() "
            "if i['user_api'] == 'blas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    libs = ast.literal_eval(out.stdout.strip())
    assert libs and all(n == 1 for _, n in libs), libs


def test_default_is_the_free_cores(monkeypatch):
    monkeypatch.delenv("BRAINPROP_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "_busy_cores", lambda: 2.6)      # other jobs keep ~3 cores busy
    assert threads.wanted_threads() == 1
    monkeypatch.setattr(threads, "_busy_cores", lambda: 0.3)
    assert threads.wanted_threads() == 4
    monkeypatch.setattr(threads, "_busy_cores", lambda: 9.0)      # never fewer than one
    assert threads.wanted_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_bad_env_value(monkeypatch, bad):
    monkeypatch.setenv("BRAINPROP_THREADS", bad)
    with pytest.raises(ValueError, match=f"BRAINPROP_THREADS='{bad}' is not allowed"):
        threads.wanted_threads()


def test_busy_cores_reads_the_machine():
    busy = threads._busy_cores(window=0.05)
    assert 0.0 <= busy <= (__import__("os").cpu_count() or 1) + 1e-9
