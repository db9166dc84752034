"""A dense kernel's SGD step straight from its tags' two factors: one BLAS GEMM into W.

A Dense layer's tags are grads = preᵀ · fb (pre (B, n_in), fb (B, n_out)). Made as an
array and then applied by sgd_update, they cost a GEMM that writes the (n_in, n_out) tags
and a pass that reads them and W and writes W: on MNIST loccon's dense layer (4608 × 500,
batch 32) 9.2 MB written and read again, every step. Here the update is the GEMM itself,
with BLAS's α and β (scipy.linalg.blas ?gemm; NumPy's matmul has neither):

    W ← decay·W − lr·preᵀ·fb          (C ← α·A·B + β·C with α = −lr, β = decay)

so W is read and written once and the tags are never stored (blocks.FoldedTags keeps them
as their factors until the update; SGD.step calls this). W is C-contiguous (n_in, n_out),
which is Wᵀ in BLAS's column-major order: the product is computed as Wᵀ ← β·Wᵀ + α·fbᵀ·pre,
every operand a view, no copy. It rounds as one GEMM with β, not as the reference's
product rounded to W's precision and then subtracted: the same values within float
rounding (tests/test_fast_kernels.py).
"""
import numpy as np
from scipy.linalg import blas

from ..cpu import _add_sum_of_squares

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


def sgd_update_outer(w, pre, fb, lr, decay=1.0, sumsq=None):
    """In place: w ← w·decay − lr·preᵀ·fb; w (n_in, n_out), pre (B, n_in), fb (B, n_out).
    sumsq: None, or a 0-d array to which Σ w² of the old w is added first (as sgd_update).
    Returns w."""
    gemm = _GEMM.get(w.dtype)
    if gemm is None or not (w.flags.c_contiguous and w.flags.writeable):
        from .elementwise import sgd_update
        return sgd_update(w, pre.T @ fb, lr, decay, sumsq)
    _add_sum_of_squares(w, sumsq)
    t = w.dtype.type
    out = gemm(t(-lr), fb.T.astype(w.dtype, copy=False), pre.T.astype(w.dtype, copy=False), beta=t(decay),
               c=w.T, trans_b=1, overwrite_c=1)
    if out.ctypes.data != w.ctypes.data:         # BLAS worked on a copy (it never should here)
        w[...] = out.T
    return w
