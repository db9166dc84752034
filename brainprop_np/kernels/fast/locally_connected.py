"""The locally-connected layer's GEMMs: one small GEMM per output position, through BLAS.

Layouts: cols (P, B, K) (im2col, positions first), kernel (P, K, F), fb and y (B, P, F).
NumPy's batched matmul calls BLAS once per position; what this set adds to the reference
is the layout work around it: the forward product is written straight into the (B, P, F)
order the next layer reads (no transposing copy), and the feedback makes fb[:, p]
contiguous once for both the tags and the input feedback.

A fused numba kernel (forward, tags and input feedback of a position in one pass over
its data) was written and measured first: on these machines (OpenBLAS 0.3.31, SkylakeX
kernels) it ran 4–6× slower than BLAS per position (LC 144 × (32 × 288 × 32): forward
4.8 ms against 0.75 ms, feedback 14.1 ms against 4.6 ms), because numba's loops neither
keep the accumulators in registers nor vectorise the K-sums without reassociation. BLAS
it is. These sums agree with the NumPy reference to BLAS's rounding.

The positions are split into one contiguous share per thread (kernels/threads.py's
count), each share's GEMMs run by BLAS in a thread of its own (NumPy releases the GIL):
one position's GEMM is too small for BLAS to spread over the cores (32 × 288 × 32 takes
the same time on 1 and 2 BLAS threads), so NumPy's loop over positions ran on one core.
Every position's GEMM is the same call as before: the same bits.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import threads

_pool = {"n": 1, "executor": None}


def _shares(p):
    """[(start, stop)] of p positions, one share per configured thread."""
    n = max(1, min(threads.current() or 1, p))
    return [(p * i // n, p * (i + 1) // n) for i in range(n)]


def _run(task, p):
    """task(start, stop) for every share of p positions, the shares on threads of their own."""
    shares = _shares(p)
    if len(shares) == 1:
        task(*shares[0])
        return
    if _pool["n"] != len(shares):
        if _pool["executor"] is not None:
            _pool["executor"].shutdown()
        _pool["n"], _pool["executor"] = len(shares), ThreadPoolExecutor(len(shares), "brainprop-lc")
    for f in [_pool["executor"].submit(task, *s) for s in shares]:
        f.result()


def lc_forward(cols, kernel):
    """y[b, p] = cols[p, b] · W[p] for every position p → y (B, P, F), C-contiguous."""
    p, b, _ = cols.shape
    y = np.empty((b, p, kernel.shape[2]), cols.dtype)
    yp = y.transpose(1, 0, 2)

    def task(i, j):
        np.matmul(cols[i:j], kernel[i:j], out=yp[i:j])
    _run(task, p)
    return y


def lc_feedback(fb, cols, fb_kernel, need_input_fb=True):
    """Tags and input feedback of every position.

    fb (B, P, F), cols (P, B, K), fb_kernel (P, K, F) (the feedback weights; W when symmetric;
    None when need_input_fb is False).
    Returns (tags (P, K, F) with tags[p] = cols[p]ᵀ · fb[:, p],
             dcols (P, B, K) with dcols[p] = fb[:, p] · fb_kernel[p]ᵀ, or None).
    """
    fbp = np.ascontiguousarray(fb.transpose(1, 0, 2))                 # (P, B, F)
    p, b, k = cols.shape
    tags = np.empty((p, k, fbp.shape[2]), cols.dtype)
    dcols = np.empty((p, b, k), cols.dtype) if need_input_fb else None

    def task(i, j):
        np.matmul(cols[i:j].transpose(0, 2, 1), fbp[i:j], out=tags[i:j])
        if need_input_fb:
            np.matmul(fbp[i:j], fb_kernel[i:j].transpose(0, 2, 1), out=dcols[i:j])
    _run(task, p)
    return tags, dcols
