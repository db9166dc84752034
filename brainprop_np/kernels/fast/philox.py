"""Philox4x32-10 for the fast set: the equations of brainprop_np/philox.py, one counter at a time,
inlined into the kernels that draw (dropout, the action choice), so that no uniform array is made.

All arithmetic is on uint64 values below 2³² (numba would turn a mix of signed and unsigned
integers into floats): the same bits as the NumPy reference and the CUDA header philox.cuh.
"""
import numba
import numpy as np

from .jit import kernel

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32, _S8, _S21, _S11 = np.uint64(32), np.uint64(8), np.uint64(21), np.uint64(11)
_F32_UNIT, _F64_UNIT = np.float32(2.0 ** -24), np.float64(2.0 ** -53)


@numba.njit(inline="always")
def philox(c0, c1, c2, c3, k0, k1):
    """The four words (uint64 < 2³²) of Philox4x32-10 for counter (c0..c3) and key (k0, k1)."""
    for r in range(10):
        if r:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
    return c0, c1, c2, c3


@numba.njit(inline="always")
def block(element, step, k0, k1):
    """The four words of `element`'s block at `step` (counter: element, 0, step low, step high)."""
    return philox(np.uint64(element) & _MASK, np.uint64(element) >> _S32, step & _MASK, step >> _S32, k0, k1)


@numba.njit(inline="always")
def uniform32(a):
    return np.float32(a >> _S8) * _F32_UNIT


@numba.njit(inline="always")
def uniform64(a, b):
    return np.float64((a << _S21) | (b >> _S11)) * _F64_UNIT


def key_words(key, step):
    """(k0, k1, step) as the uint64 scalars the kernels take."""
    return np.uint64(int(key[0])), np.uint64(int(key[1])), np.uint64(int(step))


@kernel
def _uniforms32(k0, k1, step, out):
    for i in numba.prange(out.size):
        w0, _, _, _ = block(i, step, k0, k1)
        out[i] = uniform32(w0)


@kernel
def _uniforms64(k0, k1, step, out):
    for i in numba.prange(out.size):
        w0, w1, _, _ = block(i, step, k0, k1)
        out[i] = uniform64(w0, w1)


def philox_uniforms(key, step, n, dtype):
    """(n,) uniforms of elements 0..n−1 at `step`; see philox.uniforms."""
    dt = np.dtype(dtype)
    out = np.empty(int(n), dt)
    if dt == np.float32:
        _uniforms32(out.size, *key_words(key, step), out)
    elif dt == np.float64:
        _uniforms64(out.size, *key_words(key, step), out)
    else:
        raise TypeError(f"uniforms of dtype {dt} are not drawn; use float32 or float64")
    return out
