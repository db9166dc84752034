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
import numpy as np

from .jit import kernel, prange

_IMAGES_PER_CHUNK = 8


@kernel
def _forward(x, w, stride, top, left, y):
    n, h, wd = x.shape
    kh, kw, f = w.shape
    _, ho, wo, _ = y.shape
    for b in prange(n):
        for oy in range(ho):                  # a row of outputs (wo·f values, in L1) gets each tap in turn
            for ox in range(wo):
                for ch in range(f):
                    y[b, oy, ox, ch] = 0
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
                            y[b, oy, ox, ch] += v * w[dy, dx, ch]


@kernel
def _tags(x, fb, stride, top, left, n_chunks, acc):
    """acc[k, dy, dx, f] = Σ over the images of chunk k of x-window · fb (float64)."""
    n, h, wd = x.shape
    _, ho, wo, f = fb.shape
    _, kh, kw, _ = acc.shape
    for k in prange(n_chunks):
        for b in range(n * k // n_chunks, n * (k + 1) // n_chunks):
            for oy in range(ho):
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
                                acc[k, dy, dx, ch] += v * fb[b, oy, ox, ch]


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
    n = x.shape[0]
    n_chunks = max(1, min(64, -(-n // _IMAGES_PER_CHUNK)))
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
