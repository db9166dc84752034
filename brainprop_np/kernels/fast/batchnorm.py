"""BatchNorm forward and feedback in two passes over the data each, on all cores.

x is viewed as (M, C): M = B·H·W rows of C channels (channels last). Sums over M run in
a fixed number of row chunks (`chunks`, independent of the thread count) with float64
accumulators, arrays made inside the kernel for each chunk (a fresh array overlaps none of
the inputs, so the loops that add to it need no run-time overlap checks), then the chunks
are added in order: the result depends only on the data, never on how many threads ran
(same seed → same bits). The NumPy reference sums in float32 in another order, so
statistics agree within float32 rounding (≈ 1e-6 relative), not bit for bit.

Training forward, pass 1: per-channel sums of (x − x[0]) and (x − x[0])² (shifted by the
first row, so that E[x²] − E[x]² does not cancel; float64 arrays take a second, centred
pass, see `batchnorm_stats`); pass 2: xhat = (x − mean)·inv_std,
y = gamma·xhat + beta. Feedback, pass 1: dbeta = Σ fb, dgamma = Σ fb·xhat; pass 2:
fb_in = gamma·inv_std·(fb − dbeta/M − xhat·dgamma/M).
"""
import numpy as np

from .jit import kernel, prange

_ROWS_PER_CHUNK = 512


def chunks(m):
    """The fixed number of row chunks of a sum over m rows (independent of the thread count)."""
    return max(1, min(256, -(-m // _ROWS_PER_CHUNK)))


@kernel
def _shifted_sums(x, n_chunks, shift, s1, s2):
    """s1[k, c], s2[k, c] = Σ (x − shift), Σ (x − shift)² over the rows of chunk k (float64)."""
    m, c = x.shape
    for k in prange(n_chunks):
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        a1, a2 = np.zeros(c), np.zeros(c)          # the chunk's sums (a fresh array: no aliasing)
        for i in range(r0, r1):
            xi = x[i]
            for j in range(c):
                d = np.float64(xi[j]) - shift[j]
                a1[j] += d
                a2[j] += d * d
        s1[k] = a1
        s2[k] = a2


@kernel
def _products(a, b, n_chunks, sa, sab):
    """sa[k, c] = Σ a, sab[k, c] = Σ a·b over the rows of chunk k (float64)."""
    m, c = a.shape
    for k in prange(n_chunks):
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        s, sp = np.zeros(c), np.zeros(c)
        for i in range(r0, r1):
            ai, bi = a[i], b[i]
            for j in range(c):
                av = np.float64(ai[j])
                s[j] += av
                sp[j] += av * bi[j]
        sa[k] = s
        sab[k] = sp


@kernel
def _normalise(x, mean, inv_std, gamma, beta, xhat, y):
    m, c = x.shape
    for i in prange(m):
        for j in range(c):
            h = (x[i, j] - mean[j]) * inv_std[j]
            xhat[i, j] = h
            y[i, j] = h * gamma[j] + beta[j]


@kernel
def _feedback_apply(fb, xhat, a, b, s, out):
    """out = (fb + xhat·a + b)·s per channel (a = −dgamma/M, b = −dbeta/M, s = gamma·inv_std)."""
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            out[i, j] = (fb[i, j] + xhat[i, j] * a[j] + b[j]) * s[j]


@kernel
def _scale(fb, s, out):
    m, c = fb.shape
    for i in prange(m):
        for j in range(c):
            out[i, j] = fb[i, j] * s[j]


def _rows(a):
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def _moments(xr, shift):
    """(Σ (x − shift) / M, Σ (x − shift)² / M) per channel, in float64."""
    m, c = xr.shape
    k = chunks(m)
    s1, s2 = np.zeros((k, c)), np.zeros((k, c))
    _shifted_sums(xr.size, xr, k, shift, s1, s2)
    return s1.sum(axis=0) / m, s2.sum(axis=0) / m


def batchnorm_stats(x):
    """Per-channel mean and biased variance of x (..., C) over all other axes.

    float32: one pass, sums of x − x[0] in float64: var = E[d²] − E[d]² loses at most
    ~1e-16·(spread²/var) relatively, far below float32's rounding. float64: a second,
    centred pass (var = E[(x − mean)²] − E[x − mean]², the corrected two-pass formula),
    so that float64 finite-difference checks see no rounding noise from the statistics.
    """
    xr = _rows(x)
    return finish_stats(xr, *_moments(xr, xr[0].astype(np.float64)))


def finish_stats(xr, d1, d2):
    """(mean, var) from the first pass's moments d1, d2 of xr (M, C) shifted by its row 0
    (float64 arrays: the second, centred pass here)."""
    mean = xr[0] + d1
    if xr.dtype == np.float64:
        d1, d2 = _moments(xr, mean)
    var = np.maximum(d2 - d1 * d1, 0.0)
    return mean.astype(xr.dtype), var.astype(xr.dtype)


def batchnorm_train_forward(x, gamma, beta, epsilon):
    """Returns (xhat, y, mean, var, inv_std): batch statistics, then the normalisation."""
    mean, var = batchnorm_stats(x)
    inv_std = (1.0 / np.sqrt(var + epsilon)).astype(x.dtype)
    xhat, y = batchnorm_forward(x, mean, inv_std, gamma, beta)
    return xhat, y, mean, var, inv_std


def batchnorm_forward(x, mean, inv_std, gamma, beta):
    """xhat = (x − mean)·inv_std, y = gamma·xhat + beta (per channel, last axis)."""
    xr = _rows(x)
    xhat, y = np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)
    t = x.dtype
    _normalise(xr.size, xr, mean.astype(t), inv_std.astype(t), gamma.astype(t), beta.astype(t),
               xhat.reshape(xr.shape), y.reshape(xr.shape))
    return xhat, y


def _fb_sums(fb, xhat):
    fr, hr = _rows(fb), _rows(xhat)
    m, c = fr.shape
    k = chunks(m)
    sa, sab = np.zeros((k, c)), np.zeros((k, c))
    _products(fr.size, fr, hr, k, sa, sab)
    return fr, hr, m, sab.sum(axis=0).astype(fb.dtype), sa.sum(axis=0).astype(fb.dtype)


def batchnorm_feedback_train(fb, xhat, gamma, inv_std):
    """Returns (fb_in, dgamma, dbeta): dgamma = Σ fb·xhat, dbeta = Σ fb,
    fb_in = gamma·inv_std·(fb − mean(fb) − xhat·mean(fb·xhat))."""
    fr, hr, m, dgamma, dbeta = _fb_sums(fb, xhat)
    out = np.empty(fb.shape, fb.dtype)
    t = fb.dtype
    _feedback_apply(fr.size, fr, hr, (-dgamma / m).astype(t), (-dbeta / m).astype(t), (gamma * inv_std).astype(t),
                    out.reshape(fr.shape))
    return out, dgamma, dbeta


def batchnorm_feedback_inference(fb, xhat, gamma, inv_std):
    """Returns (fb_in, dgamma, dbeta) with fb_in = gamma·inv_std·fb."""
    fr, hr, m, dgamma, dbeta = _fb_sums(fb, xhat)
    out = np.empty(fb.shape, fb.dtype)
    _scale(fr.size, fr, (gamma * inv_std).astype(fb.dtype), out.reshape(fr.shape))
    return out, dgamma, dbeta


def batchnorm_train_forward_update(x, gamma, beta, epsilon, moving_mean, moving_variance, momentum):
    """batchnorm_train_forward, then the running statistics updated in place
    (cpu.batchnorm_update_moving, m = the rows of x); returns batchnorm_train_forward's tuple."""
    from ..cpu import batchnorm_update_moving
    out = batchnorm_train_forward(x, gamma, beta, epsilon)
    batchnorm_update_moving(moving_mean, moving_variance, out[2], out[3], momentum, x.size // x.shape[-1])
    return out
