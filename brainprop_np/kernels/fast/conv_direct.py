"""Direct convolution of a one-channel input (MNIST's first layer): no im2col.

With C = 1 the im2col matrix (N·Ho·Wo, k·k) is k² copies of the image and its GEMMs have
an inner dimension of 9: BLAS runs them far below its rate (the tags' colsᵀ·fb worst of
all). Here each output position reads its k×k window straight from the image:

  forward   y[n, oy, ox, f] = Σ_{dy, dx} x[n, s·oy + dy − top, s·ox + dx − left] · W[dy, dx, f]
  tags      grads[dy, dx, f] = Σ_{n, oy, ox} x[n, s·oy + dy − top, s·ox + dx − left] · fb[n, oy, ox, f]
  input fb  fb_in[n, iy, ix] = Σ_{dy, dx, f} fb[n, oy, ox, f] · B[dy, dx, f] over the (oy, ox)
            whose window holds (iy, ix)

(entries outside the image are zero, as Keras's padding). x is (N, H, W), W and B
(kh, kw, F). The forward sums the taps in (dy, dx) order in the input's precision, the
tags in float64 per fixed chunk of images (independent of the thread count), so they
agree with the reference's BLAS products to float32 rounding, not bit for bit.
"""
import numba
import numpy as np

from .jit import kernel, prange

_IMAGES_PER_CHUNK = 8


@numba.njit(inline="always")
def conv_row(x, w, stride, top, left, b, oy, out):
    """out[ox, f] = Σ_{dy, dx} x[b, s·oy + dy − top, s·ox + dx − left]·W[dy, dx, f] for one
    output row (Wo, F) of image b, the taps added in (dy, dx) order from 0 in x's precision
    (the row sits in L1 while each tap passes over it)."""
    h, wd = x.shape[1], x.shape[2]
    kh, kw, f = w.shape
    wo = out.shape[0]
    for ox in range(wo):
        for ch in range(f):
            out[ox, ch] = 0
    for dy in range(kh):
        iy = stride * oy + dy - top
        if iy < 0 or iy >= h:
            continue
        for dx in range(kw):
            for ox in range(wo):
                ix = stride * ox + dx - left
                if ix < 0 or ix >= wd:
                    continue
                v = x[b, iy, ix]
                for ch in range(f):
                    out[ox, ch] += v * w[dy, dx, ch]


@kernel
def _forward(x, w, stride, top, left, y):
    for b in prange(x.shape[0]):
        for oy in range(y.shape[1]):
            conv_row(x, w, stride, top, left, b, oy, y[b, oy])


@numba.njit(inline="always")
def add_row_tags(x, fb_row, b, oy, stride, top, left, acc):
    """acc[dy, dx, f] += Σ_ox x-window of output (b, oy, ox) · fb_row[ox, f] (float64 acc)."""
    h, wd = x.shape[1], x.shape[2]
    wo, f = fb_row.shape
    kh, kw, _ = acc.shape
    for dy in range(kh):
        iy = stride * oy + dy - top
        if iy < 0 or iy >= h:
            continue
        for ox in range(wo):
            for dx in range(kw):
                ix = stride * ox + dx - left
                if ix < 0 or ix >= wd:
                    continue
                v = np.float64(x[b, iy, ix])
                for ch in range(f):
                    acc[dy, dx, ch] += v * fb_row[ox, ch]


@kernel
def _tags(x, fb, stride, top, left, n_chunks, acc):
    """acc[k, dy, dx, f] = Σ over the images of chunk k of x-window · fb (float64)."""
    n = x.shape[0]
    for k in prange(n_chunks):
        for b in range(n * k // n_chunks, n * (k + 1) // n_chunks):
            for oy in range(fb.shape[1]):
                add_row_tags(x, fb[b, oy], b, oy, stride, top, left, acc[k])


@kernel
def _input_feedback(fb, bw, stride, top, left, out):
    n, h, wd = out.shape
    _, ho, wo, f = fb.shape
    kh, kw, _ = bw.shape
    for b in prange(n):
        out[b] = 0
        for oy in range(ho):
            for ox in range(wo):
                for dy in range(kh):
                    iy = stride * oy + dy - top
                    if iy < 0 or iy >= h:
                        continue
                    for dx in range(kw):
                        ix = stride * ox + dx - left
                        if ix < 0 or ix >= wd:
                            continue
                        s = fb[b, oy, ox, 0] * bw[dy, dx, 0]
                        for ch in range(1, f):
                            s += fb[b, oy, ox, ch] * bw[dy, dx, ch]
                        out[b, iy, ix] += s


def tag_chunks(n):
    """The fixed number of image chunks the tags of n images are summed in (float64 per chunk)."""
    return max(1, min(64, -(-n // _IMAGES_PER_CHUNK)))


def conv1_forward(x, kernel_w, stride, pads, out_hw):
    """x (N, H, W, 1), kernel (kh, kw, 1, F) → y (N, Ho, Wo, F)."""
    kh, kw, _, f = kernel_w.shape
    y = np.empty((x.shape[0],) + tuple(out_hw) + (f,), x.dtype)
    _forward(y.size * kh * kw, np.ascontiguousarray(x[..., 0]), np.ascontiguousarray(kernel_w.reshape(kh, kw, f)),
             stride, pads[0], pads[2], y)
    return y


def conv1_tags(x, fb, kernel_shape, stride, pads):
    """grads (kh, kw, 1, F) = Σ x-window · fb over images and positions."""
    kh, kw, _, f = kernel_shape
    n_chunks = tag_chunks(x.shape[0])
    acc = np.zeros((n_chunks, kh, kw, f))
    fbc = np.ascontiguousarray(fb)
    _tags(fbc.size * kh * kw, np.ascontiguousarray(x[..., 0]), fbc, stride, pads[0], pads[2], n_chunks, acc)
    return acc.sum(axis=0).astype(x.dtype).reshape(kernel_shape)


def conv1_input_feedback(x_shape, fb, fb_kernel, stride, pads):
    """fb_in (N, H, W, 1): each input unit sums fb · B over the windows that hold it."""
    kh, kw, _, f = fb_kernel.shape
    out = np.empty(tuple(x_shape[:3]), fb.dtype)
    fbc = np.ascontiguousarray(fb)
    _input_feedback(fbc.size * kh * kw, fbc, np.ascontiguousarray(fb_kernel.reshape(kh, kw, f)),
                    stride, pads[0], pads[2], out)
    return out.reshape(x_shape)
