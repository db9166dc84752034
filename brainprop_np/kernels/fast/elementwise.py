"""Fused element-wise kernels: ReLU, dropout (its mask drawn in the kernel), SGD update
(multi-core, in one pass).

Each computes exactly what its NumPy twin in kernels/cpu.py computes, with the same
roundings (one operation per element, no fused multiply-add): the results are the same bits.
"""
import numba
import numpy as np

from .. import cpu
from .jit import kernel, prange
from .philox import block, key_words, uniform32, uniform64


@numba.njit(inline="always")
def relu_value(v, zero):
    """max(v, 0) in v's precision (zero: 0 of v's type); a NaN stays NaN, as in np.maximum.
    The one ReLU of the set: the fused blocks inline it."""
    return v if (v > 0 or v != v) else zero


@kernel
def _relu_forward(x, zero, y):
    for i in prange(x.size):
        y[i] = relu_value(x[i], zero)


def relu_forward(x):
    """y = max(x, 0)."""
    y = np.empty(x.shape, x.dtype)
    _relu_forward(x.size, np.ascontiguousarray(x).reshape(-1), x.dtype.type(0), y.reshape(-1))
    return y


@kernel
def _relu_feedback(fb, y, out):
    for i in prange(fb.size):
        out[i] = fb[i] if y[i] > 0 else fb[i] * 0.0   # fb·0 keeps NumPy's −0


def relu_feedback(fb, y):
    """Feedback passes only where the unit was active: fb · [y > 0]."""
    out = np.empty(fb.shape, fb.dtype)
    _relu_feedback(fb.size, np.ascontiguousarray(fb).reshape(-1), np.ascontiguousarray(y).reshape(-1), out.reshape(-1))
    return out


@kernel
def _dropout_mask(u, rate, scale, mask):
    for i in prange(u.size):
        mask[i] = scale if u[i] >= rate else 0


def dropout_mask(u, rate, dtype):
    """Inverted dropout mask from uniforms u in [0, 1): [u ≥ rate] / (1 − rate)."""
    dt = np.dtype(dtype)
    mask = np.empty(u.shape, dt)
    _dropout_mask(u.size, np.ascontiguousarray(u).reshape(-1), u.dtype.type(rate), dt.type(1.0 / (1.0 - rate)),
                  mask.reshape(-1))
    return mask


@kernel
def _dropout_forward(x, rate, scale, k0, k1, step, wide, y, mask):
    for i in prange(x.size):
        w0, w1, _, _ = block(i, step, k0, k1)
        u = uniform64(w0, w1) if wide else np.float64(uniform32(w0))   # float32's u, exactly
        m = scale if u >= rate else 0
        mask[i] = m
        y[i] = x[i] * m


def dropout_forward(x, rate, key, step):
    """The dropout layer's training forward in one pass: (y, mask) with
    mask = [u ≥ rate] / (1 − rate) and y = x·mask, each element drawing its own u from the
    counter-based generator at (key, step) (no uniform array); see cpu.dropout_forward."""
    t = x.dtype.type
    y, mask = np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)
    _dropout_forward(x.size, np.ascontiguousarray(x).reshape(-1), t(rate), t(1.0 / (1.0 - rate)),
                     *key_words(key, step), x.dtype == np.float64, y.reshape(-1), mask.reshape(-1))
    return y, mask


@kernel
def _sgd_update(w, g, lr, decay, use_decay):
    for i in prange(w.size):
        wi = w[i] * decay if use_decay else w[i]
        w[i] = wi - g[i] * lr


def sgd_update(w, g, lr, decay=1.0, sumsq=None):
    """In place: w ← w·decay − lr·g, one pass (decay = 1 skips the product). Returns w.
    sumsq: None, or a 0-d array to which Σ w² of the old w is added first (np.vdot, as the
    reference: the L2 term of the loss)."""
    cpu._add_sum_of_squares(w, sumsq)
    if not (w.flags.c_contiguous and w.flags.writeable) or g.shape != w.shape:
        return cpu.sgd_update(w, g, lr, decay)
    t = w.dtype.type
    _sgd_update(w.size, w.reshape(-1), np.ascontiguousarray(g, dtype=w.dtype).reshape(-1), t(lr), t(decay), decay != 1.0)
    return w
