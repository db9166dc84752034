"""The locally-connected layer's GEMMs: one small GEMM per output position, all positions
of a layer in one call, positions spread over the cores.

BLAS is built for large matrices; a locally-connected layer has Ho·Wo small ones
((B × k·k·C) · (k·k·C × F), e.g. 144 of 32 × 288 × 32), where a call per matrix costs
more than the arithmetic. Here each position's forward product, and in the feedback its
tags and its input feedback (reading fb[:, p] once for both), run in one pass over that
position's data, which stays in the core's cache.

Layouts: cols (P, B, K) (im2col, positions first), kernel (P, K, F), fb and y (B, P, F).
These sums are reassociated and use fused multiply-adds (fastmath 'contract', 'reassoc'),
as BLAS does: they agree with the NumPy reference to float rounding, not bit for bit.
"""
import numpy as np

from .jit import kernel, prange

_gemm = kernel(fastmath={"contract", "reassoc"})


@_gemm
def _forward(cols, w, y):
    p_n, b_n, k_n = cols.shape
    f_n = w.shape[2]
    for p in prange(p_n):
        acc = np.zeros(f_n, dtype=y.dtype)
        for b in range(b_n):
            acc[:] = 0
            for q in range(k_n):
                a = cols[p, b, q]
                for f in range(f_n):
                    acc[f] += a * w[p, q, f]
            for f in range(f_n):
                y[b, p, f] = acc[f]


@_gemm
def _feedback(fb, cols, w_fb, need_input_fb, tags, dcols):
    p_n, b_n, k_n = cols.shape
    f_n = fb.shape[2]
    for p in prange(p_n):
        g = fb[:, p, :].copy()                       # (B, F): this position's feedback, contiguous
        t = np.zeros((k_n, f_n), dtype=tags.dtype)
        for b in range(b_n):
            for q in range(k_n):
                a = cols[p, b, q]
                for f in range(f_n):
                    t[q, f] += a * g[b, f]
        tags[p] = t
        if need_input_fb:
            for b in range(b_n):
                for q in range(k_n):
                    s = 0.0
                    for f in range(f_n):
                        s += g[b, f] * w_fb[p, q, f]
                    dcols[p, b, q] = s


def lc_forward(cols, kernel):
    """y[b, p] = cols[p, b] · W[p] for every position p → y (B, P, F)."""
    p, b, _ = cols.shape
    y = np.empty((b, p, kernel.shape[2]), cols.dtype)
    _forward(cols.size * kernel.shape[2], np.ascontiguousarray(cols), np.ascontiguousarray(kernel), y)
    return y


def lc_feedback(fb, cols, fb_kernel, need_input_fb=True):
    """Tags and input feedback of every position in one pass.

    fb (B, P, F), cols (P, B, K), fb_kernel (P, K, F) (the feedback weights; W when symmetric).
    Returns (tags (P, K, F) with tags[p] = cols[p]ᵀ · fb[:, p],
             dcols (P, B, K) with dcols[p] = fb[:, p] · fb_kernel[p]ᵀ, or None).
    """
    p, b, k = cols.shape
    tags = np.empty((p, k, fb.shape[2]), cols.dtype)
    dcols = np.empty((p, b, k), cols.dtype) if need_input_fb else np.empty((1, 1, 1), cols.dtype)
    _feedback(cols.size * fb.shape[2], np.ascontiguousarray(fb), np.ascontiguousarray(cols), np.ascontiguousarray(fb_kernel),
              need_input_fb, tags, dcols)
    return tags, (dcols if need_input_fb else None)
