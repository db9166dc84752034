"""CuPy twins of `kernels/cpu.py`: the same names, signatures and results, on the GPU.

Every function takes and returns CuPy arrays with the shapes and dtypes of its NumPy
reference (e.g. max-pool's `arg` int8, `select_actions` int64). The work that cuBLAS
does not do runs in the hand-written CUDA kernels of this folder (`*.cu`, loaded once
per process by `cuda_module`); each launch below says what its threads compute.

Conventions of the launches:
  * inputs are made C-contiguous first (a no-op when they already are);
  * kernels use 32-bit indices: every array must hold fewer than 2^31 elements;
  * scalars are passed as numpy scalars of the kernel's C type (RawKernel does not
    check): `numpy.int32` for `int`, the array's dtype for `float`/`double`;
  * float32 and float64 arrays are supported (kernels `<name>_f32` / `<name>_f64`);
  * nothing here synchronises with the host: a training step stays asynchronous;
  * CuPy compiles every kernel with -ftz=true (flush-to-zero, appended after our options),
    so float32 subnormals (|x| < 1.2e-38) count as 0 on the GPU: ReLU, max-pool ties and
    the "same bits" of the updates below hold for normal numbers only.

The training step takes the fused kernels: `brainprop_step` runs the whole BrainProp
output step — ε-greedy Boltzmann selection with uniforms it draws itself, reward, delta,
the gated top feedback, the trial's loss and reward count and the epoch's metrics — in one
launch;
`sgd_update` updates one trained array in one launch, in place (with the NumPy
reference's rounding: same bits), and with `sumsq` also sums ΣW² for the L2 term of the
loss; `batchnorm_train_forward_update` is BatchNorm's training forward in two launches,
the running statistics updated inside the statistics kernel; `dropout_forward` draws the
mask and applies it in one; `batched_matmul` is one cuBLAS strided-batched GEMM on
transposed/strided views (no copies; should cuBLAS refuse it, one warning and
cupy.matmul from then on: `cublas_fallback()`). tests/launch_counter.py counts a step's launches.
"""
import os
import sys

import numpy as np

from . import cuda_module

try:  # importable without CuPy, so that tests can collect (and skip) on a CPU machine
    import cupy as xp
except Exception:  # ImportError, or a broken CUDA install
    xp = None

NAME = "cuda"
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_BLOCK = 256              # threads per block of the 1-D (grid-stride) kernels
_MAX_BLOCKS = 65535 * 32  # cap of a 1-D grid-stride launch (the loop covers the rest)
_MAX_GRID_Y = 65535       # CUDA's limit on gridDim.y (the kernels loop over the rest)
_ROWS = 8                 # cols rows (im2col) / input pixels (col2im) per thread
_INT32_LIMIT = 2 ** 31

# The shared-memory reductions are written for blocks of exactly this many threads
# (`#define BP_REDUCE_THREADS` in their .cu, which must agree; the kernels trap otherwise).
_REDUCE_THREADS = 256
_REDUCTIONS = {   # kernel → its source
    "bn_stats": "relu_batchnorm.cu", "bn_feedback_sums": "relu_batchnorm.cu",
    "brainprop_step": "brainprop_output.cu", "sgd_update_sumsq": "sgd.cu",
}

# Rounding (NVRTC contracts a·b + c into fused multiply-adds by default). These kernels
# give the NumPy reference's bits for the same inputs: they copy, compare, or round each
# product and sum on its own (__fmul_rn, __fadd_rn, ...); tests/test_cuda_compile.py
# checks that their PTX holds no fma instruction, and the kernel tests compare them bit
# for bit. The others agree with the reference to float tolerances, stated in their .cu:
# reductions in another order (BatchNorm statistics and feedback sums, brainprop_step's
# loss), and exp/division (softmax, select_actions, ebp_output).
BIT_EXACT_KERNELS = (
    "im2col", "col2im", "maxpool_forward", "maxpool_feedback", "relu_forward", "relu_feedback",
    "dropout_mask", "dropout_forward", "bn_forward", "bn_feedback_apply", "sgd_update", "bn_update_moving",
    "philox_uniforms",
)


def _function(name):
    """The compiled kernel `name` (indirection point: tests may replace it)."""
    return cuda_module.get_function(name)


def _launch(kernel, dtype, grid, block, args):
    """Launch `<kernel>_<f32|f64>` for float `dtype` on the current stream."""
    dt = np.dtype(dtype)
    if dt not in _SUFFIX:
        raise TypeError(f"the CUDA kernels take float32 or float64 arrays, got {dt}")
    grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
    block = tuple(int(b) for b in block) + (1,) * (3 - len(block))
    if kernel in _REDUCTIONS:
        _check_reduce_block(kernel, block)
    _function(f"{kernel}_{_SUFFIX[dt]}")(grid, block, args)


def _check_reduce_block(kernel, block):
    """A reduction kernel runs with exactly BP_REDUCE_THREADS threads per block (host-side guard)."""
    want = cuda_module.define_value(_REDUCTIONS[kernel], "BP_REDUCE_THREADS")
    n = block[0] * block[1] * block[2]
    if want != _REDUCE_THREADS or n != want:
        raise ValueError(f"{kernel}: its reduction needs blocks of {want} threads ({_REDUCTIONS[kernel]}: "
                         f"BP_REDUCE_THREADS; kernels/gpu.py: {_REDUCE_THREADS}), got block {block}")


def _c(a, dtype=None):
    """C-contiguous device array (of `dtype` when given); no copy when it already is.

    Host (NumPy) arrays are moved to the device first: cupy.ascontiguousarray accepts
    only device arrays.
    """
    a = xp.ascontiguousarray(xp.asarray(a))
    if dtype is not None and a.dtype != np.dtype(dtype):
        a = a.astype(dtype)
    return a


def _check_size(*arrays):
    for a in arrays:
        if a.size >= _INT32_LIMIT:
            raise ValueError(f"an array of shape {tuple(a.shape)} has 2^31 elements or more, beyond the "
                             "32-bit indexing of the CUDA kernels; use a smaller batch")


def _i32(v):
    return np.int32(v)


def _cdiv(a, b):
    return -(-int(a) // int(b))


def _grid_1d(total):
    return (min(_cdiv(total, _BLOCK), _MAX_BLOCKS),)


def _lane_width(n):
    """Threads along the fast axis of a 2-D block: the next power of two ≥ n, 1..32."""
    w = 1
    while w < min(int(n), 32):
        w *= 2
    return w


# ---- work buffers ---------------------------------------------------------------------

def im2col(x, kh, kw, stride, pads, out_hw, positions_first=False):
    """Unfold receptive fields into rows; see cpu.im2col for the layouts.

    Kernel `im2col`: block (w, 256/w) with w = min(32, K rounded up to a power of two);
    a thread copies one column q of cols for _ROWS consecutive rows (the padding is
    read as zeros, never materialised).
    """
    x = _c(x)
    n, h, w, c = x.shape
    ho, wo = out_hw
    top, _bottom, left, _right = pads
    k = kh * kw * c
    shape = (ho * wo, n, k) if positions_first else (n * ho * wo, k)
    cols = xp.empty(shape, x.dtype)
    _check_size(x, cols)
    if cols.size == 0:
        return cols
    bx = _lane_width(k)
    by = _BLOCK // bx
    runs = _cdiv(n * ho * wo, _ROWS)
    grid = (_cdiv(k, bx), min(_cdiv(runs, by), _MAX_GRID_Y))
    _launch("im2col", x.dtype, grid, (bx, by),
            (x, cols, _i32(n), _i32(h), _i32(w), _i32(c), _i32(kh), _i32(kw), _i32(stride),
             _i32(top), _i32(left), _i32(ho), _i32(wo), _i32(bool(positions_first)), _i32(_ROWS)))
    return cols


def col2im(dcols, x_shape, kh, kw, stride, pads, out_hw, positions_first=False):
    """Fold row feedback back onto the input (the adjoint of im2col), as a gather.

    Kernel `col2im`: block (w, 256/w) with w = min(32, C rounded up to a power of two);
    a thread sums, for one channel and _ROWS consecutive input pixels, every cols entry
    the pixel was copied to (no atomics: deterministic). Returns (N, H, W, C).
    """
    n, h, w, c = (int(s) for s in x_shape)
    ho, wo = out_hw
    top, _bottom, left, _right = pads
    k = kh * kw * c
    dcols = _c(dcols)
    if dcols.size != n * ho * wo * k:
        expect = (ho * wo, n, k) if positions_first else (n * ho * wo, k)
        raise ValueError(f"col2im: dcols of shape {tuple(dcols.shape)} does not fit {expect}")
    out = xp.empty((n, h, w, c), dcols.dtype)
    _check_size(dcols, out)
    if out.size == 0:
        return out
    bx = _lane_width(c)
    by = _BLOCK // bx
    runs = _cdiv(n * h * w, _ROWS)
    grid = (_cdiv(c, bx), min(_cdiv(runs, by), _MAX_GRID_Y))
    _launch("col2im", dcols.dtype, grid, (bx, by),
            (dcols, out, _i32(n), _i32(h), _i32(w), _i32(c), _i32(kh), _i32(kw), _i32(stride),
             _i32(top), _i32(left), _i32(ho), _i32(wo), _i32(bool(positions_first)), _i32(_ROWS)))
    return out


# ---- batched GEMM (the locally-connected layer) --------------------------------------

_CUBLAS_OP_N, _CUBLAS_OP_T = 0, 1
_CUDA_R = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}          # CUDA_R_32F, CUDA_R_64F
_COMPUTE_32F, _COMPUTE_32F_FAST_TF32, _COMPUTE_64F = 68, 77, 70       # cublasComputeType_t
_GEMM_DEFAULT = -1
_cublas_state = {}


def tf32_enabled():
    """True when float32 GEMMs may use TF32 tensor cores: CUPY_TF32=1, the switch CuPy reads for
    its own GEMMs (`cupy.matmul` of 2-D operands: dense and conv layers), read here once too."""
    if "tf32" not in _cublas_state:
        try:
            _cublas_state["tf32"] = int(os.environ.get("CUPY_TF32", "0") or 0) > 0
        except ValueError:
            _cublas_state["tf32"] = False
    return _cublas_state["tf32"]


def _blas_layout(m):
    """(transposed, ld, batch stride) in elements of a 3-D stack of matrices whose rows or columns
    are contiguous, as cuBLAS reads it; None when neither is (the stack must be copied)."""
    it = m.itemsize
    s0, s1, s2 = m.strides
    _, r, c = m.shape
    if any(v % it for v in (s0, s1, s2)) or s0 < 0:
        return None
    if s2 == it or c == 1:                   # row-major: rows contiguous, ld = row stride
        ld = s1 // it if r > 1 else c
        if ld >= c and ld > 0:
            return False, ld, s0 // it
    if s1 == it or r == 1:                   # column-major (a transposed view), ld = column stride
        ld = s2 // it if c > 1 else r
        if ld >= r and ld > 0:
            return True, ld, s0 // it
    return None


def _gemm_strided_batched(dtype, transa, transb, m, n, k, a, lda, stride_a, b, ldb, stride_b,
                          c, ldc, stride_c, batch):
    """cublasGemmStridedBatchedEx, column-major: C_i = op(A_i)·op(B_i) for i < batch, with
    A_i = a + i·stride_a (elements) etc. (indirection point: the emulator's tests replace it
    with a NumPy model of the same call, tests/cuda_emulator.py)."""
    try:
        from cupy_backends.cuda.libs import cublas
    except ImportError:   # older CuPy
        from cupy.cuda import cublas
    from cupy.cuda import device
    dt = np.dtype(dtype)
    if dt == np.float32:
        compute = _COMPUTE_32F_FAST_TF32 if tf32_enabled() else _COMPUTE_32F
    else:
        compute = _COMPUTE_64F
    one, zero = np.ones((), dt), np.zeros((), dt)
    cublas.gemmStridedBatchedEx(
        device.get_cublas_handle(), transa, transb, m, n, k, one.ctypes.data,
        a.data.ptr, _CUDA_R[dt], lda, stride_a, b.data.ptr, _CUDA_R[dt], ldb, stride_b,
        zero.ctypes.data, c.data.ptr, _CUDA_R[dt], ldc, stride_c, batch, compute, _GEMM_DEFAULT)


def cublas_fallback():
    """None while batched_matmul calls cuBLAS itself; else why it fell back to cupy.matmul
    (recorded in summary.json as `cublas_fallback`; the GPU tests fail on it)."""
    return _cublas_state.get("broken")


def _fall_back(e):
    """From now on cupy.matmul (copies the views, no TF32): say so once per process, on stderr."""
    why = " ".join(f"{type(e).__name__}: {e}".split())[:300]
    _cublas_state["broken"] = why
    print(f"warning: cuBLAS's strided-batched GEMM failed ({why}); the locally-connected layer uses "
          "cupy.matmul from now on (copies, no TF32)", file=sys.stderr, flush=True)


def batched_matmul(a, b, out=None):
    """a @ b for stacks of matrices: (P, M, K) @ (P, K, N) → (P, M, N), into `out` when given.

    One cuBLAS strided-batched GEMM (cublasGemmStridedBatchedEx) that reads transposed and
    strided views as they are — through its transpose flags and leading dimensions — where
    cupy.matmul copies every operand that is not C-contiguous first (and ignores TF32 in its
    batched path). a, b and out may be any views whose rows or columns are contiguous (e.g.
    `w.transpose(0, 2, 1)`, or a (P, B, F) view of a (B, P, F) array); others are copied.
    float32 takes TF32 tensor cores when tf32_enabled() (CUPY_TF32=1). See cpu.batched_matmul.
    """
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"batched_matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit (P, M, K) @ (P, K, N)")
    dt = np.result_type(a.dtype, b.dtype)
    p, m, k = (int(v) for v in a.shape)
    n = int(b.shape[2])
    if out is not None and (tuple(out.shape) != (p, m, n) or out.dtype != dt):
        raise ValueError(f"batched_matmul: out has shape {tuple(out.shape)} {out.dtype}, expected {(p, m, n)} {dt}")
    if dt not in _CUDA_R or _cublas_state.get("broken"):
        return xp.matmul(a, b, out=out)
    a = a if a.dtype == dt else a.astype(dt)
    b = b if b.dtype == dt else b.astype(dt)
    la, lb = _blas_layout(a), _blas_layout(b)
    if la is None:
        a, la = xp.ascontiguousarray(a), (False, k, m * k)
    if lb is None:
        b, lb = xp.ascontiguousarray(b), (False, n, k * n)
    c = out
    lc = _blas_layout(c) if c is not None else None
    if lc is None or lc[0]:                    # the result is written row-major (C^T column-major)
        c = xp.empty((p, m, n), dtype=dt)
        lc = (False, n, m * n)
    if c.size and k:
        # row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: cuBLAS gets (B, A), m ↔ n. A row-major
        # operand is the transpose of its column-major reading (op N gives its transpose), a
        # column-major one needs op T.
        trans_b, ld_b, s_b = lb
        trans_a, ld_a, s_a = la
        try:
            _gemm_strided_batched(dt, _CUBLAS_OP_T if trans_b else _CUBLAS_OP_N,
                                  _CUBLAS_OP_T if trans_a else _CUBLAS_OP_N, n, m, k,
                                  b, ld_b, s_b, a, ld_a, s_a, c, lc[1], lc[2], p)
        except Exception as e:   # a CuPy without this cuBLAS wrapper, or cuBLAS refusing the call
            if not isinstance(e, (ImportError, AttributeError, TypeError)) and type(e).__name__ != "CUBLASError":
                raise
            _fall_back(e)
            return xp.matmul(a, b, out=out)
    elif c.size:
        c.fill(0)
    if out is not None and c is not out:
        out[...] = c
        return out
    return c


# ---- max-pooling ---------------------------------------------------------------------

def maxpool_forward(x, pool):
    """(y, arg int8) of non-overlapping max-pooling; kernel `maxpool_forward`, a thread per output."""
    x = _c(x)
    n, h, w, c = x.shape
    ho, wo = h // pool, w // pool
    if pool * pool > 127:
        raise ValueError(f"maxpool: pool={pool} does not fit the int8 winner index")
    y = xp.empty((n, ho, wo, c), dtype=x.dtype)
    arg = xp.empty((n, ho, wo, c), dtype=np.int8)
    _check_size(x)
    if y.size:
        _launch("maxpool_forward", x.dtype, _grid_1d(y.size), (_BLOCK,),
                (x, y, arg, _i32(h), _i32(w), _i32(c), _i32(pool), _i32(ho), _i32(wo), _i32(y.size)))
    return y, arg


def maxpool_feedback(fb, arg, x_shape, pool):
    """Feedback to each window's winner only; kernel `maxpool_feedback`, a thread per input unit."""
    fb = _c(fb)
    arg = _c(arg, np.int8)
    n, h, w, c = (int(s) for s in x_shape)
    ho, wo = fb.shape[1], fb.shape[2]
    out = xp.empty((n, h, w, c), dtype=fb.dtype)
    _check_size(out)
    if out.size:
        _launch("maxpool_feedback", fb.dtype, _grid_1d(out.size), (_BLOCK,),
                (fb, arg, out, _i32(h), _i32(w), _i32(c), _i32(pool), _i32(ho), _i32(wo), _i32(out.size)))
    return out


# ---- ReLU ----------------------------------------------------------------------------

def relu_forward(x):
    """y = max(x, 0); kernel `relu_forward`, a thread per element."""
    x = _c(x)
    y = xp.empty_like(x)
    _check_size(x)
    if x.size:
        _launch("relu_forward", x.dtype, _grid_1d(x.size), (_BLOCK,), (x, y, _i32(x.size)))
    return y


def relu_feedback(fb, y):
    """fb where y > 0, else 0; kernel `relu_feedback`, a thread per element."""
    fb = _c(fb)
    y = _c(y, fb.dtype)
    out = xp.empty_like(fb)
    _check_size(fb)
    if fb.size:
        _launch("relu_feedback", fb.dtype, _grid_1d(fb.size), (_BLOCK,), (fb, y, out, _i32(fb.size)))
    return out


# ---- BatchNorm -----------------------------------------------------------------------

_BN_BLOCK = (32, 8)       # lanes: 32 channels × 8 rows


def _bn_chunks(m):
    """(rows per chunk, number of chunks G) of the partial reductions: G ≤ 1024, ≥ 256 rows each."""
    chunk = max(256, _cdiv(m, 1024))
    return chunk, _cdiv(m, chunk)


_bn_counter_work = {}


def _bn_counters(columns):
    """The per-column completion counters of bn_stats / bn_feedback_sums: zeros, kept between
    launches (each launch leaves them at zero again; launches on one stream never overlap)."""
    entry = _bn_counter_work.get("counters")
    if entry is None or entry[0] is not xp or entry[1].size < columns:
        entry = _bn_counter_work["counters"] = (xp, xp.zeros(max(columns, 1024), dtype=np.uint32))
    return entry[1]


def _bn_rows_grid(m, c):
    return (_cdiv(c, _BN_BLOCK[0]), min(_cdiv(m, _BN_BLOCK[1]), _MAX_GRID_Y))


def batchnorm_stats(x):
    """Per-channel mean and biased variance of x (..., C) over all other axes.

    Kernel `bn_stats` (Welford per thread, Chan merges per block of chunk; the last block
    of each 32 channels merges the chunks): stable, deterministic, one launch.
    """
    x = _c(x)
    c = x.shape[-1]
    m = x.size // c if c else 0
    mean = xp.empty(c, dtype=x.dtype)
    var = xp.empty(c, dtype=x.dtype)
    _check_size(x)
    if m == 0 or c == 0:
        mean.fill(np.nan)
        var.fill(np.nan)
        return mean, var
    _bn_stats(x, m, c, mean, var, xp.empty(c, dtype=x.dtype), 0.0)
    return mean, var


def _bn_stats(x, m, c, mean, var, inv_std, epsilon, moving=None, momentum=0.0):
    """Launch `bn_stats`: mean, var and inv_std = 1/sqrt(var + epsilon); with
    moving = (moving_mean, moving_variance) it also updates them in place."""
    dt = x.dtype
    chunk, g = _bn_chunks(m)
    columns = _cdiv(c, _BN_BLOCK[0])
    part = xp.empty((3, g, c), dtype=dt)
    mm, mv = moving if moving is not None else (mean, var)          # not written without `moving`
    _launch("bn_stats", dt, (columns, g), _BN_BLOCK,
            (x, part, _i32(m), _i32(c), _i32(chunk), _bn_counters(columns), mean, var, inv_std,
             dt.type(epsilon), mm, mv, dt.type(momentum), dt.type(1.0 - momentum), dt.type(m / max(m - 1, 1)),
             _i32(moving is not None)))


def batchnorm_train_forward(x, gamma, beta, epsilon):
    """Batch-statistics BatchNorm: (xhat, y, mean, var, inv_std); see cpu.batchnorm_train_forward.

    Two launches: `bn_stats` (mean, biased var, inv_std = 1/sqrt(var + epsilon)), then
    `bn_forward` (xhat = (x − mean)·inv_std,
    y = gamma·xhat + beta).
    """
    x = _c(x)
    dt = x.dtype
    c = x.shape[-1]
    m = x.size // c if c else 0
    gamma, beta = _c(gamma, dt), _c(beta, dt)
    mean, var, inv_std = (xp.empty(c, dtype=dt) for _ in range(3))
    xhat = xp.empty_like(x)
    y = xp.empty_like(x)
    _check_size(x)
    if m == 0 or c == 0:
        for a in (mean, var, inv_std):
            a.fill(np.nan)
        return xhat, y, mean, var, inv_std
    _bn_stats(x, m, c, mean, var, inv_std, epsilon)
    _launch("bn_forward", dt, _bn_rows_grid(m, c), _BN_BLOCK,
            (x, mean, inv_std, gamma, beta, xhat, y, _i32(m), _i32(c)))
    return xhat, y, mean, var, inv_std


def batchnorm_train_forward_update(x, gamma, beta, epsilon, moving_mean, moving_variance, momentum):
    """batchnorm_train_forward and batchnorm_update_moving (m = the rows of x) in the same three
    launches as the first alone: `bn_stats` also updates the running statistics, in
    place, with bn_update_moving's roundings. See cpu.batchnorm_train_forward_update."""
    x = _c(x)
    dt = x.dtype
    c = x.shape[-1]
    m = x.size // c if c else 0
    for a in (moving_mean, moving_variance):
        if not a.flags.c_contiguous or a.dtype != dt or a.size != c:
            raise ValueError("batchnorm_train_forward_update: the running statistics must be C-contiguous "
                             f"arrays of {c} {dt}")
    if m == 0 or c == 0:
        out = batchnorm_train_forward(x, gamma, beta, epsilon)
        batchnorm_update_moving(moving_mean, moving_variance, out[2], out[3], momentum, m)
        return out
    gamma, beta = _c(gamma, dt), _c(beta, dt)
    mean, var, inv_std = (xp.empty(c, dtype=dt) for _ in range(3))
    xhat = xp.empty_like(x)
    y = xp.empty_like(x)
    _check_size(x)
    _bn_stats(x, m, c, mean, var, inv_std, epsilon, (moving_mean, moving_variance), momentum)
    _launch("bn_forward", dt, _bn_rows_grid(m, c), _BN_BLOCK,
            (x, mean, inv_std, gamma, beta, xhat, y, _i32(m), _i32(c)))
    return xhat, y, mean, var, inv_std


def batchnorm_forward(x, mean, inv_std, gamma, beta):
    """(xhat, y): xhat = (x − mean)·inv_std, y = gamma·xhat + beta; kernel `bn_forward`."""
    x = _c(x)
    dt = x.dtype
    c = x.shape[-1]
    m = x.size // c if c else 0
    mean, inv_std, gamma, beta = (_c(a, dt) for a in (mean, inv_std, gamma, beta))
    xhat = xp.empty_like(x)
    y = xp.empty_like(x)
    _check_size(x)
    if x.size:
        _launch("bn_forward", dt, _bn_rows_grid(m, c), _BN_BLOCK,
                (x, mean, inv_std, gamma, beta, xhat, y, _i32(m), _i32(c)))
    return xhat, y


def _bn_feedback(fb, xhat, gamma, inv_std, train):
    fb = _c(fb)
    dt = fb.dtype
    xhat = _c(xhat, dt)
    gamma, inv_std = _c(gamma, dt), _c(inv_std, dt)
    c = fb.shape[-1]
    m = fb.size // c if c else 0
    dgamma = xp.empty(c, dtype=dt)
    dbeta = xp.empty(c, dtype=dt)
    fb_in = xp.empty_like(fb)
    _check_size(fb)
    if m == 0 or c == 0:
        dgamma.fill(0)
        dbeta.fill(0)
        return fb_in, dgamma, dbeta
    chunk, g = _bn_chunks(m)
    columns = _cdiv(c, _BN_BLOCK[0])
    part = xp.empty((2, g, c), dtype=dt)
    _launch("bn_feedback_sums", dt, (columns, g), _BN_BLOCK,
            (fb, xhat, part, _i32(m), _i32(c), _i32(chunk), _bn_counters(columns), dgamma, dbeta))
    _launch("bn_feedback_apply", dt, _bn_rows_grid(m, c), _BN_BLOCK,
            (fb, xhat, gamma, inv_std, dgamma, dbeta, fb_in, _i32(m), _i32(c), _i32(bool(train))))
    return fb_in, dgamma, dbeta


def batchnorm_feedback_train(fb, xhat, gamma, inv_std):
    """(fb_in, dgamma, dbeta) through batch-statistics BatchNorm; see cpu.batchnorm_feedback_train.

    Kernels `bn_feedback_sums` (per-channel Σ fb, Σ fb·xhat, deterministic, one launch)
    and `bn_feedback_apply`
    (fb_in = gamma·inv_std·(fb − mean(fb) − xhat·mean(fb·xhat))).
    """
    return _bn_feedback(fb, xhat, gamma, inv_std, True)


def batchnorm_feedback_inference(fb, xhat, gamma, inv_std):
    """(fb_in, dgamma, dbeta) through running-statistics BatchNorm: fb_in = gamma·inv_std·fb."""
    return _bn_feedback(fb, xhat, gamma, inv_std, False)


# ---- dropout -------------------------------------------------------------------------

def dropout_mask(u, rate, dtype):
    """Inverted dropout mask [u ≥ rate] / (1 − rate) from uniforms u; kernel `dropout_mask`.

    rate and 1/(1 − rate) are rounded to the dtype first, as numpy compares and scales.
    """
    u = _c(u)
    dt = np.dtype(dtype)
    scale = 1.0 / (1.0 - rate)
    if u.dtype != dt or dt not in _SUFFIX:   # unusual mix of dtypes: plain CuPy, same rounding
        return ((u >= u.dtype.type(rate)) * scale).astype(dt, copy=False)
    out = xp.empty_like(u)
    _check_size(u)
    if u.size:
        _launch("dropout_mask", dt, _grid_1d(u.size), (_BLOCK,),
                (u, out, dt.type(rate), dt.type(scale), _i32(u.size)))
    return out


def dropout_forward(x, rate, key, step):
    """(y, mask) with mask = [u ≥ rate] / (1 − rate), y = x·mask, u element e's uniform of the
    counter-based generator at (key, step), in one launch (kernel `dropout_forward`, a thread
    per element, drawing its own u: no uniform array); see cpu.dropout_forward."""
    x = _c(x)
    dt = x.dtype
    if dt not in _SUFFIX:
        raise TypeError(f"the CUDA kernels take float32 or float64 arrays, got {dt}")
    y = xp.empty_like(x)
    mask = xp.empty_like(x)
    _check_size(x)
    if x.size:
        _launch("dropout_forward", dt, _grid_1d(x.size), (_BLOCK,),
                (x, y, mask, dt.type(rate), dt.type(1.0 / (1.0 - rate)), *_key_step(key, step), _i32(x.size)))
    return y, mask


def _key_step(key, step):
    """(k0, k1, step) as the kernels' unsigned int, unsigned int, unsigned long long."""
    return np.uint32(int(key[0])), np.uint32(int(key[1])), np.uint64(int(step))


def philox_uniforms(key, step, n, dtype):
    """(n,) uniforms of elements 0..n−1 at `step` (kernel `philox_uniforms`, a thread per element);
    see philox.uniforms. Training does not call it: dropout and the action choice draw inside
    their own kernels."""
    dt = np.dtype(dtype)
    if dt not in _SUFFIX:
        raise TypeError(f"uniforms of dtype {dt} are not drawn; use float32 or float64")
    out = xp.empty(int(n), dtype=dt)
    _check_size(out)
    if out.size:
        _launch("philox_uniforms", dt, _grid_1d(out.size), (_BLOCK,), (out, *_key_step(key, step), _i32(out.size)))
    return out


# ---- output step ---------------------------------------------------------------------

def _rows_grid(b):
    return (max(1, min(_cdiv(b, _BLOCK), _MAX_BLOCKS)),)


def softmax(q):
    """Row-wise softmax of (B, C), max-subtracted; kernel `softmax`, a thread per row."""
    q = _c(q)
    b, c = q.shape
    p = xp.empty_like(q)
    if q.size:
        _launch("softmax", q.dtype, _rows_grid(b), (_BLOCK,), (q, p, _i32(b), _i32(c)))
    return p


def select_actions(q, epsilon, u_explore, u_sample):
    """ε-greedy Boltzmann selection → int64 (B,); kernel `select_actions`, a thread per row.

    Same uniforms, same actions as cpu.select_actions (up to float rounding of the
    softmax in cases where u_sample falls within a rounding error of a CDF step).
    """
    q = _c(q)
    dt = q.dtype
    b, c = q.shape
    ue, us = _c(u_explore, dt), _c(u_sample, dt)
    actions = xp.empty(b, dtype=np.int64)
    if b:
        _launch("select_actions", dt, _rows_grid(b), (_BLOCK,),
                (q, ue, us, actions, dt.type(epsilon), _i32(b), _i32(c)))
    return actions


def brainprop_step(q, labels, epsilon, key, step, nominal, actions=None, metrics=None):
    """The whole BrainProp output step in one launch; see cpu.brainprop_step.

    Kernel `brainprop_step`, one block of 256 threads, a thread per row (grid-stride):
    the action (ε-greedy, image b's u_explore and u_sample drawn in the kernel from the
    counter-based generator at (key, step); argmax when key is None; the given `actions`
    when there are some), reward, delta, the row of fb (−delta/nominal at the action) and,
    in a fixed tree over the block, the loss ½·Σ delta² / nominal, the reward count Σ reward
    and, into `metrics` (a float64 device array of len(METRICS), or None), the epoch's sums.
    Returns (actions int64 (B,), reward, delta, fb, loss, n_correct), loss and n_correct 0-d
    device arrays: nothing synchronises with the host.
    """
    q = _c(q)
    dt = q.dtype
    b, c = q.shape
    labels = _c(labels, np.int64)
    if actions is not None:
        mode = 0                                   # ACTIONS_GIVEN
        actions = _c(actions, np.int64)
    else:
        mode = 2 if key is None else 1             # ACTIONS_GREEDY, ACTIONS_EPSILON_GREEDY
        actions = xp.empty(b, dtype=np.int64)
    if metrics is None:
        metrics = _metrics_scratch()               # written, not read
    elif metrics.dtype != np.float64 or metrics.size < _N_METRICS or not metrics.flags.c_contiguous:
        raise ValueError(f"brainprop_step: metrics must be a C-contiguous float64 array of {_N_METRICS}")
    reward = xp.empty(b, dtype=dt)
    delta = xp.empty(b, dtype=dt)
    fb = xp.empty_like(q)
    sums = xp.empty(2, dtype=dt)
    _launch("brainprop_step", dt, (1,), (_REDUCE_THREADS,),
            (q, labels, actions, reward, delta, fb, sums, metrics, dt.type(epsilon), dt.type(-(1.0 / nominal)),
             dt.type(nominal), _i32(mode), _i32(1), *_key_step((0, 0) if key is None else key, step), _i32(b), _i32(c)))
    return actions, reward, delta, fb, sums[0], sums[1]


_N_METRICS = 5     # BP_METRICS of brainprop_output.cu: rules.base.METRICS
_metrics_work = {}


def _metrics_scratch():
    """A float64 accumulator for a step whose metrics nobody reads, allocated once."""
    if _metrics_work.get("xp") is not xp:
        _metrics_work.update(xp=xp, a=xp.zeros(_N_METRICS, dtype=np.float64))
    return _metrics_work["a"]


def brainprop_output(q, labels, actions, scale):
    """(reward, delta, fb) for the chosen actions; see cpu.brainprop_output.

    Kernel `brainprop_step` with the actions given, a thread per row:
    reward = [action = label], delta = reward − q[action], fb = −scale·delta at the action.
    """
    q = _c(q)
    dt = q.dtype
    b, c = q.shape
    labels = _c(labels, np.int64)
    actions = _c(actions, np.int64)
    reward = xp.empty(b, dtype=dt)
    delta = xp.empty(b, dtype=dt)
    fb = xp.empty_like(q)
    if b:
        _launch("brainprop_step", dt, _rows_grid(b), (_BLOCK,),
                (q, labels, actions, reward, delta, fb, delta, _metrics_scratch(), dt.type(0), dt.type(-scale),
                 dt.type(1), _i32(0), _i32(0), *_key_step((0, 0), 0), _i32(b), _i32(c)))
    return reward, delta, fb


def ebp_output(q, labels, scale):
    """(p, fb) with p = softmax(q), fb = scale·(p − onehot(label)); kernel `ebp_output`."""
    q = _c(q)
    dt = q.dtype
    b, c = q.shape
    labels = _c(labels, np.int64)
    p = xp.empty_like(q)
    fb = xp.empty_like(q)
    if b:
        _launch("ebp_output", dt, _rows_grid(b), (_BLOCK,), (q, labels, p, fb, dt.type(scale), _i32(b), _i32(c)))
    return p, fb


# ---- updates after a trial -------------------------------------------------------------

_sumsq_work = {}   # dtype → (array module, per-block partial sums, completion counter)


def _sumsq_buffers(dt):
    """The scratch of sgd_update_sumsq, allocated once per dtype (the counter starts at 0 and the
    kernel's last block resets it; launches on one stream never overlap)."""
    entry = _sumsq_work.get(dt)
    if entry is None or entry[0] is not xp:
        blocks = cuda_module.define_value("sgd.cu", "BP_SUMSQ_BLOCKS")
        entry = _sumsq_work[dt] = (xp, xp.empty(blocks, dtype=dt), xp.zeros(1, dtype=np.uint32))
    return entry[1], entry[2]


def sgd_update(w, g, lr, decay=1.0, sumsq=None):
    """In place, one launch: w ← w·decay − lr·g; see cpu.sgd_update.

    Kernel `sgd_update`, a thread per element, each product and the difference rounded
    on its own as NumPy does (decay = 1 skips the product). With `sumsq` (a one-element
    device array of w's dtype) kernel `sgd_update_sumsq` also adds Σ w² of the old w to it
    in the same pass (the L2 term of the loss; a deterministic block reduction, float
    tolerance against NumPy's vdot). A w that is not C-contiguous (never so for a layer's
    parameters) takes the plain CuPy operations instead.
    """
    dt = w.dtype
    if not w.flags.c_contiguous or dt not in _SUFFIX or tuple(g.shape) != tuple(w.shape):
        if sumsq is not None:
            flat = w.ravel()
            sumsq += xp.vdot(flat, flat)
        if decay != 1.0:
            w *= decay
        w -= lr * g
        return w
    g = _c(g, dt)
    _check_size(w)
    if not w.size:
        return w
    if sumsq is None:
        _launch("sgd_update", dt, _grid_1d(w.size), (_BLOCK,), (w, g, dt.type(lr), dt.type(decay), _i32(w.size)))
        return w
    if sumsq.dtype != dt or sumsq.size != 1 or not sumsq.flags.c_contiguous:
        raise ValueError(f"sgd_update: sumsq must be a one-element array of {dt}, got {tuple(sumsq.shape)} {sumsq.dtype}")
    partial, counter = _sumsq_buffers(dt)
    grid = (min(_cdiv(w.size, _REDUCE_THREADS), partial.size),)
    _launch("sgd_update_sumsq", dt, grid, (_REDUCE_THREADS,),
            (w, g, dt.type(lr), dt.type(decay), _i32(w.size), partial, counter, sumsq))
    return w


def batchnorm_update_moving(moving_mean, moving_variance, mean, var, momentum, m):
    """In place, one launch: BatchNorm's running statistics after a batch; see cpu.batchnorm_update_moving.

    moving_mean ← momentum·moving_mean + (1 − momentum)·mean;
    moving_variance ← momentum·moving_variance + (1 − momentum)·var·m/(m − 1) (unbiased, as Keras).
    Kernel `bn_update_moving`, a thread per channel.
    """
    dt = moving_mean.dtype
    if not (moving_mean.flags.c_contiguous and moving_variance.flags.c_contiguous) or moving_variance.dtype != dt:
        raise ValueError("batchnorm_update_moving: the running statistics must be C-contiguous arrays of one dtype")
    mean, var = _c(mean, dt), _c(var, dt)
    c = moving_mean.size
    if c:
        _launch("bn_update_moving", dt, _rows_grid(c), (_BLOCK,),
                (moving_mean, moving_variance, mean, var, dt.type(momentum), dt.type(1.0 - momentum),
                 dt.type(m / max(m - 1, 1)), _i32(c)))
    return moving_mean, moving_variance


# ---- locally-connected GEMMs (cuBLAS, batched over positions) -------------------------

def lc_forward(cols, kernel):
    """y[b, p] = cols[p, b] · W[p]: cols (P, B, K), kernel (P, K, F) → y (B, P, F).
    One cuBLAS batched GEMM written straight into the (B, P, F) layout (no copy)."""
    y = xp.empty((cols.shape[1], cols.shape[0], kernel.shape[2]), dtype=cols.dtype)
    batched_matmul(cols, kernel, out=y.transpose(1, 0, 2))
    return y


def lc_feedback(fb, cols, fb_kernel, need_input_fb=True):
    """(tags (P, K, F) = cols[p]ᵀ · fb[:, p], dcols (P, B, K) = fb[:, p] · fb_kernel[p]ᵀ or None).
    cuBLAS reads the transposed and strided views through its flags: no copies."""
    fbp = fb.transpose(1, 0, 2)                                       # (P, B, F), a view
    tags = batched_matmul(cols.transpose(0, 2, 1), fbp)
    dcols = batched_matmul(fbp, fb_kernel.transpose(0, 2, 1)) if need_input_fb else None
    return tags, dcols
