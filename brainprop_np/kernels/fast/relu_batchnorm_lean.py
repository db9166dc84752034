"""ReLU → BatchNorm (→ Dropout) in training, keeping only the block's input z.

relu_batchnorm.py's block writes post = max(z, 0) and xhat beside y, as the layers
would (so that the layers' own feedback can follow a fused forward). When the block
runs its own feedback as well, both are recomputed from z instead, each time with the
same operations in the same precision, so every result is the same bits
(tests/test_blocks.py); the forward writes y alone (and the dropout mask):

  forward   pass 1: BatchNorm's shifted sums of post = max(z, 0), post not stored
                    (relu_batchnorm.py's _relu_stats; float64 stores it for its second pass);
            pass 2: y = (gamma·xhat + beta)·mask with xhat = (post − mean)·inv_std.
  feedback  pass 1: dbeta = Σ fb·mask, dgamma = Σ fb·mask·xhat;
            pass 2: fb_in = [post > 0]·gamma·inv_std·(fb·mask − dbeta/M − xhat·dgamma/M),
            post and xhat recomputed from z in both.

On MNIST conv's first block (128 × 28 × 28 × 32) that is 2 × 12.8 MB less written per step.
x is viewed as (M, C), channels last; the sums run in relu_batchnorm.py's fixed chunks.
"""
import numba
import numpy as np

from ..cpu import batchnorm_update_moving
from .batchnorm import _rows, chunks
from .elementwise import relu_value
from .jit import kernel, prange
from .philox import block, key_words, uniform32, uniform64
from .relu_batchnorm import _relu_stats


@kernel
def _forward(z, zero, mean, inv_std, gamma, beta, drop, rate, scale, k0, k1, step, wide, y, mask):
    """y = (gamma·xhat + beta)[·mask], xhat from z; the mask drawn as dropout_forward's."""
    m, c = z.shape
    for i in prange(m):
        for j in range(c):
            h = (relu_value(z[i, j], zero) - mean[j]) * inv_std[j]
            if drop:
                w0, w1, _, _ = block(np.int64(i) * c + j, step, k0, k1)
                u = uniform64(w0, w1) if wide else np.float64(uniform32(w0))
                mk = scale if u >= rate else 0
                mask[i, j] = mk
                y[i, j] = (h * gamma[j] + beta[j]) * mk
            else:
                y[i, j] = h * gamma[j] + beta[j]


@kernel
def _products(fb, mask, masked, z, zero, mean, inv_std, n_chunks, sa, sab):
    """sa[k, c] = Σ fb[·mask], sab[k, c] = Σ fb[·mask]·xhat over chunk k (float64), xhat from z."""
    m, c = fb.shape
    for k in prange(n_chunks):
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        s, sp = np.zeros(c), np.zeros(c)
        for i in range(r0, r1):
            for j in range(c):
                h = (relu_value(z[i, j], zero) - mean[j]) * inv_std[j]
                av = np.float64(fb[i, j] * mask[i, j]) if masked else np.float64(fb[i, j])
                s[j] += av
                sp[j] += av * h
        sa[k] = s
        sab[k] = sp


@numba.njit(inline="always")
def fb_in_value(fb, mk, masked, z, zero, mean, inv_std, a, b, s):
    """One element of the block's input feedback: [post > 0]·(fb[·mask] + xhat·a + b)·s,
    post and xhat from z (scalars; mean … s the channel's)."""
    p = relu_value(z, zero)
    h = (p - mean) * inv_std
    f = fb * mk if masked else fb
    o = (f + h * a + b) * s
    return o if p > 0 else o * 0.0


@kernel
def _feedback(fb, mask, masked, z, zero, mean, inv_std, a, b, s, out):
    """out = [post > 0]·(fb[·mask] + xhat·a + b)·s, post and xhat from z."""
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            out[i, j] = fb_in_value(fb[i, j], mask[i, j], masked, z[i, j], zero, mean[j], inv_std[j],
                                    a[j], b[j], s[j])


def relu_batchnorm_train_lean(z, gamma, beta, epsilon, moving, dropout=None, stats=None):
    """The block's training forward from z (..., C): batch statistics, moving = (moving_mean,
    moving_variance, momentum) updated in place; dropout None or (rate, key, step); stats
    None, or the batch (mean, var) of max(z, 0) as _relu_stats gives them, taken already
    by z's producer. Returns (y, mean, inv_std, mask or None); the feedback needs z, mean
    and inv_std."""
    zr, t = _rows(z), z.dtype
    mean, var = _relu_stats(zr, store=False)[1:] if stats is None else stats   # post not stored (float32)
    batchnorm_update_moving(moving[0], moving[1], mean, var, moving[2], zr.shape[0])
    mean, inv_std = mean.astype(t), (1.0 / np.sqrt(var + epsilon)).astype(t)
    y = np.empty(zr.shape, t)
    drop = dropout is not None
    mask = np.empty(zr.shape, t) if drop else y
    rate, key, step = dropout if drop else (0.0, (0, 0), 0)
    _forward(zr.size, zr, t.type(0), mean, inv_std, gamma.astype(t), beta.astype(t), drop, t.type(rate),
             t.type(1.0 / (1.0 - rate)), *key_words(key, step), t == np.float64, y, mask)
    return y.reshape(z.shape), mean, inv_std, (mask.reshape(z.shape) if drop else None)


def relu_batchnorm_feedback_lean(fb, mask, z, mean, gamma, inv_std, need_input_fb=True):
    """The block's training feedback: fb (..., C) at its output (after the dropout, if any).
    Returns (fb_in or None, dgamma, dbeta) with dbeta = Σ fb·mask, dgamma = Σ fb·mask·xhat."""
    fr, zr, t = _rows(fb), _rows(z), fb.dtype
    mr = fr if mask is None else _rows(mask)                 # not read without a mask
    dgamma, dbeta = lean_sums(fr, mr, mask is not None, zr, mean, inv_std)
    if not need_input_fb:
        return None, dgamma, dbeta
    out = np.empty(fr.shape, t)
    _feedback(fr.size, fr, mr, mask is not None, zr, t.type(0), mean, inv_std,
              *fb_in_coefficients(dgamma, dbeta, gamma, inv_std, fr.shape[0]), out)
    return out.reshape(fb.shape), dgamma, dbeta


def lean_sums(fr, mr, masked, zr, mean, inv_std):
    """(dgamma, dbeta) = (Σ fb[·mask]·xhat, Σ fb[·mask]) over the rows of fr, mr, zr (M, C)."""
    (m, c), t = fr.shape, fr.dtype
    k = chunks(m)
    sa, sab = np.zeros((k, c)), np.zeros((k, c))
    _products(fr.size, fr, mr, masked, zr, t.type(0), mean, inv_std, k, sa, sab)
    return sab.sum(axis=0).astype(t), sa.sum(axis=0).astype(t)


def fb_in_coefficients(dgamma, dbeta, gamma, inv_std, m):
    """(a, b, s) of fb_in_value: a = −dgamma/M, b = −dbeta/M, s = gamma·inv_std."""
    t = dgamma.dtype
    return (-dgamma / m).astype(t), (-dbeta / m).astype(t), (gamma * inv_std).astype(t)
