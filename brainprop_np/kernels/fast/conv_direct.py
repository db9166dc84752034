"""Direct convolution of a one-channel input (MNIST's first layer): no im2col.

With C = 1 the im2col matrix (N·Ho·Wo, k·k) is k² copies of the image and its forward
GEMM has an inner dimension of 9: BLAS runs it far below its rate. Here each output
position reads its k×k window straight from the padded image xp (N, Hp, Wp), Keras's
zero padding written around the image once per call (`pad_images`):

  forward   y[n, oy, ox, f] = Σ_{dy, dx} xp[n, s·oy + dy, s·ox + dx] · W[dy, dx, f]
  tags      grads[dy, dx, f] = Σ_{n, oy, ox} xp[n, s·oy + dy, s·ox + dx] · fb[n, oy, ox, f]
  input fb  fb_in[n, iy, ix] = Σ_{dy, dx, f} fb[n, oy, ox, f] · B[dy, dx, f] over the (oy, ox)
            whose window holds (iy, ix)

W and B are (kh, kw, F). The forward adds the taps in (dy, dx) order from 0 in the input's
precision; a 3×3 kernel (every preset's) loads an output's nine window values once and
adds all nine products per channel (`_row_3x3`), other sizes pass over the row once per tap. Adding a padding zero's product
leaves a sum's bits as skipping it would. The tags sum each output row's products in the
input's precision (a 3×3 kernel's nine sums per channel side by side, `_row_part_3x3`),
and the rows in float64 per fixed chunk of images (independent of the thread count). Both
agree with the reference's BLAS products to float rounding, not bit for bit.
"""
import numba
import numpy as np

from .jit import kernel, prange

_IMAGES_PER_CHUNK = 8


def pad_images(x, kernel_hw, stride, pads, out_hw):
    """xp (N, Hp, Wp): x (N, H, W, 1) with `pads` = (top, bottom, left, right) zeros around
    it, cut to the rows and columns that the (Ho, Wo) windows read."""
    (kh, kw), (ho, wo), (top, _, left, _) = kernel_hw, out_hw, pads
    hp, wp = stride * (ho - 1) + kh, stride * (wo - 1) + kw
    xp = np.zeros((x.shape[0], hp, wp), x.dtype)
    h, w = min(x.shape[1], hp - top), min(x.shape[2], wp - left)
    xp[:, top:top + h, left:left + w] = x[:, :h, :w, 0]
    return xp


@numba.njit(inline="always")
def _row_3x3(xp, w, stride, b, oy, zero, out):
    """conv_row for a 3×3 kernel: the window's nine values are loaded once per output."""
    wo, f = out.shape
    r0, r1, r2 = xp[b, stride * oy], xp[b, stride * oy + 1], xp[b, stride * oy + 2]
    w0, w1, w2, w3, w4 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1]
    w5, w6, w7, w8 = w[1, 2], w[2, 0], w[2, 1], w[2, 2]
    for ox in range(wo):
        ix = stride * ox
        v0, v1, v2, v3, v4 = r0[ix], r0[ix + 1], r0[ix + 2], r1[ix], r1[ix + 1]
        v5, v6, v7, v8 = r1[ix + 2], r2[ix], r2[ix + 1], r2[ix + 2]
        o = out[ox]
        for ch in range(f):
            a = zero + v0 * w0[ch]
            a = a + v1 * w1[ch]
            a = a + v2 * w2[ch]
            a = a + v3 * w3[ch]
            a = a + v4 * w4[ch]
            a = a + v5 * w5[ch]
            a = a + v6 * w6[ch]
            a = a + v7 * w7[ch]
            o[ch] = a + v8 * w8[ch]


@numba.njit(inline="always")
def conv_row(xp, w, stride, b, oy, zero, out):
    """out (Wo, F)[ox, f] = Σ_{dy, dx} xp[b, s·oy + dy, s·ox + dx]·W[dy, dx, f] for one output
    row of image b, the taps added in (dy, dx) order from `zero` in xp's precision."""
    kh, kw, f = w.shape
    if kh == 3 and kw == 3:
        _row_3x3(xp, w, stride, b, oy, zero, out)
        return
    wo = out.shape[0]
    for ox in range(wo):
        for ch in range(f):
            out[ox, ch] = zero
    for dy in range(kh):
        r = xp[b, stride * oy + dy]
        for dx in range(kw):
            for ox in range(wo):
                v = r[stride * ox + dx]
                for ch in range(f):
                    out[ox, ch] += v * w[dy, dx, ch]


@kernel
def _forward(xp, w, stride, zero, y):
    for b in prange(xp.shape[0]):
        for oy in range(y.shape[1]):
            conv_row(xp, w, stride, b, oy, zero, y[b, oy])


@numba.njit(inline="always")
def _row_part_3x3(xp, fb_row, b, oy, stride, part):
    """part[dy, dx, f] += Σ_ox xp-window[dy, dx]·fb_row[ox, f] for a 3×3 kernel."""
    r0, r1, r2 = xp[b, stride * oy], xp[b, stride * oy + 1], xp[b, stride * oy + 2]
    wo, f = fb_row.shape
    for ox in range(wo):
        g, ix = fb_row[ox], stride * ox
        v0, v1, v2, v3, v4 = r0[ix], r0[ix + 1], r0[ix + 2], r1[ix], r1[ix + 1]
        v5, v6, v7, v8 = r1[ix + 2], r2[ix], r2[ix + 1], r2[ix + 2]
        for ch in range(f):
            gc = g[ch]
            part[0, 0, ch] += v0 * gc
            part[0, 1, ch] += v1 * gc
            part[0, 2, ch] += v2 * gc
            part[1, 0, ch] += v3 * gc
            part[1, 1, ch] += v4 * gc
            part[1, 2, ch] += v5 * gc
            part[2, 0, ch] += v6 * gc
            part[2, 1, ch] += v7 * gc
            part[2, 2, ch] += v8 * gc


@numba.njit(inline="always")
def add_row_tags(xp, fb_row, b, oy, stride, part, acc):
    """acc[dy, dx, f] += Σ_ox xp-window of output (b, oy, ox)[dy, dx]·fb_row[ox, f]: the row's
    sum made in part (kh, kw, F; xp's precision, the outputs in ox order), then added to acc
    (float64)."""
    kh, kw, f = part.shape
    part[:] = 0
    if kh == 3 and kw == 3:
        _row_part_3x3(xp, fb_row, b, oy, stride, part)
    else:
        for ox in range(fb_row.shape[0]):
            for dy in range(kh):
                r = xp[b, stride * oy + dy]
                for dx in range(kw):
                    v = r[stride * ox + dx]
                    for ch in range(f):
                        part[dy, dx, ch] += v * fb_row[ox, ch]
    for dy in range(kh):
        for dx in range(kw):
            for ch in range(f):
                acc[dy, dx, ch] += np.float64(part[dy, dx, ch])


@kernel
def _tags(xp, fb, stride, n_chunks, acc):
    """acc[k] = Σ over the images of chunk k of x-window · fb, a row of outputs at a time; each
    chunk's sums in arrays of its own (chunk_sums)."""
    n = xp.shape[0]
    kh, kw, f = acc.shape[1:]
    for k in prange(n_chunks):
        part, acc_k = chunk_sums(kh, kw, f, fb.dtype)
        for b in range(n * k // n_chunks, n * (k + 1) // n_chunks):
            for oy in range(fb.shape[1]):
                add_row_tags(xp, fb[b, oy], b, oy, stride, part, acc_k)
        acc[k] = acc_k


@numba.njit(inline="always")
def chunk_sums(kh, kw, f, dtype):
    """(part, acc) of one chunk of the tags: its row sum (dtype) and its float64 sum (zeros),
    (kh, kw, F) each, made inside the kernel: the compiler knows they overlap no input, so
    the loops that update them need no run-time overlap checks."""
    return np.empty((kh, kw, f), dtype), np.zeros((kh, kw, f))


def tag_chunks(n):
    """The fixed number of image chunks the tags of n images are summed in (float64 per chunk)."""
    return max(1, min(64, -(-n // _IMAGES_PER_CHUNK)))


def tag_sums(n, kernel_shape):
    """acc (K, kh, kw, F) float64: the tags' sum per chunk of images, filled by the kernels."""
    return np.zeros((tag_chunks(n),) + tuple(kernel_shape[:2]) + (kernel_shape[-1],))


def conv1_forward(x, kernel_w, stride, pads, out_hw):
    """x (N, H, W, 1), kernel (kh, kw, 1, F) → y (N, Ho, Wo, F)."""
    kh, kw, _, f = kernel_w.shape
    y = np.empty((x.shape[0],) + tuple(out_hw) + (f,), x.dtype)
    _forward(y.size * kh * kw, pad_images(x, (kh, kw), stride, pads, out_hw),
             np.ascontiguousarray(kernel_w.reshape(kh, kw, f)), stride, x.dtype.type(0), y)
    return y


def conv1_tags(x, fb, kernel_shape, stride, pads):
    """grads (kh, kw, 1, F) = Σ x-window · fb over images and positions."""
    kh, kw, _, f = kernel_shape
    acc = tag_sums(x.shape[0], kernel_shape)
    fbc = np.ascontiguousarray(fb)
    _tags(fbc.size * kh * kw, pad_images(x, (kh, kw), stride, pads, fb.shape[1:3]), fbc, stride, len(acc), acc)
    return acc.sum(axis=0).astype(x.dtype).reshape(kernel_shape)


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


def conv1_input_feedback(x_shape, fb, fb_kernel, stride, pads):
    """fb_in (N, H, W, 1): each input unit sums fb · B over the windows that hold it."""
    kh, kw, _, f = fb_kernel.shape
    out = np.empty(tuple(x_shape[:3]), fb.dtype)
    fbc = np.ascontiguousarray(fb)
    _input_feedback(fbc.size * kh * kw, fbc, np.ascontiguousarray(fb_kernel.reshape(kh, kw, f)),
                    stride, pads[0], pads[2], out)
    return out.reshape(x_shape)
