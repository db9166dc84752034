"""ReLU → BatchNorm (→ Dropout) as one block: two passes over the data forward, two in feedback.

Layer by layer these three layers make six passes forward (ReLU; BatchNorm's statistics,
its normalisation; dropout) and five in feedback. Fused:

  forward   pass 1: post = max(z, 0), and BatchNorm's shifted sums of post in the same loop;
            pass 2: xhat = (post − mean)·inv_std, y = (gamma·xhat + beta)·mask, the dropout
                    mask drawn in the loop (counter-based, as dropout_forward).
  feedback  pass 1: dbeta = Σ fb·mask, dgamma = Σ fb·mask·xhat;
            pass 2: fb_in = [post > 0]·gamma·inv_std·(fb·mask − dbeta/M − xhat·dgamma/M)
                    (inference: [post > 0]·gamma·inv_std·fb·mask).

Every element goes through the same operations, in the same order and precision, as the
layer-by-layer path of this set (relu_forward, batchnorm_stats, batchnorm_forward,
dropout_forward and their feedback), and the sums run in the same fixed chunks: the
results are the same bits (tests/test_blocks.py). x is viewed as (M, C), channels last.
"""
import numpy as np

from ..cpu import batchnorm_update_moving
from .batchnorm import _normalise, _products, _rows, chunks, finish_stats
from .elementwise import _relu_forward, relu_value
from .jit import kernel, prange
from .philox import block, key_words, uniform32, uniform64


def relu_shift(first_row):
    """The shift of BatchNorm's sums of post = max(z, 0): post's first row, float64."""
    return np.where(first_row > 0, first_row, 0).astype(np.float64)


def relu_sums_stats(shift, s1, s2, m, dtype):
    """(mean, var) of post from the per-chunk shifted sums s1, s2 (K, C) of its m rows
    (float32: the shift is post's first row, and no second pass is needed)."""
    return finish_stats(shift.astype(dtype)[None], s1.sum(axis=0) / m, s2.sum(axis=0) / m)


@kernel
def _relu_sums(z, zero, n_chunks, shift, store, post, s1, s2):
    """s1[k, c], s2[k, c] = Σ (post − shift), Σ (post − shift)² over chunk k, post = max(z, 0),
    written to `post` when store."""
    m, c = z.shape
    for k in prange(n_chunks):
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        a1, a2 = np.zeros(c), np.zeros(c)
        for i in range(r0, r1):
            for j in range(c):
                p = relu_value(z[i, j], zero)
                if store:
                    post[i, j] = p
                d = np.float64(p) - shift[j]
                a1[j] += d
                a2[j] += d * d
        s1[k] = a1
        s2[k] = a2


@kernel
def _normalise_dropout(x, mean, inv_std, gamma, beta, rate, scale, k0, k1, step, wide, xhat, y, mask):
    """xhat = (x − mean)·inv_std; y = (gamma·xhat + beta)·mask, the mask drawn as dropout_forward's."""
    m, c = x.shape
    for i in prange(m):
        for j in range(c):
            h = (x[i, j] - mean[j]) * inv_std[j]
            xhat[i, j] = h
            w0, w1, _, _ = block(np.int64(i) * c + j, step, k0, k1)
            u = uniform64(w0, w1) if wide else np.float64(uniform32(w0))
            mk = scale if u >= rate else 0
            mask[i, j] = mk
            y[i, j] = (h * gamma[j] + beta[j]) * mk


@kernel
def _masked_products(fb, mask, xhat, n_chunks, sa, sab):
    """sa[k, c] = Σ fb·mask, sab[k, c] = Σ fb·mask·xhat over the rows of chunk k (float64)."""
    m, c = fb.shape
    for k in prange(n_chunks):
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        s, sp = np.zeros(c), np.zeros(c)
        for i in range(r0, r1):
            for j in range(c):
                av = np.float64(fb[i, j] * mask[i, j])
                s[j] += av
                sp[j] += av * xhat[i, j]
        sa[k] = s
        sab[k] = sp


@kernel
def _feedback_train(fb, xhat, post, a, b, s, out):
    """out = [post > 0]·(fb + xhat·a + b)·s."""
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            o = (fb[i, j] + xhat[i, j] * a[j] + b[j]) * s[j]
            out[i, j] = o if post[i, j] > 0 else o * 0.0


@kernel
def _feedback_train_masked(fb, mask, xhat, post, a, b, s, out):
    """out = [post > 0]·(fb·mask + xhat·a + b)·s."""
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            o = (fb[i, j] * mask[i, j] + xhat[i, j] * a[j] + b[j]) * s[j]
            out[i, j] = o if post[i, j] > 0 else o * 0.0


@kernel
def _feedback_inference(fb, post, s, out):
    """out = [post > 0]·fb·s (no dropout mask in inference)."""
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            o = fb[i, j] * s[j]
            out[i, j] = o if post[i, j] > 0 else o * 0.0


def _relu_stats(zr, store=True):
    """(post or None, mean, var): post = max(z, 0) (M, C), stored when `store` (float64 always:
    its centred second pass reads post), and BatchNorm's batch (mean, var) of it, in one pass."""
    m, c = zr.shape
    store = store or zr.dtype == np.float64
    post = np.empty(zr.shape, zr.dtype) if store else zr             # not written unless store
    shift = relu_shift(zr[0])                                        # = post[0]
    k = chunks(m)
    s1, s2 = np.zeros((k, c)), np.zeros((k, c))
    _relu_sums(zr.size, zr, zr.dtype.type(0), k, shift, store, post, s1, s2)
    if store:
        return post, *finish_stats(post, s1.sum(axis=0) / m, s2.sum(axis=0) / m)
    return None, *relu_sums_stats(shift, s1, s2, m, zr.dtype)


def relu_batchnorm_forward(z, gamma, beta, epsilon, train, moving=None, dropout=None):
    """The block's forward. z (..., C): the input of the ReLU.

    train: batch statistics, moving = (moving_mean, moving_variance, momentum) updated in
    place; inference: moving's statistics. dropout: None or (rate, key, step), train only.
    Returns (post, xhat, y, inv_std, mask or None), each array of z's shape.
    """
    zr, t = _rows(z), z.dtype
    mm, mv, momentum = moving
    if train:
        post, mean, var = _relu_stats(zr)
        batchnorm_update_moving(mm, mv, mean, var, momentum, zr.shape[0])
        inv_std = (1.0 / np.sqrt(var + epsilon)).astype(t)
    else:
        post = np.empty(zr.shape, t)
        _relu_forward(zr.size, zr.reshape(-1), zr.dtype.type(0), post.reshape(-1))
        mean, inv_std = mm, (1.0 / np.sqrt(mv + epsilon)).astype(t)
    xhat, y, mask = np.empty(zr.shape, t), np.empty(zr.shape, t), None
    args = (post, mean.astype(t), inv_std, gamma.astype(t), beta.astype(t))
    if train and dropout is not None:
        rate, key, step = dropout
        mask = np.empty(zr.shape, t)
        _normalise_dropout(zr.size, *args, t.type(rate), t.type(1.0 / (1.0 - rate)), *key_words(key, step),
                           t == np.float64, xhat, y, mask)
    else:
        _normalise(zr.size, *args, xhat, y)
    shape = z.shape
    return (post.reshape(shape), xhat.reshape(shape), y.reshape(shape), inv_std,
            None if mask is None else mask.reshape(shape))


def relu_batchnorm_feedback(fb, mask, xhat, post, gamma, inv_std, train, need_input_fb=True):
    """The block's feedback: fb (..., C) at the block's output (after the dropout, if any).

    Returns (fb_in or None, dgamma, dbeta) with dbeta = Σ fb·mask, dgamma = Σ fb·mask·xhat.
    """
    fr, hr, t = _rows(fb), _rows(xhat), fb.dtype
    m, c = fr.shape
    k = chunks(m)
    sa, sab = np.zeros((k, c)), np.zeros((k, c))
    if mask is None:
        _products(fr.size, fr, hr, k, sa, sab)
    else:
        _masked_products(fr.size, fr, _rows(mask), hr, k, sa, sab)
    dgamma, dbeta = sab.sum(axis=0).astype(t), sa.sum(axis=0).astype(t)
    if not need_input_fb:
        return None, dgamma, dbeta
    out, pr, s = np.empty(fr.shape, t), _rows(post), (gamma * inv_std).astype(t)
    a, b = (-dgamma / m).astype(t), (-dbeta / m).astype(t)
    if not train:
        _feedback_inference(fr.size, fr if mask is None else fr * _rows(mask), pr, s, out)
    elif mask is None:
        _feedback_train(fr.size, fr, hr, pr, a, b, s, out)
    else:
        _feedback_train_masked(fr.size, fr, _rows(mask), hr, pr, a, b, s, out)
    return out.reshape(fb.shape), dgamma, dbeta
