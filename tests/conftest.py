"""Test-session settings.

Every test runs with its own HOME, XDG_CACHE_HOME and BRAINPROP_CACHE under a temporary
folder (`own_home`), so that nothing is written into the real home directory (the explain
cache, the default data folder ~/.cache/brainprop_np, matplotlib's cache). MPLCONFIGDIR is
one temporary folder for the whole session: matplotlib builds its font cache there once
instead of once per test and subprocess.

BRAINPROP_NO_POOL=1 turns CuPy's memory pool off (plain cudaMalloc per array), so that
compute-sanitizer's memcheck sees out-of-bounds accesses that the pool's rounded-up
blocks would otherwise hide (scripts/gpu_check.sh sets it for the sanitizer run).

A suite started as a background job of a script (`(pytest &)`) inherits SIGINT ignored, and
a run leaves an ignored SIGINT ignored; the tests that stop runs with Ctrl-C need Python's
usual handler, which `ctrl_c_not_ignored` puts back for the session.

`one_thread_count` fixes the thread count for the session, so that runs compared bit for
bit do not depend on how busy the machine is.
"""
import os
import signal

import pytest

if os.environ.get("BRAINPROP_NO_POOL") == "1":
    try:
        import cupy
        cupy.cuda.set_allocator(None)
    except Exception:   # no CuPy: nothing to turn off
        pass


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_not_ignored():
    """SIGINT raises KeyboardInterrupt during the session, as in a terminal (and the runs that
    tests start as subprocesses inherit a SIGINT that is not ignored)."""
    old = signal.getsignal(signal.SIGINT)
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="session", autouse=True)
def one_thread_count():
    """BRAINPROP_THREADS=2 for the session (and the subprocesses it starts): by default the
    count follows the machine's load (kernels/threads.py), and BLAS and the kernels round
    differently with 1 and 2 threads, so two runs compared bit for bit could differ on a busy
    machine. Tests of the count itself, and sweeps, set or remove it themselves."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRAINPROP_THREADS", "2")
        yield


@pytest.fixture(scope="session")
def _mpl_config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mplconfig")


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory, _mpl_config_dir, monkeypatch):
    """HOME, XDG_CACHE_HOME, BRAINPROP_CACHE of this test (and subprocesses it starts) in a fresh folder."""
    base = tmp_path_factory.mktemp("env")
    for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "home/.cache"), ("BRAINPROP_CACHE", "explain-cache")):
        (base / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(base / sub))
    monkeypatch.setenv("MPLCONFIGDIR", str(_mpl_config_dir))
    return base / "home"


@pytest.fixture(scope="session")
def emulator():
    """The CPU emulator of the CUDA kernels (tests/cuda_emulator.py), compiled once per session."""
    import cuda_emulator
    if not cuda_emulator.available():
        pytest.skip("no C++ compiler (g++) for the CUDA emulator")
    return cuda_emulator.Emulator()


@pytest.fixture(params=["numpy", "fast"])
def kernel_set(request, monkeypatch):
    """Run the test once with each CPU kernel set (BRAINPROP_KERNELS); 'fast' needs numba."""
    if request.param == "fast":
        pytest.importorskip("numba", reason="the fast CPU kernel set needs numba")
    monkeypatch.setenv("BRAINPROP_KERNELS", request.param)
    return request.param
