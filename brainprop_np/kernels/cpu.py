"""NumPy reference versions of the hot loops (vectorised; no loop over pixels or images).

Every function here has a twin of the same name and signature in `kernels/gpu.py`
(hand-written CUDA). Images are channels last: (N, H, W, C). `pads` is
(top, bottom, left, right). Loops that remain run over the kh·kw kernel offsets only.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import threads

xp = np


def workspace(ws, key, shape, dtype, zero=False):
    """A work array kept in the dict `ws` between calls (allocated once per shape).

    Reusing large temporaries avoids fresh pages (page faults) on every batch. With
    ws None a new array is returned. zero: fill with zeros on every call.
    """
    if ws is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    a = ws.get(key)
    if a is None or a.shape != tuple(shape) or a.dtype != dtype:
        a = ws[key] = np.zeros(shape, dtype)
    elif zero:
        a.fill(0)
    return a


def _patches(xpad, kh, kw, stride, ho, wo):
    """Strided view (N, Ho, Wo, kh, kw, C) of the receptive fields of an (unpadded) input."""
    n, _, _, c = xpad.shape
    sn, sh, sw, sc = xpad.strides
    return as_strided(xpad, shape=(n, ho, wo, kh, kw, c),
                      strides=(sn, stride * sh, stride * sw, sh, sw, sc), writeable=False)


def im2col(x, kh, kw, stride, pads, out_hw, positions_first=False, ws=None):
    """Unfold receptive fields into rows (presynaptic activity of each weight).

    x: (N, H, W, C). Returns cols (N·Ho·Wo, kh·kw·C) — row order (n, oy, ox) — or,
    with positions_first, (Ho·Wo, N, kh·kw·C) for the batched per-position GEMM of a
    locally-connected layer. Column q = (dy·kw + dx)·C + c holds
    x_pad[n, stride·oy + dy, stride·ox + dx, c] (Keras's kernel order).
    ws: optional dict of reusable buffers (the result then lives in it until the next call).
    """
    ho, wo = out_hw
    n, h, w, c = x.shape
    k = kh * kw * c
    if not any(pads):                       # one strided copy of all receptive fields
        v = _patches(x, kh, kw, stride, ho, wo)
        if positions_first:
            cols = workspace(ws, "cols", (ho * wo, n, k), x.dtype)
            dst, src = cols.reshape(ho, wo, n, kh, kw, c), v.transpose(1, 2, 0, 3, 4, 5)
        else:
            cols = workspace(ws, "cols", (n * ho * wo, k), x.dtype)
            dst, src = cols.reshape(n, ho, wo, kh, kw, c), v
        threads.chunked(lambda a, b: np.copyto(dst[a:b], src[a:b]), dst.shape[0], cols.size)
        return cols
    # padded: copy each kernel offset's in-range part; entries that fall in the padding are
    # zeros that are never written (`workspace` allocates zeros, a reused buffer keeps them)
    shape = (ho * wo, n, k) if positions_first else (n * ho * wo, k)
    cols = workspace(ws, "cols", shape, x.dtype, zero=ws is None)
    dst = cols.reshape(ho, wo, n, kh, kw, c).transpose(2, 0, 1, 3, 4, 5) if positions_first \
        else cols.reshape(n, ho, wo, kh, kw, c)
    offsets = list(_offsets(kh, kw, stride, pads, out_hw, (h, w)))

    def images(a, b):
        for dy, dx, (oy, ox), (iy, ix) in offsets:
            dst[a:b, oy, ox, dy, dx, :] = x[a:b, iy, ix, :]

    threads.chunked(images, n, cols.size)
    return cols


def col2im(dcols, x_shape, kh, kw, stride, pads, out_hw, positions_first=False, ws=None):
    """Fold row feedback back onto the input: the adjoint of `im2col`.

    dcols: (N·Ho·Wo, kh·kw·C) or, with positions_first, (Ho·Wo, N, kh·kw·C).
    Returns fb_in (N, H, W, C) with every receptive-field entry summed onto the input
    unit it came from; padding positions are dropped.
    """
    n, h, w, c = x_shape
    ho, wo = out_hw
    if positions_first:
        d = dcols.reshape(ho, wo, n, kh, kw, c).transpose(2, 0, 1, 3, 4, 5)
    else:
        d = dcols.reshape(n, ho, wo, kh, kw, c)
    out = workspace(ws, "col2im", (n, h, w, c), dcols.dtype)     # no padding: contiguous result
    offsets = list(_offsets(kh, kw, stride, pads, out_hw, (h, w)))

    def images(a, b):                       # images a..b-1; each sums its offsets in order
        out[a:b] = 0
        for dy, dx, (oy, ox), (iy, ix) in offsets:
            o = out[a:b, iy, ix, :]
            np.add(o, d[a:b, oy, ox, dy, dx, :], out=o)

    threads.chunked(images, n, out.size)
    return out


def _inside(offset, stride, n_out, n_in):
    """(output slice, input slice) of the o in [0, n_out) whose input i = stride·o + offset
    lies in [0, n_in); None when there is none (the offset only ever sees padding)."""
    o0 = max(0, -(offset // stride))                    # = ceil(−offset / stride), at least 0
    o1 = min(n_out, (n_in - 1 - offset) // stride + 1)  # one past the last o with i < n_in
    if o1 <= o0:
        return None
    i0 = stride * o0 + offset
    return slice(o0, o1), slice(i0, i0 + stride * (o1 - o0 - 1) + 1, stride)


def _offsets(kh, kw, stride, pads, out_hw, in_hw):
    """For each kernel offset (dy, dx) that sees the input: (dy, dx, (oy, ox), (iy, ix)),
    the output and input slices it connects, padding (top, bottom, left, right) excluded."""
    top, _, left, _ = pads
    for dy in range(kh):
        rows = _inside(dy - top, stride, out_hw[0], in_hw[0])
        for dx in range(kw):
            cols = _inside(dx - left, stride, out_hw[1], in_hw[1])
            if rows is not None and cols is not None:
                yield dy, dx, (rows[0], cols[0]), (rows[1], cols[1])


def batched_matmul(a, b, out=None):
    """a @ b for stacks of matrices: (P, M, K) @ (P, K, N) → (P, M, N), into `out` when given
    (np.matmul; a, b and out may be transposed or strided views). The per-position GEMM of
    the locally-connected layer; kernels/gpu.py calls cuBLAS on the views without copying."""
    return np.matmul(a, b, out=out)


def maxpool_forward(x, pool):
    """Non-overlapping max-pool (Keras 'valid', stride = pool).

    x: (N, H, W, C) → (y (N, H//p, W//p, C), arg (N, H//p, W//p, C) int8 index
    dy·p + dx of the winner; the first maximum on ties, as TensorFlow).
    """
    n, h, w, c = x.shape
    ho, wo = h // pool, w // pool
    win = x[:, :ho * pool, :wo * pool, :].reshape(n, ho, pool, wo, pool, c)
    win = win.transpose(0, 1, 3, 5, 2, 4).reshape(n, ho, wo, c, pool * pool)
    arg = win.argmax(axis=-1).astype(np.int8)
    y = np.take_along_axis(win, arg[..., None].astype(np.intp), axis=-1)[..., 0]
    return y, arg


def maxpool_feedback(fb, arg, x_shape, pool):
    """Route feedback (N, Ho, Wo, C) only to each window's winning input → (N, H, W, C)."""
    n, h, w, c = x_shape
    ho, wo = fb.shape[1], fb.shape[2]
    win = np.zeros((n, ho, wo, c, pool * pool), dtype=fb.dtype)
    np.put_along_axis(win, arg[..., None].astype(np.intp), fb[..., None], axis=-1)
    win = win.reshape(n, ho, wo, c, pool, pool).transpose(0, 1, 4, 2, 5, 3)
    out = np.zeros(x_shape, dtype=fb.dtype)
    out[:, :ho * pool, :wo * pool, :] = win.reshape(n, ho * pool, wo * pool, c)
    return out


def _rows(a):
    """a as (N, rest): a view when a is contiguous (else a copy, for reading)."""
    return a.reshape(a.shape[0], -1)


def relu_forward(x):
    """y = max(x, 0)."""
    y = np.empty(x.shape, x.dtype)
    xr, yr = _rows(x), _rows(y)
    threads.chunked(lambda a, b: np.maximum(xr[a:b], 0, out=yr[a:b]), len(xr), x.size)
    return y


def relu_feedback(fb, y):
    """Feedback passes only where the unit was active: fb · [y > 0]."""
    out = np.empty(fb.shape, fb.dtype)
    fr, yr, o = _rows(fb), _rows(y), _rows(out)
    threads.chunked(lambda a, b: np.multiply(fr[a:b], yr[a:b] > 0, out=o[a:b]), len(fr), fb.size)
    return out


def _wide(x):
    """View x (..., C) as (M/k, k·C) with k | M, so per-channel loops run over long rows.

    NumPy's reductions over a short last axis are slow; summing a wide view over axis 0
    and then folding the k copies of each channel is several times faster.
    """
    c = x.shape[-1]
    m = x.size // c
    k = math.gcd(m, max(1, 1024 // c))
    return x.reshape(m // k, k * c), k


def _channel_sum(xw, k):
    """Σ over rows of a wide view (M/k, k·C) → (C,)."""
    return xw.sum(axis=0).reshape(k, -1).sum(axis=0)


def batchnorm_stats(x):
    """Per-channel mean and biased variance of x (..., C) over all other axes (two-pass)."""
    xw, k = _wide(x)
    m = x.size // x.shape[-1]
    mean = _channel_sum(xw, k) / m
    d = xw - np.tile(mean, k)
    var = np.einsum("ij,ij->j", d, d).reshape(k, -1).sum(axis=0) / m
    return mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)


def batchnorm_train_forward(x, gamma, beta, epsilon):
    """Batch-statistics BatchNorm in one go (the centred x is computed once).

    Returns (xhat, y, mean, var, inv_std): mean and biased var per channel (two-pass),
    inv_std = 1/sqrt(var + epsilon), xhat = (x − mean)·inv_std, y = gamma·xhat + beta.
    """
    xw, k = _wide(x)
    m = x.size // x.shape[-1]
    mean = (_channel_sum(xw, k) / m).astype(x.dtype, copy=False)
    xhat = np.empty_like(xw)
    mean_k = np.tile(mean, k)
    threads.chunked(lambda a, b: np.subtract(xw[a:b], mean_k, out=xhat[a:b]), len(xw), xw.size)
    var = (np.einsum("ij,ij->j", xhat, xhat).reshape(k, -1).sum(axis=0) / m).astype(x.dtype, copy=False)
    inv_std = (1.0 / np.sqrt(var + epsilon)).astype(x.dtype, copy=False)
    y = np.empty_like(xw)
    _normalise_rows(xhat, y, None, np.tile(inv_std, k), np.tile(gamma, k), np.tile(beta, k))
    return xhat.reshape(x.shape), y.reshape(x.shape), mean, var, inv_std


def _normalise_rows(xhat, y, x, inv_std_k, gamma_k, beta_k, mean_k=None):
    """Row-parallel xhat = (x − mean)·inv_std (or xhat ·= inv_std in place when x is None),
    then y = gamma·xhat + beta, on wide views."""
    def rows(a, b):
        h = xhat[a:b]
        if x is not None:
            np.subtract(x[a:b], mean_k, out=h)
        h *= inv_std_k
        np.multiply(h, gamma_k, out=y[a:b])
        y[a:b] += beta_k
    threads.chunked(rows, len(xhat), xhat.size)


def batchnorm_train_forward_update(x, gamma, beta, epsilon, moving_mean, moving_variance, momentum):
    """batchnorm_train_forward, then batchnorm_update_moving of the running statistics (in place,
    m = the rows of x); returns what batchnorm_train_forward returns. (One function so that
    the GPU can update the statistics inside the statistics kernel: no launch of its own.)"""
    out = batchnorm_train_forward(x, gamma, beta, epsilon)
    batchnorm_update_moving(moving_mean, moving_variance, out[2], out[3], momentum, x.size // x.shape[-1])
    return out


def batchnorm_forward(x, mean, inv_std, gamma, beta):
    """xhat = (x − mean)·inv_std, y = gamma·xhat + beta (per channel, last axis)."""
    xw, k = _wide(x)
    xhat, y = np.empty_like(xw), np.empty_like(xw)
    _normalise_rows(xhat, y, xw, np.tile(inv_std, k), np.tile(gamma, k), np.tile(beta, k), np.tile(mean, k))
    return xhat.reshape(x.shape), y.reshape(x.shape)


def batchnorm_feedback_train(fb, xhat, gamma, inv_std):
    """Feedback through batch-statistics BatchNorm.

    Returns (fb_in, dgamma, dbeta) with dgamma = Σ fb·xhat, dbeta = Σ fb and
    fb_in = gamma·inv_std·(fb − mean(fb) − xhat·mean(fb·xhat)) (means over N·H·W).
    """
    fw, k = _wide(fb)
    hw, _ = _wide(xhat)
    m = fb.size // fb.shape[-1]
    dbeta = _channel_sum(fw, k)
    dgamma = np.einsum("ij,ij->j", fw, hw).reshape(k, -1).sum(axis=0)
    fb_in = np.empty_like(fw)
    a_k, b_k, s_k = np.tile(-dgamma / m, k), np.tile(-dbeta / m, k), np.tile(gamma * inv_std, k)

    def rows(a, b):                         # in place: no temporaries
        o = fb_in[a:b]
        np.multiply(hw[a:b], a_k, out=o)
        o += fw[a:b]
        o += b_k
        o *= s_k

    threads.chunked(rows, len(fw), fw.size)
    return fb_in.reshape(fb.shape), dgamma, dbeta


def batchnorm_feedback_inference(fb, xhat, gamma, inv_std):
    """Feedback through running-statistics BatchNorm: fb_in = gamma·inv_std·fb.

    Returns (fb_in, dgamma, dbeta) with dgamma = Σ fb·xhat, dbeta = Σ fb.
    """
    fw, k = _wide(fb)
    hw, _ = _wide(xhat)
    dbeta = _channel_sum(fw, k)
    dgamma = np.einsum("ij,ij->j", fw, hw).reshape(k, -1).sum(axis=0)
    fb_in = np.empty_like(fw)
    s_k = np.tile(gamma * inv_std, k)
    threads.chunked(lambda a, b: np.multiply(fw[a:b], s_k, out=fb_in[a:b]), len(fw), fw.size)
    return fb_in.reshape(fb.shape), dgamma, dbeta


def dropout_mask(u, rate, dtype):
    """Inverted dropout mask from uniforms u in [0, 1): [u ≥ rate] / (1 − rate)."""
    mask = (u >= rate).astype(dtype)
    mask *= np.dtype(dtype).type(1.0 / (1.0 - rate))
    return mask


def dropout_forward(x, u, rate):
    """The dropout layer's training forward: (y, mask), mask = dropout_mask(u, rate, x.dtype), y = x·mask."""
    mask = dropout_mask(u, rate, x.dtype)
    return x * mask, mask


def softmax(q):
    """Row-wise softmax of (B, C), max-subtracted."""
    z = np.exp(q - q.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def select_actions(q, epsilon, u_explore, u_sample):
    """ε-greedy Boltzmann selection.

    q (B, C); u_explore, u_sample (B,) uniforms in [0, 1). With probability 1 − ε
    (u_explore ≥ ε) the action is argmax q; otherwise it is sampled from softmax(q) by
    inverse CDF with u_sample. Returns int64 (B,).
    """
    greedy = q.argmax(axis=1)
    cdf = np.cumsum(softmax(q), axis=1)
    sampled = (cdf < (u_sample * cdf[:, -1])[:, None]).sum(axis=1)
    sampled = np.minimum(sampled, q.shape[1] - 1)
    return np.where(u_explore < epsilon, sampled, greedy).astype(np.int64)


def brainprop_output(q, labels, actions, scale):
    """The BrainProp output step for chosen actions.

    reward_b = [action_b = label_b]; delta_b = reward_b − q[b, action_b];
    the attention-gated top feedback fb[b, c] = −scale·delta_b if c = action_b else 0,
    so that with scale = 1/B the layers' grads are ∂L/∂W of L = Σ_b ½ delta_b² / B.
    Returns (reward, delta, fb).
    """
    b = np.arange(q.shape[0])
    reward = (actions == labels).astype(q.dtype)
    delta = reward - q[b, actions]
    fb = np.zeros_like(q)
    fb[b, actions] = -scale * delta
    return reward, delta, fb


def ebp_output(q, labels, scale):
    """Softmax cross-entropy at the output: p = softmax(q); fb = scale·(p − onehot(label)).

    Returns (p, fb).
    """
    p = softmax(q)
    fb = p.copy()
    fb[np.arange(q.shape[0]), labels] -= 1
    fb *= scale
    return p, fb


# ---- the fused steps of a training trial (one launch each on the GPU) -----------------

def brainprop_step(q, labels, epsilon, u_explore, u_sample, nominal, actions=None):
    """The whole BrainProp output step of a trial: select, reward, delta, feedback, loss.

    select:   actions = select_actions(q, epsilon, u_explore, u_sample) (ε-greedy
              Boltzmann); argmax q when u_explore and u_sample are None (test time);
              the given `actions` when there are some;
    reward:   reward_b = [action_b = label_b];
    delta:    delta_b = reward_b − q[b, action_b];
    feedback: fb[b, c] = −delta_b / nominal if c = action_b else 0 (brainprop_output with
              scale 1/nominal), so that the layers' grads are ∂L/∂W of
    loss:     L = ½·Σ_b delta_b² / nominal (nominal: the batch size the loss divides by);
    n_correct = Σ_b reward_b.
    Returns (actions, reward, delta, fb, loss, n_correct).
    """
    if actions is None:
        if u_explore is None and u_sample is None:
            actions = q.argmax(axis=1)
        elif u_explore is None or u_sample is None:
            raise ValueError("brainprop_step: give both u_explore and u_sample (or neither, for argmax)")
        else:
            actions = select_actions(q, epsilon, u_explore, u_sample)
    reward, delta, fb = brainprop_output(q, labels, actions, 1.0 / nominal)
    t = q.dtype.type   # the loss in q's dtype under NumPy 1.x too (no promotion of scalars to float64)
    loss = t(0.5) * np.sum(delta * delta) / t(nominal)
    return actions, reward, delta, fb, loss, np.sum(reward)


_SGD_CHUNK_BYTES = 1 << 18   # a cache-sized piece of w per pass of sgd_update


def sgd_update(w, g, lr, decay=1.0, sumsq=None):
    """In place: w ← w·decay − lr·g (SGD.step: decay = 1 − 2·lr·l2 for L2-regularised kernels).

    The same roundings as `w *= decay; w -= lr * g` (decay = 1 skips the product), but
    in cache-sized pieces through one small scratch buffer: no temporary the size of w,
    one pass over memory. g is not modified. Returns w.
    sumsq: None, or a 0-d array of w's dtype to which Σ w² of the old w is added first
    (np.vdot; SGD.step's L2 term of the loss; the GPU sums it in the update's own pass).
    """
    if sumsq is not None:
        flat = w.reshape(-1)
        sumsq += np.vdot(flat, flat)
    if not (w.flags.c_contiguous and w.flags.writeable) or g.shape != w.shape:
        if decay != 1.0:
            w *= decay
        w -= lr * g
        return w
    wf, gf = w.reshape(-1), g.reshape(-1)       # views (g copied only when not contiguous)
    n = wf.size
    chunk = max(1, _SGD_CHUNK_BYTES // w.itemsize)
    scratch = np.empty(min(n, chunk), dtype=np.result_type(g.dtype, lr))   # the dtype of lr * g
    for i in range(0, n, chunk):
        wc = wf[i:i + chunk]
        t = scratch[:wc.size]
        if decay != 1.0:
            np.multiply(wc, decay, out=wc)
        np.multiply(gf[i:i + chunk], lr, out=t)
        np.subtract(wc, t, out=wc)
    return w


def batchnorm_update_moving(moving_mean, moving_variance, mean, var, momentum, m):
    """In place: BatchNorm's running statistics after a batch of m values per channel.

    moving_mean ← momentum·moving_mean + (1 − momentum)·mean;
    moving_variance ← momentum·moving_variance + (1 − momentum)·var·m/(m − 1)
    (the unbiased batch variance, as Keras's fused BatchNorm). Returns both.
    """
    moving_mean *= momentum
    moving_mean += (1.0 - momentum) * mean
    moving_variance *= momentum
    moving_variance += (1.0 - momentum) * var * (m / max(m - 1, 1))
    return moving_mean, moving_variance
