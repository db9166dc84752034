"""The fast CPU kernel set (kernels/fast, numba) against the NumPy reference (kernels/cpu.py).

Same bits where the order of operations is the same (copies, comparisons, element-wise
arithmetic without fused multiply-adds); otherwise within a tolerance stated per test:
  * BatchNorm statistics and (dgamma, dbeta): float64 sums in another order, rounded to
    the array's dtype — at most 1 ulp apart in float32; in float64 the sums' own rounding
    shows, rtol 1e-12 (M·eps for the M ≤ 10^4 values summed here);
  * locally-connected GEMMs: BLAS in both, on other layouts —
    |Δ| ≤ 8·eps·Σ|a·b| (the textbook bound of a K-term dot product, with slack);
  * a whole training step: these roundings carried through every layer, rtol 1e-4 in
    float32 (1e-10 in float64) on the updated weights.
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="the fast CPU kernel set needs numba")

import brainprop_np as bp  # noqa: E402
from brainprop_np import philox  # noqa: E402
from brainprop_np.kernels import cpu, fast  # noqa: E402
from brainprop_np.kernels.fast import jit  # noqa: E402
from brainprop_np.layers.geometry import window_2d  # noqa: E402

DTYPES = [np.float32, np.float64]
GEOMETRIES = [(k, s, p) for k in (1, 3, 5) for s in (1, 2) for p in ("same", "valid")]


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ulp_close(a, b, dtype):
    """float32: within one unit in the last place of the larger magnitude; float64: rtol 1e-12."""
    a, b = np.asarray(a), np.asarray(b)
    if dtype == np.float64:
        return bool(np.allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max()))
    spacing = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(dtype))
    return bool(np.all(np.abs(a.astype(np.float64) - b) <= spacing))


@pytest.fixture(params=["serial", "parallel"])
def threads_mode(request, monkeypatch):
    """Run each kernel through its serial and its parallel version (PARALLEL_MIN 0)."""
    if request.param == "parallel":
        monkeypatch.setattr(jit, "PARALLEL_MIN", 0)
    else:
        monkeypatch.setattr(jit, "PARALLEL_MIN", 1 << 62)
    return request.param


@pytest.mark.parametrize("positions_first", [False, True])
@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_col2im_same_bits(k, stride, padding, positions_first, dtype, threads_mode):
    x = rand((3, 7, 6, 2), dtype)
    out_hw, pads = window_2d(7, 6, k, stride, padding)
    geo = (k, k, stride, pads, out_hw)
    cols = fast.im2col(x, *geo, positions_first=positions_first)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, cpu.im2col(x, *geo, positions_first=positions_first))
    d = rand(cols.shape, dtype, 1)
    got = fast.col2im(d, x.shape, *geo, positions_first=positions_first)
    np.testing.assert_array_equal(got, cpu.col2im(d, x.shape, *geo, positions_first=positions_first))


@pytest.mark.parametrize("pool,hw", [(2, (8, 6)), (2, (7, 5)), (3, (9, 7))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_same_bits_and_first_max_on_ties(pool, hw, dtype, threads_mode):
    x = rand((3,) + hw + (4,), dtype)
    x[0, :pool, :pool, 0] = 5.0                           # a tie: the first maximum wins
    y, arg = fast.maxpool_forward(x, pool)
    y_ref, arg_ref = cpu.maxpool_forward(x, pool)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert arg.dtype == np.int8 and arg[0, 0, 0, 0] == 0
    fb = rand(y.shape, dtype, 2)
    np.testing.assert_array_equal(fast.maxpool_feedback(fb, arg, x.shape, pool),
                                  cpu.maxpool_feedback(fb, arg, x.shape, pool))


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_same_bits(dtype, threads_mode):
    x = rand((5, 6, 7, 3), dtype)
    x[0, 0, 0, :] = [-0.0, 0.0, np.nan]
    np.testing.assert_array_equal(fast.relu_forward(x), cpu.relu_forward(x))
    assert not np.signbit(fast.relu_forward(x)[0, 0, 0, 0])          # max(−0, 0) = +0 as NumPy
    y = cpu.relu_forward(rand(x.shape, dtype, 3))
    fb = rand(x.shape, dtype, 4)
    got, ref = fast.relu_feedback(fb, y), cpu.relu_feedback(fb, y)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))  # fb·0 keeps its sign
    u = np.random.default_rng(5).random(x.shape, dtype=dtype)
    for rate in (0.0, 0.3, 0.8):
        np.testing.assert_array_equal(fast.dropout_mask(u, rate, dtype), cpu.dropout_mask(u, rate, dtype))
        key = philox.make_key(9, philox.DROPOUT, 2)
        for got, ref in zip(fast.dropout_forward(x, rate, key, 2 ** 32 + 3), cpu.dropout_forward(x, rate, key, 2 ** 32 + 3)):
            np.testing.assert_array_equal(got, ref)       # the same draws: the same mask


@pytest.mark.parametrize("decay", [1.0, 1.0 - 2 * 0.1 * 5e-4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_same_bits(decay, dtype, threads_mode):
    w, g = rand((40, 30), dtype), rand((40, 30), dtype, 1)
    w_ref = w.copy()
    s, s_ref = np.zeros((), dtype), np.zeros((), dtype)
    assert fast.sgd_update(w, g, 0.1, decay, sumsq=s) is w
    cpu.sgd_update(w_ref, g, 0.1, decay, sumsq=s_ref)
    np.testing.assert_array_equal(w, w_ref)
    assert s == s_ref


@pytest.mark.parametrize("l2", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_outer_within_rounding(l2, dtype):
    """W ← decay·W − lr·preᵀ·fb as one GEMM into W: in place, within the rounding of the
    product (K·eps·Σ|pre·fb|) and of W, against the tags' product applied by sgd_update."""
    decay = 1.0 - 2 * 0.1 * 5e-4 if l2 else 1.0
    pre, fb = rand((7, 40), dtype, 1), rand((7, 30), dtype, 2)
    w = rand((40, 30), dtype)
    w_ref, ptr = w.copy(), w.ctypes.data
    s, s_ref = (np.zeros((), dtype), np.zeros((), dtype)) if l2 else (None, None)
    assert fast.sgd_update_outer(w, pre, fb, 0.1, decay, s) is w and w.ctypes.data == ptr
    cpu.sgd_update(w_ref, pre.T @ fb, 0.1, decay, s_ref)
    eps = np.finfo(dtype).eps
    bound = 8 * eps * (np.abs(w_ref) + 0.1 * (np.abs(pre).T @ np.abs(fb)))
    assert np.all(np.abs(w - w_ref) <= bound)
    assert s == s_ref


def test_sgd_update_outer_of_a_strided_kernel_is_the_reference():
    w = rand((40, 60), np.float32)[:, ::2]                  # not C-contiguous: tags made, then sgd_update
    w_ref = w.copy()
    pre, fb = rand((5, 40), np.float32, 1), rand((5, 30), np.float32, 2)
    fast.sgd_update_outer(w, pre, fb, 0.1)
    cpu.sgd_update(w_ref, pre.T @ fb, 0.1)
    np.testing.assert_array_equal(w, w_ref)


@pytest.mark.parametrize("shape", [(4, 5, 5, 3), (128, 3), (2, 9, 9, 33)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm(shape, dtype, threads_mode):
    x = (rand(shape, dtype) * 3 + 100).astype(dtype)     # a large offset: no cancellation allowed
    c = shape[-1]
    gamma, beta = rand((c,), dtype, 1), rand((c,), dtype, 2)
    got = fast.batchnorm_train_forward(x, gamma, beta, 1e-3)
    ref = cpu.batchnorm_train_forward(x, gamma, beta, 1e-3)
    xhat_ref, y_ref, mean_ref, var_ref, inv_ref = ref
    assert ulp_close(got[2], mean_ref, dtype) and ulp_close(got[3], var_ref, dtype)
    # given the same statistics the normalisation is the same bits
    xhat, y = fast.batchnorm_forward(x, mean_ref, inv_ref, gamma, beta)
    np.testing.assert_array_equal(xhat, xhat_ref)
    np.testing.assert_array_equal(y, y_ref)
    fb = rand(shape, dtype, 3)
    for name in ("batchnorm_feedback_train", "batchnorm_feedback_inference"):
        fb_in, dgamma, dbeta = getattr(fast, name)(fb, xhat_ref, gamma, inv_ref)
        fb_ref, dgamma_ref, dbeta_ref = getattr(cpu, name)(fb, xhat_ref, gamma, inv_ref)
        assert ulp_close(dgamma, dgamma_ref, dtype) and ulp_close(dbeta, dbeta_ref, dtype)
        if np.array_equal(dgamma, dgamma_ref) and np.array_equal(dbeta, dbeta_ref):
            np.testing.assert_array_equal(fb_in, fb_ref)
        else:
            np.testing.assert_allclose(fb_in, fb_ref, rtol=1e-5 if dtype == np.float32 else 1e-13,
                                       atol=1e-6 * np.abs(fb_ref).max())


def dot_bound(a, b, dtype, k):
    """8·eps·Σ|a||b| elementwise, the rounding bound of K-term sums (with slack)."""
    return 8 * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b)) + np.finfo(dtype).tiny


@pytest.mark.parametrize("p,b,k,f", [(9, 4, 12, 5), (144, 32, 288, 32), (3, 1, 1, 7)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_locally_connected_gemms(p, b, k, f, dtype, threads_mode):
    cols, w = rand((p, b, k), dtype), rand((p, k, f), dtype, 1)
    fb, w_fb = rand((b, p, f), dtype, 2), rand((p, k, f), dtype, 3)
    y = fast.lc_forward(cols, w)
    assert y.shape == (b, p, f) and y.dtype == dtype
    bound = dot_bound(cols, w, dtype, k).transpose(1, 0, 2)
    assert np.all(np.abs(y - cpu.lc_forward(cols, w)) <= bound)
    tags, dcols = fast.lc_feedback(fb, cols, w_fb)
    tags_ref, dcols_ref = cpu.lc_feedback(fb, cols, w_fb)
    fbp = fb.transpose(1, 0, 2)
    assert np.all(np.abs(tags - tags_ref) <= dot_bound(cols.transpose(0, 2, 1), fbp, dtype, b))
    assert np.all(np.abs(dcols - dcols_ref) <= dot_bound(fbp, w_fb.transpose(0, 2, 1), dtype, f))
    tags2, none = fast.lc_feedback(fb, cols, w_fb, need_input_fb=False)
    assert none is None
    np.testing.assert_array_equal(tags2, tags)


@pytest.mark.parametrize("n_threads", [2, 3, 200])
def test_locally_connected_positions_shared_out_over_threads_same_bits(n_threads, monkeypatch):
    """The positions' GEMMs split over threads (one share each) are the same calls: same bits."""
    from brainprop_np.kernels import threads
    cols, w = rand((144, 8, 27), np.float32), rand((144, 27, 6), np.float32, 1)
    fb, w_fb = rand((8, 144, 6), np.float32, 2), rand((144, 27, 6), np.float32, 3)
    monkeypatch.setitem(threads._state, "n", 1)
    one = fast.lc_forward(cols, w), *fast.lc_feedback(fb, cols, w_fb)
    monkeypatch.setitem(threads._state, "n", n_threads)
    many = fast.lc_forward(cols, w), *fast.lc_feedback(fb, cols, w_fb)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)
    assert fast.lc_feedback(fb, cols, w_fb, need_input_fb=False)[1] is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_brainprop_step(dtype):
    """The same draws, actions, reward, delta and fb as the reference; loss and metrics close."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((500, 10)).astype(dtype)
    labels = rng.integers(0, 10, 500)
    key = philox.make_key(4, philox.EXPLORE, 7)
    for args in [(0.5, key, 11, 500, None), (0.02, None, 11, 640, None),
                 (0.5, None, 0, 500, rng.integers(0, 10, 500))]:
        m_got, m_ref = np.zeros(5), np.zeros(5)
        got = fast.brainprop_step(q, labels, *args, metrics=m_got)
        ref = cpu.brainprop_step(q, labels, *args, metrics=m_ref)
        for a, r in zip(got[:4], ref[:4]):                    # actions, reward, delta, fb
            np.testing.assert_array_equal(a, r)
        np.testing.assert_allclose(got[4], ref[4], rtol=1e-6 if dtype == np.float32 else 1e-14)
        assert got[5] == ref[5]
        assert np.asarray(got[4]).dtype == dtype
        np.testing.assert_allclose(m_got, m_ref, rtol=1e-13)
        assert m_got[4] == m_ref[4] and (args[1] is None or m_got[4] > 0)   # explored choices


def _trained(model, kernels, dtype, seed=3):
    """Weights after three BrainProp steps (dropout and exploration on) with `kernels`."""
    shape = {"dense": (6, 6, 1), "conv": (8, 8, 1), "loccon": (8, 8, 1), "deep": (8, 8, 2)}[model]
    net = bp.build_network(model, shape, 4, seed=seed, device="cpu", dtype=dtype, kernels=kernels)
    rule, opt = bp.BrainProp(epsilon=0.3), bp.SGD(lr=0.1, l2=5e-4)
    rng = np.random.default_rng(seed)
    x = rng.random((16,) + shape).astype(dtype)
    labels = rng.integers(0, 4, 16)
    actions = rng.integers(0, 4, 16)         # given actions: no selection rounding can flip one
    for _ in range(3):
        rule.trial(net, x, labels, train=True, actions=actions)
        opt.step(net, 0.1)
    return net.get_weights()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", ["dense", "conv", "loccon", "deep"])
def test_training_steps_match_reference(model, dtype):
    got, ref = _trained(model, "fast", dtype), _trained(model, "numpy", dtype)
    rtol = 1e-4 if dtype == "float32" else 1e-10
    for lname in ref:
        for aname, r in ref[lname].items():
            np.testing.assert_allclose(got[lname][aname], r, rtol=rtol, atol=rtol * np.abs(r).max(),
                                       err_msg=f"{lname}.{aname}")


def test_same_seed_same_bits_on_the_fast_path():
    a, b = _trained("conv", "fast", "float32"), _trained("conv", "fast", "float32")
    for lname in a:
        for aname in a[lname]:
            np.testing.assert_array_equal(a[lname][aname], b[lname][aname])


def test_thread_count_does_not_change_the_bits(monkeypatch):
    """Every fast kernel gives the same bits on 1 thread and on all (BatchNorm's sums run
    in fixed chunks). BLAS is left as it is: OpenBLAS may round differently with another
    thread count."""
    import numba
    monkeypatch.setattr(jit, "PARALLEL_MIN", 0)
    n0 = numba.get_num_threads()
    runs = []
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(n)
            runs.append(_trained("loccon", "fast", "float32"))
    finally:
        numba.set_num_threads(n0)
    for lname in runs[0]:
        for aname in runs[0][lname]:
            np.testing.assert_array_equal(runs[1][lname][aname], runs[0][lname][aname])


def test_backend_chooses_the_kernel_set(monkeypatch):
    monkeypatch.delenv("BRAINPROP_KERNELS", raising=False)
    assert bp.get_backend("cpu").kernel_set == "fast"                     # auto: numba is here
    assert bp.get_backend("cpu", "numpy").kernels is cpu
    monkeypatch.setenv("BRAINPROP_KERNELS", "numpy")
    assert bp.get_backend("cpu").kernel_set == "numpy"
    monkeypatch.setenv("BRAINPROP_KERNELS", "turbo")
    with pytest.raises(ValueError, match="BRAINPROP_KERNELS='turbo' is not allowed; use one of auto, fast, numpy"):
        bp.get_backend("cpu")
