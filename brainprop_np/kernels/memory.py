"""Freed memory stays in the process, so that each training step reuses the last one's pages.

A step allocates the same arrays every time (im2col's rows, the layers' outputs and
feedback, tens of MB in a conv network). glibc's malloc returns large freed blocks to the
system (munmap, or trimming the heap's top) and the next step's block of the same size
comes back as fresh pages: hundreds of page faults per step, each page zeroed by the
kernel (MNIST conv: about 425 minor page faults per step). With both thresholds at 1 GiB,
blocks below it come from the heap and freed ones are kept for the next allocation: the
process's memory is its peak. What it gives is measured in docs/gpu_and_speed.md
(`bench/train_step.py --system-malloc`).
Results are unchanged (the same arithmetic on the same values). Other C libraries
(musl, macOS) are left as they are.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameters (malloc.h)
KEEP_BELOW = 1 << 30

_state = {"set": None}


def keep_freed_memory():
    """mallopt(M_MMAP_THRESHOLD, 1 GiB) and mallopt(M_TRIM_THRESHOLD, 1 GiB) on glibc, once.

    Returns True when glibc took both settings, False where there is no glibc's mallopt."""
    if _state["set"] is None:
        _state["set"] = _mallopt(M_MMAP_THRESHOLD, KEEP_BELOW) and _mallopt(M_TRIM_THRESHOLD, KEEP_BELOW)
    return _state["set"]


def _mallopt(param, value):
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        gnu = ctypes.CDLL(None).gnu_get_libc_version          # glibc only: musl has mallopt as a no-op
        del gnu
        return bool(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))
    except (OSError, AttributeError):
        return False
