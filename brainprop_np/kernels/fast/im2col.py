"""im2col / col2im and max-pooling, one image (or position) per thread.

Same layouts and the same results, bit for bit, as kernels/cpu.py: im2col is a copy;
col2im adds each input unit's receptive-field entries in the reference's order (kernel
offset dy, then dx, ascending), so the sums round identically.
"""
import numpy as np

from .jit import kernel, prange


@kernel
def _im2col(x, kh, kw, stride, top, left, ho, wo, pf, cols):
    """cols[i0, i1, (dy·kw + dx)·C + c] = x[n, stride·oy + dy − top, stride·ox + dx − left, c]
    (0 outside the input), with (i0, i1) = (oy·wo + ox, n) when pf, else (0, (n·ho + oy)·wo + ox)."""
    n, h, w, c = x.shape
    for bb in prange(n):
        b = np.int64(bb)
        for oy in range(ho):
            for ox in range(wo):
                p = oy * wo + ox
                i0 = p if pf else 0
                i1 = b if pf else b * ho * wo + p
                for dy in range(kh):
                    iy = stride * oy + dy - top
                    for dx in range(kw):
                        ix = stride * ox + dx - left
                        q0 = (dy * kw + dx) * c
                        if 0 <= iy < h and 0 <= ix < w:
                            for ch in range(c):
                                cols[i0, i1, q0 + ch] = x[b, iy, ix, ch]
                        else:
                            for ch in range(c):
                                cols[i0, i1, q0 + ch] = 0


@kernel
def _col2im(d, kh, kw, stride, top, left, ho, wo, pf, out):
    """out[n, iy, ix, c] = Σ over (dy, dx) ascending of the entries that im2col copied from there.
    The outputs are walked from the last (oy, ox) to the first and each one's row of d is read
    once, in order: a unit at iy is reached from the (oy, dy) with stride·oy + dy = iy + top, so
    descending oy (then ox) meets its entries in ascending (dy, dx) order, the reference's."""
    n, h, w, c = out.shape
    for bb in prange(n):
        b = np.int64(bb)
        out[b] = 0
        for oy in range(ho - 1, -1, -1):
            for ox in range(wo - 1, -1, -1):
                p = oy * wo + ox
                row = d[p, b] if pf else d[0, b * ho * wo + p]
                for dy in range(kh):
                    iy = stride * oy + dy - top
                    if iy < 0 or iy >= h:
                        continue
                    for dx in range(kw):
                        ix = stride * ox + dx - left
                        if ix < 0 or ix >= w:
                            continue
                        o, q0 = out[b, iy, ix], (dy * kw + dx) * c
                        for ch in range(c):
                            o[ch] += row[q0 + ch]


def im2col(x, kh, kw, stride, pads, out_hw, positions_first=False):
    """Unfold receptive fields into rows; layouts as cpu.im2col:
    (N·Ho·Wo, kh·kw·C), or (Ho·Wo, N, kh·kw·C) with positions_first."""
    ho, wo = out_hw
    n, _, _, c = x.shape
    k = kh * kw * c
    shape = (ho * wo, n, k) if positions_first else (n * ho * wo, k)
    cols = np.empty(shape, x.dtype)
    _im2col(cols.size, np.ascontiguousarray(x), kh, kw, stride, pads[0], pads[2], ho, wo, positions_first,
            cols.reshape((ho * wo, n, k) if positions_first else (1, n * ho * wo, k)))
    return cols


def col2im(dcols, x_shape, kh, kw, stride, pads, out_hw, positions_first=False):
    """Fold row feedback back onto the input (the adjoint of im2col) → (N, H, W, C)."""
    ho, wo = out_hw
    out = np.empty(x_shape, dcols.dtype)
    n, k = x_shape[0], dcols.shape[-1]
    d = np.ascontiguousarray(dcols).reshape((ho * wo, n, k) if positions_first else (1, n * ho * wo, k))
    _col2im(d.size, d, kh, kw, stride, pads[0], pads[2], ho, wo, positions_first, out)
    return out


@kernel
def _maxpool_forward(x, pool, y, arg):
    n, ho, wo, c = y.shape
    for b in prange(n):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    best = x[b, i * pool, j * pool, ch]
                    k_best = 0
                    for dy in range(pool):
                        for dx in range(pool):
                            v = x[b, i * pool + dy, j * pool + dx, ch]
                            if v > best:             # the first maximum wins ties
                                best, k_best = v, dy * pool + dx
                    y[b, i, j, ch] = best
                    arg[b, i, j, ch] = k_best


@kernel
def _maxpool_feedback(fb, arg, pool, out):
    n, ho, wo, c = fb.shape
    for b in prange(n):
        out[b] = 0
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    k = arg[b, i, j, ch]
                    out[b, i * pool + k // pool, j * pool + k % pool, ch] = fb[b, i, j, ch]


def maxpool_forward(x, pool):
    """Non-overlapping max-pool → (y (N, H//p, W//p, C), arg int8 dy·p + dx of the first maximum)."""
    n, h, w, c = x.shape
    y = np.empty((n, h // pool, w // pool, c), x.dtype)
    arg = np.empty(y.shape, np.int8)
    _maxpool_forward(x.size, np.ascontiguousarray(x), pool, y, arg)
    return y, arg


def maxpool_feedback(fb, arg, x_shape, pool):
    """Route feedback (N, Ho, Wo, C) only to each window's winning input → (N, H, W, C)."""
    out = np.empty(x_shape, fb.dtype)
    _maxpool_feedback(out.size, np.ascontiguousarray(fb), arg, pool, out)
    return out
