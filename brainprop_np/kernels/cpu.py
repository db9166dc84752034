"""NumPy reference versions of the hot loops: plain, vectorised, no loop over pixels or images.

This is the version to read beside the CUDA sources: every function here has a twin of
the same name and signature in `kernels/gpu.py` (hand-written CUDA) and in `kernels/fast/`
(compiled, fused, multi-core CPU kernels), and the tests compare both with it. Speed
tricks belong in those sets, not here. Images are channels last: (N, H, W, C). `pads` is
(top, bottom, left, right). Loops that remain run over the kh·kw kernel offsets only.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import philox

xp = np
NAME = "numpy"


def _pad(x, pads):
    """x (N, H, W, C) with zero rows/columns added: pads = (top, bottom, left, right)."""
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _patches(xpad, kh, kw, stride, ho, wo):
    """Strided view (N, Ho, Wo, kh, kw, C) of the receptive fields of a padded input."""
    n, _, _, c = xpad.shape
    sn, sh, sw, sc = xpad.strides
    return as_strided(xpad, shape=(n, ho, wo, kh, kw, c),
                      strides=(sn, stride * sh, stride * sw, sh, sw, sc), writeable=False)


def im2col(x, kh, kw, stride, pads, out_hw, positions_first=False):
    """Unfold receptive fields into rows (presynaptic activity of each weight).

    x: (N, H, W, C). Returns cols (N·Ho·Wo, kh·kw·C) — row order (n, oy, ox) — or,
    with positions_first, (Ho·Wo, N, kh·kw·C) for the batched per-position GEMM of a
    locally-connected layer. Column q = (dy·kw + dx)·C + c holds
    x_pad[n, stride·oy + dy, stride·ox + dx, c] (Keras's kernel order).
    """
    ho, wo = out_hw
    n, _, _, c = x.shape
    v = _patches(_pad(x, pads), kh, kw, stride, ho, wo)           # (N, Ho, Wo, kh, kw, C)
    if positions_first:
        return v.transpose(1, 2, 0, 3, 4, 5).reshape(ho * wo, n, kh * kw * c)
    return v.reshape(n * ho * wo, kh * kw * c)


def col2im(dcols, x_shape, kh, kw, stride, pads, out_hw, positions_first=False):
    """Fold row feedback back onto the input: the adjoint of `im2col`.

    dcols: (N·Ho·Wo, kh·kw·C) or, with positions_first, (Ho·Wo, N, kh·kw·C).
    Returns fb_in (N, H, W, C): every receptive-field entry summed onto the input unit it
    came from, kernel offset by offset (dy, then dx); entries in the padding are dropped.
    """
    n, h, w, c = x_shape
    ho, wo = out_hw
    top, bottom, left, right = pads
    if positions_first:
        d = dcols.reshape(ho, wo, n, kh, kw, c).transpose(2, 0, 1, 3, 4, 5)
    else:
        d = dcols.reshape(n, ho, wo, kh, kw, c)
    out = np.zeros((n, h + top + bottom, w + left + right, c), dcols.dtype)
    for dy in range(kh):                    # a loop over the kh·kw kernel offsets only
        for dx in range(kw):
            out[:, dy:dy + stride * ho:stride, dx:dx + stride * wo:stride, :] += d[:, :, :, dy, dx, :]
    return np.ascontiguousarray(out[:, top:top + h, left:left + w, :])


def lc_forward(cols, kernel):
    """Locally-connected forward: y[b, p] = cols[p, b] · W[p] for every output position p.

    cols (P, B, K) (im2col, positions first), kernel W (P, K, F) → y (B, P, F).
    """
    return np.matmul(cols, kernel).transpose(1, 0, 2)


def lc_feedback(fb, cols, fb_kernel, need_input_fb=True):
    """Locally-connected tags and input feedback, position by position.

    fb (B, P, F), cols (P, B, K), fb_kernel (P, K, F): the feedback weights (W itself
    when feedback is symmetric; None when need_input_fb is False).
    Returns (tags (P, K, F) with tags[p] = cols[p]ᵀ · fb[:, p],
             dcols (P, B, K) with dcols[p] = fb[:, p] · fb_kernel[p]ᵀ, or None).
    """
    fbp = fb.transpose(1, 0, 2)                                   # (P, B, F)
    tags = np.matmul(cols.transpose(0, 2, 1), fbp)
    dcols = np.matmul(fbp, fb_kernel.transpose(0, 2, 1)) if need_input_fb else None
    return tags, dcols


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


def relu_forward(x):
    """y = max(x, 0)."""
    return np.maximum(x, 0)


def relu_feedback(fb, y):
    """Feedback passes only where the unit was active: fb · [y > 0]."""
    return fb * (y > 0)


def _channels(x):
    """x (..., C) as rows (M, C): one row per unit of a channel map."""
    return x.reshape(-1, x.shape[-1])


def batchnorm_stats(x):
    """Per-channel mean and biased variance of x (..., C) over all other axes
    (two-pass, accumulated in float64, returned in x's dtype)."""
    xr = _channels(x)
    mean = xr.mean(axis=0, dtype=np.float64)
    var = np.square(xr - mean).mean(axis=0)
    return mean.astype(x.dtype), var.astype(x.dtype)


def batchnorm_train_forward_update(x, gamma, beta, epsilon, moving_mean, moving_variance, momentum):
    """batchnorm_train_forward, then batchnorm_update_moving of the running statistics (in place,
    m = the rows of x); returns what batchnorm_train_forward returns. (One function so that
    the GPU can update the statistics inside the statistics kernel: no launch of its own.)"""
    out = batchnorm_train_forward(x, gamma, beta, epsilon)
    batchnorm_update_moving(moving_mean, moving_variance, out[2], out[3], momentum, x.size // x.shape[-1])
    return out


def batchnorm_forward(x, mean, inv_std, gamma, beta):
    """xhat = (x − mean)·inv_std, y = gamma·xhat + beta (per channel, last axis)."""
    xhat = (x - mean) * inv_std
    return xhat, xhat * gamma + beta


def batchnorm_train_forward(x, gamma, beta, epsilon):
    """Batch-statistics BatchNorm: returns (xhat, y, mean, var, inv_std) with mean and
    biased var per channel, inv_std = 1/sqrt(var + epsilon), xhat = (x − mean)·inv_std,
    y = gamma·xhat + beta."""
    mean, var = batchnorm_stats(x)
    inv_std = (1.0 / np.sqrt(var + epsilon)).astype(x.dtype)
    xhat, y = batchnorm_forward(x, mean, inv_std, gamma, beta)
    return xhat, y, mean, var, inv_std


def _feedback_sums(fb, xhat):
    """(dgamma, dbeta) = (Σ fb·xhat, Σ fb) per channel, accumulated in float64."""
    fr, hr = _channels(fb), _channels(xhat)
    dgamma = np.einsum("ij,ij->j", fr.astype(np.float64), hr)
    dbeta = fr.sum(axis=0, dtype=np.float64)
    return dgamma.astype(fb.dtype), dbeta.astype(fb.dtype)


def batchnorm_feedback_train(fb, xhat, gamma, inv_std):
    """Feedback through batch-statistics BatchNorm.

    Returns (fb_in, dgamma, dbeta) with dgamma = Σ fb·xhat, dbeta = Σ fb and
    fb_in = gamma·inv_std·(fb − mean(fb) − xhat·mean(fb·xhat)) (means over N·H·W).
    """
    m = fb.size // fb.shape[-1]
    dgamma, dbeta = _feedback_sums(fb, xhat)
    fb_in = (fb + xhat * (-dgamma / m) + (-dbeta / m)) * (gamma * inv_std)
    return fb_in, dgamma, dbeta


def batchnorm_feedback_inference(fb, xhat, gamma, inv_std):
    """Feedback through running-statistics BatchNorm: fb_in = gamma·inv_std·fb.

    Returns (fb_in, dgamma, dbeta) with dgamma = Σ fb·xhat, dbeta = Σ fb.
    """
    dgamma, dbeta = _feedback_sums(fb, xhat)
    return fb * (gamma * inv_std), dgamma, dbeta


def dropout_mask(u, rate, dtype):
    """Inverted dropout mask from uniforms u in [0, 1): [u ≥ rate] / (1 − rate)."""
    mask = (u >= rate).astype(dtype)
    mask *= np.dtype(dtype).type(1.0 / (1.0 - rate))
    return mask


def philox_uniforms(key, step, n, dtype):
    """(n,) uniforms of elements 0..n−1 at trial `step` from the counter-based generator
    (Philox4x32-10, brainprop_np/philox.py), the draws of dropout and exploration."""
    return philox.uniforms(key, step, n, dtype)


def dropout_forward(x, rate, key, step):
    """The dropout layer's training forward: (y, mask), mask = dropout_mask(u, rate, x.dtype),
    y = x·mask, with u (x's shape) the uniforms of x's elements (flat index) at (key, step)."""
    u = philox_uniforms(key, step, x.size, x.dtype).reshape(x.shape)
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

def brainprop_step(q, labels, epsilon, key, step, nominal, actions=None, metrics=None):
    """The whole BrainProp output step of a trial: select, reward, delta, feedback, loss.

    select:   actions = select_actions(q, epsilon, u_explore, u_sample) (ε-greedy
              Boltzmann) with (u_explore, u_sample) = philox.explore_uniforms(key, step, B):
              image b's draws at trial `step`; argmax q when key is None (test time);
              the given `actions` when there are some;
    reward:   reward_b = [action_b = label_b];
    delta:    delta_b = reward_b − q[b, action_b];
    feedback: fb[b, c] = −delta_b / nominal if c = action_b else 0 (brainprop_output with
              scale 1/nominal), so that the layers' grads are ∂L/∂W of
    loss:     L = ½·Σ_b delta_b² / nominal (nominal: the batch size the loss divides by);
    n_correct = Σ_b reward_b;
    metrics:  None, or the epoch's float64 accumulator (rules.base.METRICS), to which the
              trial adds B·L, Σ reward, Σ delta, Σ |delta| and the explored count
              Σ [action ≠ argmax q], summed in float64.
    Returns (actions, reward, delta, fb, loss, n_correct).
    """
    greedy = q.argmax(axis=1)
    if actions is None and key is None:
        actions = greedy
    elif actions is None:
        u_explore, u_sample = philox.explore_uniforms(key, step, q.shape[0], q.dtype)
        actions = select_actions(q, epsilon, u_explore, u_sample)
    reward, delta, fb = brainprop_output(q, labels, actions, 1.0 / nominal)
    t = q.dtype.type   # the loss in q's dtype under NumPy 1.x too (no promotion of scalars to float64)
    loss = t(0.5) * np.sum(delta * delta) / t(nominal)
    if metrics is not None:
        d = delta.astype(np.float64)
        metrics += [len(q) * (0.5 * np.sum(d * d) / nominal), np.sum(reward, dtype=np.float64), np.sum(d),
                    np.sum(np.abs(d)), np.count_nonzero(actions != greedy)]
    return actions, reward, delta, fb, loss, np.sum(reward)


def sgd_update(w, g, lr, decay=1.0, sumsq=None):
    """In place: w ← w·decay − lr·g (SGD.step: decay = 1 − 2·lr·l2 for L2-regularised
    kernels; decay = 1 skips the product). g is not modified. Returns w.
    sumsq: None, or a 0-d array of w's dtype to which Σ w² of the old w is added first
    (np.vdot; SGD.step's L2 term of the loss; the GPU sums it in the update's own pass).
    """
    _add_sum_of_squares(w, sumsq)
    if decay != 1.0:
        w *= decay
    w -= lr * g
    return w


def _add_sum_of_squares(w, sumsq):
    """sumsq += Σ w² (np.vdot over the flattened w) when sumsq (a 0-d array) is not None:
    the L2 term of the loss, summed before an update changes w. The CPU sets' helper (the
    GPU's update sums it in its own pass)."""
    if sumsq is not None:
        flat = w.reshape(-1)
        sumsq += np.vdot(flat, flat)


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
