"""Test-session settings.

BRAINPROP_NO_POOL=1 turns CuPy's memory pool off (plain cudaMalloc per array), so that
compute-sanitizer's memcheck sees out-of-bounds accesses that the pool's rounded-up
blocks would otherwise hide (scripts/gpu_check.sh sets it for the sanitizer run).
"""
import os

import pytest

if os.environ.get("BRAINPROP_NO_POOL") == "1":
    try:
        import cupy
        cupy.cuda.set_allocator(None)
    except Exception:   # no CuPy: nothing to turn off
        pass


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
