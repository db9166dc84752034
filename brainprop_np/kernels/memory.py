"""Freed memory stays in the process, so that each training step reuses the last one's pages.

A step allocates the same arrays every time (im2col's rows, the layers' outputs and
feedback, tens of MB in a conv network). glibc's malloc returns large freed blocks to the
system (munmap, or trimming the heap's top) and the next step's block of the same size
comes back as fresh pages: hundreds of page faults per step, each page zeroed by the
kernel (MNIST conv: 400 to 600 minor page faults per step). With both thresholds at 1 GiB
(32 MiB where an older glibc refuses more), blocks below it come from the heap and freed
ones are kept for the next allocation: the process's memory is its peak. What it gives is measured in docs/gpu_and_speed.md
(`bench/train_step.py --system-malloc`).
Results are unchanged (the same arithmetic on the same values). Other C libraries
(musl, macOS) are left as they are.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameters (malloc.h)
KEEP_BELOW = (1 << 30, 32 << 20)     # 1 GiB; older glibc refuse an mmap threshold above 32 MiB

_state = {"set": None}


def keep_freed_memory():
    """mallopt(M_MMAP_THRESHOLD, v) and mallopt(M_TRIM_THRESHOLD, v) on glibc, once, with v the
    first of KEEP_BELOW that glibc accepts. Returns True when it took the mmap threshold,
    False where there is no glibc's mallopt (or it refused)."""
    if _state["set"] is None:
        mallopt = _glibc_mallopt()
        _state["set"] = mallopt is not None and any(mallopt(M_MMAP_THRESHOLD, v) for v in KEEP_BELOW)
        if _state["set"]:
            any(mallopt(M_TRIM_THRESHOLD, v) for v in KEEP_BELOW)
    return _state["set"]


def _glibc_mallopt():
    """glibc's mallopt as a function (param, value) → bool, or None (another C library: musl
    has a mallopt that does nothing; glibc alone has gnu_get_libc_version)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    return lambda param, value: bool(fn(ctypes.c_int(param), ctypes.c_int(value)))
