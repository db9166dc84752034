"""Every CUDA kernel (through kernels/gpu.py) equals its NumPy reference (kernels/cpu.py).

Each test runs on two devices:
  * `cuda`: CuPy on a real GPU — marked `gpu`, skipped without CuPy or a CUDA device
    (run them with `python -m pytest -m gpu tests/test_gpu_*.py`, or scripts/gpu_check.sh);
  * `emulated`: the same .cu sources compiled for the CPU by tests/cuda_emulator.py (g++),
    which also checks every launch's argument types, launch limits and out-of-bounds
    writes; skipped without a C++ compiler.
Tolerances are float32's; copies and gathers in a fixed order must match exactly.
"""
import inspect

import numpy as np
import pytest

import cuda_emulator
from brainprop_np import philox
from brainprop_np.kernels import cpu, gpu
from brainprop_np.layers.geometry import window_2d



class Device:
    """How a test reaches the kernels under test: kernels module, host → device → host."""

    def __init__(self, name, k, to_dev, to_host):
        self.name, self.k, self.to_dev, self.to_host = name, k, to_dev, to_host

    def h(self, *arrays):
        out = tuple(self.to_host(a) for a in arrays)
        return out if len(out) > 1 else out[0]


def cupy_or_skip():
    cupy = pytest.importorskip("cupy")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        pytest.skip(f"CuPy sees no CUDA device ({type(e).__name__}: {e})")
    if n < 1:
        pytest.skip("CuPy sees no CUDA device")
    if gpu.xp is None:
        pytest.skip("kernels.gpu could not import CuPy")
    return cupy


@pytest.fixture(params=[pytest.param("cuda", marks=pytest.mark.gpu), "emulated"])
def dev(request, monkeypatch):
    if request.param == "cuda":
        cupy = cupy_or_skip()
        return Device("cuda", gpu, cupy.asarray, cupy.asnumpy)
    cuda_emulator.patch_gpu_kernels(monkeypatch, request.getfixturevalue("emulator"))
    return Device("emulated", gpu, lambda a: np.array(a, copy=True), np.asarray)


def ref(fn, *args, **kwargs):
    """Call the NumPy reference; with a fresh work-buffer dict where it takes one."""
    if "ws" in inspect.signature(fn).parameters and "ws" not in kwargs:
        kwargs["ws"] = {}
    return fn(*args, **kwargs)


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_close(got, want, rtol=1e-5, atol=1e-6, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def assert_equal(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    np.testing.assert_array_equal(got, want, err_msg=what)


# ---- the contract ------------------------------------------------------------------------

def _public_functions(mod):
    return {n: f for n, f in vars(mod).items()
            if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == mod.__name__}


def test_gpu_module_mirrors_cpu_contract():
    """Every public function of kernels/cpu.py has a twin in kernels/gpu.py, same parameters."""
    cpu_fns, gpu_fns = _public_functions(cpu), _public_functions(gpu)
    missing = sorted(set(cpu_fns) - set(gpu_fns))
    assert not missing, f"kernels/gpu.py lacks {missing}"
    for name, f in cpu_fns.items():
        want = [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]
        got = [(p.name, p.kind, p.default) for p in inspect.signature(gpu_fns[name]).parameters.values()]
        assert got == want, f"{name}: gpu{inspect.signature(gpu_fns[name])} != cpu{inspect.signature(f)}"


# ---- im2col / col2im -----------------------------------------------------------------------

GEOMETRIES = [
    # (N, H, W, C), kernel, stride, padding
    ((2, 7, 6, 3), 1, 1, "same"),
    ((2, 7, 6, 3), 3, 1, "same"),
    ((2, 7, 6, 3), 3, 2, "same"),
    ((2, 8, 8, 3), 3, 2, "same"),      # even input, stride 2: extra padding at the bottom/right
    ((2, 7, 6, 3), 3, 1, "valid"),
    ((2, 9, 8, 2), 3, 2, "valid"),
    ((1, 9, 9, 5), 5, 1, "same"),
    ((3, 10, 9, 2), 5, 2, "same"),
    ((2, 11, 10, 1), 5, 2, "valid"),
    ((2, 6, 6, 33), 3, 1, "same"),     # C not a multiple of the 32 lanes
    ((4, 28, 28, 1), 3, 1, "same"),    # MNIST conv 1
    ((4, 28, 28, 32), 3, 2, "same"),   # MNIST conv 2
    ((4, 26, 26, 32), 3, 2, "valid"),  # MNIST loccon 2
]


@pytest.mark.parametrize("positions_first", [False, True], ids=["rows", "positions_first"])
@pytest.mark.parametrize("shape,k,s,padding", GEOMETRIES, ids=[f"{g[0]}-k{g[1]}s{g[2]}{g[3]}" for g in GEOMETRIES])
def test_im2col_col2im(dev, shape, k, s, padding, positions_first):
    n, h, w, c = shape
    out_hw, pads = window_2d(h, w, k, s, padding)
    x = rng(1).standard_normal(shape).astype(np.float32)
    cols = dev.k.im2col(dev.to_dev(x), k, k, s, pads, out_hw, positions_first)
    assert_equal(dev.h(cols), ref(cpu.im2col, x, k, k, s, pads, out_hw, positions_first), "im2col")
    d = rng(2).standard_normal(cols.shape).astype(np.float32)
    fb = dev.k.col2im(dev.to_dev(d), x.shape, k, k, s, pads, out_hw, positions_first)
    assert_close(dev.h(fb), ref(cpu.col2im, d, x.shape, k, k, s, pads, out_hw, positions_first), what="col2im")


def test_im2col_col2im_float64(dev):
    x = rng(3).standard_normal((2, 9, 7, 4))
    out_hw, pads = window_2d(9, 7, 3, 2, "same")
    for trial in range(2):
        xi = x + trial
        cols = dev.k.im2col(dev.to_dev(xi), 3, 3, 2, pads, out_hw)
        assert_equal(dev.h(cols), ref(cpu.im2col, xi, 3, 3, 2, pads, out_hw), "im2col float64")
        d = rng(4 + trial).standard_normal(cols.shape)
        fb = dev.k.col2im(dev.to_dev(d), xi.shape, 3, 3, 2, pads, out_hw)
        assert_close(dev.h(fb), ref(cpu.col2im, d, xi.shape, 3, 3, 2, pads, out_hw), rtol=1e-12, atol=1e-12,
                     what="col2im float64")


def test_col2im_is_the_adjoint_of_im2col(dev):
    """<im2col(x), d> = <x, col2im(d)>, on the device alone."""
    x = rng(5).standard_normal((3, 8, 7, 5))
    out_hw, pads = window_2d(8, 7, 3, 2, "same")
    cols = dev.h(dev.k.im2col(dev.to_dev(x), 3, 3, 2, pads, out_hw, True))
    d = rng(6).standard_normal(cols.shape)
    back = dev.h(dev.k.col2im(dev.to_dev(d), x.shape, 3, 3, 2, pads, out_hw, True))
    assert abs((cols * d).sum() - (x * back).sum()) < 1e-9 * np.abs(cols * d).sum()


# ---- max-pooling -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape,pool", [((2, 8, 8, 3), 2), ((2, 7, 9, 5), 2), ((3, 9, 7, 33), 3), ((2, 32, 32, 64), 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool(dev, shape, pool, dtype):
    # small integers: many ties inside windows, which must go to the first maximum
    x = rng(7).integers(-2, 3, shape).astype(dtype)
    y, arg = dev.k.maxpool_forward(dev.to_dev(x), pool)
    y_ref, arg_ref = cpu.maxpool_forward(x, pool)
    assert_equal(dev.h(y), y_ref, "maxpool y")
    assert_equal(dev.h(arg), arg_ref, "maxpool arg")
    fb = rng(8).standard_normal(y_ref.shape).astype(dtype)
    got = dev.k.maxpool_feedback(dev.to_dev(fb), arg, x.shape, pool)
    assert_equal(dev.h(got), cpu.maxpool_feedback(fb, arg_ref, x.shape, pool), "maxpool feedback")


# ---- ReLU ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu(dev, dtype):
    x = rng(9).standard_normal((3, 5, 7, 11)).astype(dtype)
    x.flat[::7] = 0.0
    y = dev.k.relu_forward(dev.to_dev(x))
    assert_equal(dev.h(y), cpu.relu_forward(x), "relu forward")
    fb = rng(10).standard_normal(x.shape).astype(dtype)
    got = dev.k.relu_feedback(dev.to_dev(fb), y)
    assert_equal(dev.h(got), cpu.relu_feedback(fb, cpu.relu_forward(x)), "relu feedback")


# ---- BatchNorm ---------------------------------------------------------------------------

BN_SHAPES = [(4, 5, 6, 3), (8, 14, 14, 32), (3, 7, 5, 33), (16, 28, 28, 32), (500, 10), (2, 1, 1, 7)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=[str(s) for s in BN_SHAPES])
def test_batchnorm_stats(dev, shape):
    x = (3.0 + 2.0 * rng(11).standard_normal(shape)).astype(np.float32)
    mean, var = dev.h(*dev.k.batchnorm_stats(dev.to_dev(x)))
    mean_ref, var_ref = cpu.batchnorm_stats(x)
    assert_close(mean, mean_ref, rtol=1e-5, atol=1e-6, what="mean")
    assert_close(var, var_ref, rtol=1e-4, atol=1e-6, what="var")


def test_batchnorm_stats_is_stable(dev):
    """A large offset (mean 1000, std 0.1): the per-channel reduction must not lose the variance."""
    x64 = 1000.0 + 0.1 * rng(12).standard_normal((64, 16, 16, 8))
    x = x64.astype(np.float32)
    mean, var = dev.h(*dev.k.batchnorm_stats(dev.to_dev(x)))
    xd = x.astype(np.float64).reshape(-1, 8)
    assert_close(mean.astype(np.float64), xd.mean(0), rtol=1e-6, atol=0, what="mean")
    assert_close(var.astype(np.float64), xd.var(0), rtol=2e-3, atol=0, what="var")


@pytest.mark.parametrize("shape", BN_SHAPES[:4], ids=[str(s) for s in BN_SHAPES[:4]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_train_forward(dev, shape, dtype):
    r = rng(13)
    c = shape[-1]
    x = (1.0 + r.standard_normal(shape)).astype(dtype)
    gamma = (1.0 + 0.1 * r.standard_normal(c)).astype(dtype)
    beta = (0.1 * r.standard_normal(c)).astype(dtype)
    got = dev.h(*dev.k.batchnorm_train_forward(dev.to_dev(x), dev.to_dev(gamma), dev.to_dev(beta), 1e-3))
    want = cpu.batchnorm_train_forward(x, gamma, beta, 1e-3)
    tol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    for name, g, w in zip(("xhat", "y", "mean", "var", "inv_std"), got, want):
        assert_close(g, w, rtol=tol[0], atol=tol[1], what=name)


@pytest.mark.parametrize("shape", BN_SHAPES[:4], ids=[str(s) for s in BN_SHAPES[:4]])
def test_batchnorm_forward_and_feedback(dev, shape):
    r = rng(14)
    c = shape[-1]
    x = r.standard_normal(shape).astype(np.float32)
    mean = r.standard_normal(c).astype(np.float32)
    inv_std = (0.5 + r.random(c)).astype(np.float32)
    gamma = (1.0 + 0.1 * r.standard_normal(c)).astype(np.float32)
    beta = (0.1 * r.standard_normal(c)).astype(np.float32)
    args = (mean, inv_std, gamma, beta)
    got = dev.h(*dev.k.batchnorm_forward(dev.to_dev(x), *map(dev.to_dev, args)))
    want = cpu.batchnorm_forward(x, *args)
    for name, g, w in zip(("xhat", "y"), got, want):   # bn_forward rounds each step (no fma): same bits
        assert_equal(g, w, what=name)
    xhat = want[0]
    fb = r.standard_normal(shape).astype(np.float32)
    for fn in ("batchnorm_feedback_train", "batchnorm_feedback_inference"):
        got = dev.h(*getattr(dev.k, fn)(dev.to_dev(fb), dev.to_dev(xhat), dev.to_dev(gamma), dev.to_dev(inv_std)))
        want = getattr(cpu, fn)(fb, xhat, gamma, inv_std)
        m = fb.size // c
        scale = np.sqrt(m) * np.abs(fb).max() * np.abs(xhat).max()   # size of the sums' rounding
        for name, g, w in zip(("fb_in", "dgamma", "dbeta"), got, want):
            if name == "fb_in" and fn == "batchnorm_feedback_inference":   # fb·(gamma·inv_std): same bits
                assert_equal(g, w, what=f"{fn} {name}")
                continue
            assert_close(g, w, rtol=1e-4, atol=1e-6 * scale if name != "fb_in" else 1e-5, what=f"{fn} {name}")


# ---- dropout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask(dev, rate, dtype):
    u = rng(15).random((7, 9, 5, 3), dtype=dtype)
    u.flat[:20] = dtype(rate)            # exactly at the threshold: kept, as [u >= rate]
    got = dev.h(dev.k.dropout_mask(dev.to_dev(u), rate, dtype))
    assert_equal(got, cpu.dropout_mask(u, rate, dtype), f"dropout mask rate {rate}")


# ---- output step ---------------------------------------------------------------------------

def _cdf_margin(q, u_sample):
    """Per row, the float64 distance of u_sample·cdf[-1] from the nearest CDF step."""
    z = np.exp(q - q.max(axis=1, keepdims=True))
    cdf = np.cumsum(z / z.sum(axis=1, keepdims=True), axis=1)
    return np.abs(cdf - (u_sample * cdf[:, -1])[:, None]).min(axis=1)


@pytest.mark.parametrize("epsilon", [0.0, 0.02, 0.5, 1.0])
@pytest.mark.parametrize("n_classes", [10, 100])
def test_select_actions(dev, epsilon, n_classes):
    r = rng(16)
    q = (2.0 * r.standard_normal((512, n_classes))).astype(np.float32)
    q[:32, 3] = q[:32].max(axis=1)        # ties: the first maximum wins
    q[:32, 7] = q[:32, 3]
    u_explore = r.random(512, dtype=np.float32)
    u_sample = r.random(512, dtype=np.float32)
    got = dev.h(dev.k.select_actions(dev.to_dev(q), epsilon, dev.to_dev(u_explore), dev.to_dev(u_sample)))
    want = cpu.select_actions(q, epsilon, u_explore, u_sample)
    assert got.dtype == np.int64 and got.shape == want.shape
    clear = _cdf_margin(q.astype(np.float64), u_sample.astype(np.float64)) > 1e-5
    clear |= u_explore >= epsilon          # greedy rows do not depend on the softmax
    assert clear.mean() > 0.95
    assert_equal(got[clear], want[clear], "actions")


def test_softmax(dev):
    q = (3.0 * rng(17).standard_normal((65, 10))).astype(np.float32)
    assert_close(dev.h(dev.k.softmax(dev.to_dev(q))), cpu.softmax(q), rtol=1e-5, atol=1e-7, what="softmax")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_brainprop_output(dev, dtype):
    r = rng(18)
    q = r.standard_normal((300, 10)).astype(dtype)
    labels = r.integers(0, 10, 300)
    actions = np.where(r.random(300) < 0.5, labels, r.integers(0, 10, 300)).astype(np.int64)
    got = dev.h(*dev.k.brainprop_output(dev.to_dev(q), dev.to_dev(labels), dev.to_dev(actions), 1.0 / 128))
    want = cpu.brainprop_output(q, labels, actions, 1.0 / 128)
    for name, g, w in zip(("reward", "delta", "fb"), got, want):
        assert_equal(g, w, name)


KEY = philox.make_key(5, philox.EXPLORE, 9)
STEP = 2 ** 33 + 17                     # a trial number with both counter words set


def _metrics(q, actions, reward, delta, nominal):
    """The epoch's sums of one trial as rules.base.METRICS defines them, in float64."""
    d = delta.astype(np.float64)
    return np.array([len(q) * 0.5 * np.sum(d * d) / nominal, reward.sum(dtype=np.float64), d.sum(),
                     np.abs(d).sum(), np.count_nonzero(actions != q.argmax(axis=1))])


def test_brainprop_step_is_select_then_output(dev):
    """The one-launch output step equals select_actions with image b's uniforms from the
    counter-based generator, then brainprop_output, the trial's sums and the epoch's metrics."""
    r = rng(19)
    b, c, nominal = 200, 10, 256
    q = r.standard_normal((b, c)).astype(np.float32)
    labels = r.integers(0, c, b)
    ue, us = philox.explore_uniforms(KEY, STEP, b, np.float32)
    metrics = np.full(5, 0.25)                                  # added to, not overwritten
    m_dev = dev.to_dev(metrics)
    got = dev.h(*dev.k.brainprop_step(dev.to_dev(q), dev.to_dev(labels), 0.3, KEY, STEP, nominal, metrics=m_dev))
    actions = cpu.select_actions(q, 0.3, ue, us)
    clear = (_cdf_margin(q.astype(np.float64), us.astype(np.float64)) > 1e-5) | (ue >= 0.3)
    assert clear.sum() >= b - 2 and (ue < 0.3).sum() > 20
    assert_equal(got[0][clear], actions[clear], "actions")
    actions = got[0]   # go on from the device's choice
    reward, delta, fb = cpu.brainprop_output(q, labels, actions, 1.0 / nominal)
    for name, g, w in zip(("reward", "delta", "fb"), got[1:4], (reward, delta, fb)):
        assert_equal(g, w, name)
    loss = 0.5 * np.sum(delta.astype(np.float64) ** 2) / nominal
    assert_close(np.array(got[4:6]), np.array([loss, reward.sum()], np.float32), rtol=1e-5, atol=1e-7, what="sums")
    assert_close(dev.h(m_dev), 0.25 + _metrics(q, actions, reward, delta, nominal), rtol=1e-12, atol=1e-12,
                 what="metrics")
    # with the actions given it is brainprop_output
    got2 = dev.h(*dev.k.brainprop_step(dev.to_dev(q), dev.to_dev(labels), 0.3, None, 0, nominal,
                                       actions=dev.to_dev(actions)))
    assert_equal(got2[0], actions, "given actions")
    for name, g, w in zip(("reward", "delta", "fb"), got2[1:4], (reward, delta, fb)):
        assert_equal(g, w, name)
    # without a key: argmax (test time)
    got3 = dev.h(*dev.k.brainprop_step(dev.to_dev(q), dev.to_dev(labels), 0.3, None, STEP, nominal))
    assert_equal(got3[0], q.argmax(axis=1).astype(np.int64), "greedy actions")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["select", "greedy", "given"])
def test_brainprop_step_matches_cpu(dev, dtype, how):
    """cpu.brainprop_step and the kernel: the same actions (the same draws), reward, delta, fb;
    loss, count and the epoch's metrics close."""
    r = rng(23)
    b, c, nominal = 37, 10, 40
    q = r.standard_normal((b, c)).astype(dtype)
    labels = r.integers(0, c, b)
    key = actions = None
    if how == "select":   # this trial's draws lie well away from the CDF steps (see test_select_actions)
        key = KEY
        ue, us = philox.explore_uniforms(KEY, STEP, b, dtype)
        assert (_cdf_margin(q.astype(np.float64), us.astype(np.float64)) > 1e-4).all() and (ue < 0.5).sum() > 10
    elif how == "given":
        actions = np.where(r.random(b) < 0.5, labels, r.integers(0, c, b)).astype(np.int64)
    m_ref, m_dev = np.zeros(5), dev.to_dev(np.zeros(5))
    want = cpu.brainprop_step(q, labels, 0.5, key, STEP, nominal, actions, m_ref)
    opt = (lambda a: None if a is None else dev.to_dev(a))
    got = dev.h(*dev.k.brainprop_step(dev.to_dev(q), dev.to_dev(labels), 0.5, key, STEP, nominal, opt(actions),
                                      m_dev))
    for name, g, w in zip(("actions", "reward", "delta", "fb"), got[:4], want[:4]):
        assert_equal(g, w, name)
    tol = (1e-5, 1e-7) if dtype == np.float32 else (1e-12, 1e-15)
    assert_close(np.asarray(got[4]), np.asarray(want[4]), *tol, what="loss")
    assert float(got[5]) == float(want[5])
    assert_close(dev.h(m_dev), m_ref, 1e-12, 1e-12, what="metrics")


def test_cpu_brainprop_step_is_the_trial_output_step():
    """cpu.brainprop_step gives, bit for bit, select_actions with the trial's draws, then
    brainprop_output, the loss in q's dtype and the epoch's metrics by their definitions."""
    r = rng(24)
    for dtype in (np.float32, np.float64):
        b, c, nominal = 21, 10, 24
        q = r.standard_normal((b, c)).astype(dtype)
        labels = r.integers(0, c, b)
        ue, us = philox.explore_uniforms(KEY, STEP, b, dtype)
        metrics = np.zeros(5)
        actions, reward, delta, fb, loss, n_correct = cpu.brainprop_step(q, labels, 0.3, KEY, STEP, nominal,
                                                                         metrics=metrics)
        want_actions = cpu.select_actions(q, 0.3, ue, us)
        want = cpu.brainprop_output(q, labels, want_actions, 1.0 / nominal)
        assert_equal(actions, want_actions, "actions")
        for name, g, w in zip(("reward", "delta", "fb"), (reward, delta, fb), want):
            assert_equal(g, w, name)
        want_loss = dtype(0.5) * np.sum(want[1] * want[1]) / dtype(nominal)
        assert type(loss) is dtype and loss == want_loss          # q's dtype, under NumPy 1.x and 2.x
        if np.lib.NumpyVersion(np.__version__) >= "2.0.0":        # what the trial computed before (NEP 50)
            assert loss == 0.5 * np.sum(want[1] * want[1]) / nominal
        assert type(n_correct) is type(np.sum(want[0])) and n_correct == np.sum(want[0])
        np.testing.assert_allclose(metrics, _metrics(q, actions, reward, delta, nominal), rtol=1e-15)
        greedy = cpu.brainprop_step(q, labels, 0.3, None, STEP, nominal)
        assert_equal(greedy[0], q.argmax(axis=1), "greedy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ebp_output(dev, dtype):
    r = rng(20)
    q = (2.0 * r.standard_normal((130, 10))).astype(dtype)
    labels = r.integers(0, 10, 130)
    got = dev.h(*dev.k.ebp_output(dev.to_dev(q), dev.to_dev(labels), 1.0 / 130))
    want = cpu.ebp_output(q, labels, 1.0 / 130)
    tol = (1e-5, 1e-7) if dtype == np.float32 else (1e-12, 1e-15)
    for name, g, w in zip(("p", "fb"), got, want):
        assert_close(g, w, rtol=tol[0], atol=tol[1], what=name)


# ---- updates after a trial ----------------------------------------------------------------

def _sgd_reference(w, g, lr, decay):
    """What SGD.step did before the fused update: two or three array operations."""
    w = w.copy()
    if decay != 1.0:
        w *= decay
    w -= lr * g
    return w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("l2", [0.0, 5e-4])
def test_sgd_update(dev, l2, dtype):
    """One launch, the same bits as the array operations (each product rounded on its own)."""
    r = rng(21)
    lr = 0.1
    decay = 1.0 - 2.0 * lr * l2 if l2 else 1.0
    for shape in ((33, 17), (3, 3, 4, 5), (7,)):
        w = r.standard_normal(shape).astype(dtype)
        g = r.standard_normal(shape).astype(dtype)
        want = _sgd_reference(w, g, lr, decay)
        wd = dev.to_dev(w)
        assert dev.k.sgd_update(wd, dev.to_dev(g), lr, decay) is wd
        assert_equal(dev.h(wd), want, f"sgd_update {shape}")


def _moving_reference(mm, mv, mean, var, mom, m):
    """What the BatchNorm layer did before the fused update."""
    mm, mv = mm.copy(), mv.copy()
    mm *= mom
    mm += (1.0 - mom) * mean
    mv *= mom
    mv += (1.0 - mom) * var * (m / max(m - 1, 1))
    return mm, mv


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_update_moving(dev, dtype):
    r = rng(22)
    mm, mv = r.standard_normal(40).astype(dtype), r.random(40).astype(dtype)
    mean, var = r.standard_normal(40).astype(dtype), r.random(40).astype(dtype)
    for m, mom in ((1000, 0.99), (1, 0.9)):
        want_mm, want_mv = _moving_reference(mm, mv, mean, var, mom, m)
        dmm, dmv = dev.to_dev(mm), dev.to_dev(mv)
        dev.k.batchnorm_update_moving(dmm, dmv, dev.to_dev(mean), dev.to_dev(var), mom, m)
        assert_equal(dev.h(dmm), want_mm, "moving_mean")
        assert_equal(dev.h(dmv), want_mv, "moving_variance")
        cmm, cmv = mm.copy(), mv.copy()
        out = cpu.batchnorm_update_moving(cmm, cmv, mean, var, mom, m)
        assert out[0] is cmm and out[1] is cmv
        assert_equal(cmm, want_mm, "cpu moving_mean")
        assert_equal(cmv, want_mv, "cpu moving_variance")


# ---- the 256-thread reductions -------------------------------------------------------------

@pytest.mark.parametrize("kernel", sorted(gpu._REDUCTIONS))
def test_reductions_refuse_other_block_sizes_on_the_host(kernel):
    """kernels/gpu.py checks the block of every reduction launch against BP_REDUCE_THREADS."""
    from brainprop_np.kernels import cuda_module
    assert cuda_module.define_value(gpu._REDUCTIONS[kernel], "BP_REDUCE_THREADS") == gpu._REDUCE_THREADS
    gpu._check_reduce_block(kernel, (gpu._REDUCE_THREADS, 1, 1))
    gpu._check_reduce_block(kernel, (32, gpu._REDUCE_THREADS // 32, 1))
    for block in ((128, 1, 1), (512, 1, 1), (32, 4, 1)):
        with pytest.raises(ValueError, match="BP_REDUCE_THREADS"):
            gpu._check_reduce_block(kernel, block)


def test_reductions_trap_with_other_block_sizes(emulator):
    """The device-side guard: a reduction launched with another block size traps (emulated)."""
    m, c, chunk = 64, 3, 16
    g = m // chunk
    x = np.ones((m, c), np.float32)
    part = np.zeros((3, g, c), np.float32)
    counters = np.zeros(1, np.uint32)
    outs = [np.empty(c, np.float32) for _ in range(3)]
    fn = emulator.get_function("bn_stats_f32")

    def args():
        return (x, part, np.int32(m), np.int32(c), np.int32(chunk), counters, *outs, np.float32(1e-3),
                outs[0], outs[1], np.float32(0.99), np.float32(0.01), np.float32(1.0), np.int32(0))
    fn((1, g, 1), (32, 8, 1), args())   # fine
    np.testing.assert_array_equal(outs[0], 1.0)
    assert counters[0] == 0                      # left at zero for the next launch
    for block in ((32, 4, 1), (32, 16, 1)):
        with pytest.raises(AssertionError, match="__trap"):
            fn((1, g, 1), block, args())
    counters[0] = 0
    ffn = emulator.get_function("bn_feedback_sums_f32")
    with pytest.raises(AssertionError, match="__trap"):
        ffn((1, g, 1), (64, 1, 1), (x, x, part[:2], np.int32(m), np.int32(c), np.int32(chunk), counters,
                                    outs[0], outs[1]))


# ---- batched GEMM ----------------------------------------------------------------------------

def _views(x, how, xp=np):
    """A (P, R, C) stack laid out as `how` (on the array module xp): C-contiguous, transposed, or
    strided like the locally-connected layer's (P, B, F) view of a (B, P, F) array."""
    x = xp.asarray(x)
    if how == "c":
        return x.copy()
    if how == "t":                      # stored (P, C, R), read transposed
        return xp.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)
    if how == "pbf":                    # stored (R, P, C)
        return xp.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    raise ValueError(how)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("la", ["c", "t", "pbf"])
@pytest.mark.parametrize("lb", ["c", "t", "pbf"])
def test_batched_matmul(dev, la, lb, dtype):
    r = rng(26)
    p, m, k, n = 5, 7, 9, 4
    a = r.standard_normal((p, m, k)).astype(dtype)
    b = r.standard_normal((p, k, n)).astype(dtype)
    want = cpu.batched_matmul(_views(a, la), _views(b, lb))
    np.testing.assert_allclose(want, np.matmul(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12)
    xpm = pytest.importorskip("cupy") if dev.name == "cuda" else np      # the views on the device
    a_dev, b_dev = _views(a, la, xpm), _views(b, lb, xpm)
    assert a_dev.strides == _views(a, la).strides and b_dev.strides == _views(b, lb).strides
    tol = (1e-5, 1e-5) if dtype == np.float32 else (1e-12, 1e-12)
    assert_close(dev.h(dev.k.batched_matmul(a_dev, b_dev)), want, *tol, what="batched_matmul")
    # into a (P, M, N) view of an (M, P, N) array, as the locally-connected forward pass does
    out_dev = xpm.full((m, p, n), np.nan, dtype)
    res = dev.k.batched_matmul(a_dev, b_dev, out=out_dev.transpose(1, 0, 2))
    assert_close(dev.h(out_dev).transpose(1, 0, 2), want, *tol, what="batched_matmul out view")
    assert_close(dev.h(res), want, *tol, what="batched_matmul returns out")
    assert gpu.cublas_fallback() is None, f"the hand-written cuBLAS GEMM fell back: {gpu.cublas_fallback()}"


@pytest.mark.parametrize("error", [AttributeError("module 'cublas' has no attribute 'gemmStridedBatchedEx'"),
                                   type("CUBLASError", (RuntimeError,), {})("CUBLAS_STATUS_NOT_SUPPORTED")])
def test_cublas_fallback_is_loud_once(emulator, monkeypatch, capsys, error):
    """A failing gemmStridedBatchedEx: one warning line per process, the reason kept for
    summary.json, cupy.matmul's result; later calls go straight to cupy.matmul, silently."""
    cuda_emulator.patch_gpu_kernels(monkeypatch, emulator)
    monkeypatch.setattr(gpu, "_cublas_state", {})
    calls = []

    def failing(*a):
        calls.append(1)
        raise error
    monkeypatch.setattr(gpu, "_gemm_strided_batched", failing)
    r = rng(28)
    a, b = r.standard_normal((3, 4, 5)).astype(np.float32), r.standard_normal((3, 5, 2)).astype(np.float32)
    for _ in range(2):
        assert_close(gpu.batched_matmul(a, b), np.matmul(a, b), what="fallback")
    err = capsys.readouterr().err
    assert err.count("warning: cuBLAS's strided-batched GEMM failed") == 1 and len(err.splitlines()) == 1, err
    assert type(error).__name__ in gpu.cublas_fallback() and str(error) in gpu.cublas_fallback()
    assert calls == [1]


def test_other_errors_of_the_cublas_call_are_not_hidden(emulator, monkeypatch):
    """A device fault during the GEMM is raised (it becomes run/failures.py's one line), not a fallback."""
    cuda_emulator.patch_gpu_kernels(monkeypatch, emulator)
    monkeypatch.setattr(gpu, "_cublas_state", {})
    fault = type("CUDARuntimeError", (RuntimeError,), {})("cudaErrorIllegalAddress")
    monkeypatch.setattr(gpu, "_gemm_strided_batched", lambda *a: (_ for _ in ()).throw(fault))
    a = np.ones((2, 3, 4), np.float32)
    with pytest.raises(RuntimeError, match="cudaErrorIllegalAddress"):
        gpu.batched_matmul(a, a.transpose(0, 2, 1))
    assert gpu.cublas_fallback() is None


def test_batched_matmul_takes_no_copies(emulator, monkeypatch):
    """The layer's three GEMMs reach cuBLAS as views: no ascontiguousarray, one call each."""
    cuda_emulator.patch_gpu_kernels(monkeypatch, emulator)
    calls = []
    real = gpu._gemm_strided_batched
    monkeypatch.setattr(gpu, "_gemm_strided_batched", lambda *a: (calls.append(a[1:4]), real(*a)))
    monkeypatch.setattr(gpu.xp, "ascontiguousarray", lambda *a, **k: pytest.fail("a copy"), raising=False)
    r = rng(27)
    cols = r.standard_normal((6, 3, 8)).astype(np.float32)          # (P, B, K)
    w = r.standard_normal((6, 8, 5)).astype(np.float32)             # (P, K, F)
    fb = r.standard_normal((3, 6, 5)).astype(np.float32)            # (B, P, F)
    fbp = fb.transpose(1, 0, 2)
    y = np.empty((3, 6, 5), np.float32)
    gpu.batched_matmul(cols, w, out=y.transpose(1, 0, 2))
    assert_close(y.transpose(1, 0, 2), np.matmul(cols, w), what="forward")
    assert_close(gpu.batched_matmul(cols.transpose(0, 2, 1), fbp), np.matmul(cols.transpose(0, 2, 1), fbp),
                 what="tag")
    assert_close(gpu.batched_matmul(fbp, w.transpose(0, 2, 1)), np.matmul(fbp, w.transpose(0, 2, 1)), what="fb_in")
    assert [c[:2] for c in calls] == [(0, 0), (0, 1), (1, 0)], calls   # (op on the right, op on the left)



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 1000, 300_001])   # 300,001: more blocks than BP_SUMSQ_BLOCKS
def test_sgd_update_with_sumsq(dev, n, dtype):
    """With sumsq the update keeps its bits and Σ w² (old w) is added, deterministically."""
    r = rng(28)
    lr, decay = 0.1, 1.0 - 2.0 * 0.1 * 5e-4
    w = r.standard_normal(n).astype(dtype)
    g = r.standard_normal(n).astype(dtype)
    want = _sgd_reference(w, g, lr, decay)
    want_sq = np.vdot(w, w)
    sums = []
    for _ in range(2):                       # twice from the same w: the counter was reset
        wd, sq = dev.to_dev(w), dev.to_dev(np.full((), 0.5, dtype))
        assert dev.k.sgd_update(wd, dev.to_dev(g), lr, decay, sq) is wd
        assert_equal(dev.h(wd), want, "w")
        sums.append(dev.h(sq)[()])
    assert sums[0] == sums[1], sums
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert abs(sums[0] - 0.5 - want_sq) <= tol * want_sq, (sums[0] - 0.5, want_sq)
    cw, csq = w.copy(), np.zeros((), dtype)
    cpu.sgd_update(cw, g, lr, decay, csq)
    assert_equal(cw, want, "cpu w")
    assert csq == np.vdot(w, w)


# ---- fused forward steps -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.3, 0.8])
def test_dropout_forward(dev, rate, dtype):
    """y = x·mask and the mask in one launch, the mask drawn in the kernel: the bits of
    dropout_mask of the counter-based uniforms (element e: flat index) and of the product."""
    r = rng(29)
    x = r.standard_normal((6, 5, 4, 3)).astype(dtype)
    key = philox.make_key(3, philox.DROPOUT, 7)
    u = philox.uniforms(key, STEP, x.size, dtype).reshape(x.shape)
    y, mask = dev.h(*dev.k.dropout_forward(dev.to_dev(x), rate, key, STEP))
    want_mask = cpu.dropout_mask(u, rate, dtype)
    assert_equal(mask, want_mask, "mask")
    assert_equal(y, x * want_mask, "y")
    cy, cmask = cpu.dropout_forward(x, rate, key, STEP)
    assert_equal(cmask, want_mask, "cpu mask")
    assert_equal(cy, x * want_mask, "cpu y")
    assert 0.5 < np.count_nonzero(mask) / mask.size / (1 - rate) < 1.5
    other = dev.h(dev.k.dropout_forward(dev.to_dev(x), rate, key, STEP + 1)[1])   # the next trial: another mask
    assert not np.array_equal(other, mask)


@pytest.mark.parametrize("shape", BN_SHAPES[:4], ids=[str(s) for s in BN_SHAPES[:4]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_train_forward_update(dev, shape, dtype):
    """The training forward with the running statistics updated inside the statistics kernel."""
    r = rng(30)
    c = shape[-1]
    x = (1.0 + r.standard_normal(shape)).astype(dtype)
    gamma = (1.0 + 0.1 * r.standard_normal(c)).astype(dtype)
    beta = (0.1 * r.standard_normal(c)).astype(dtype)
    mm, mv = r.standard_normal(c).astype(dtype), r.random(c).astype(dtype)
    dmm, dmv = dev.to_dev(mm), dev.to_dev(mv)
    got = dev.h(*dev.k.batchnorm_train_forward_update(dev.to_dev(x), dev.to_dev(gamma), dev.to_dev(beta), 1e-3,
                                                      dmm, dmv, 0.99))
    want = cpu.batchnorm_train_forward(x, gamma, beta, 1e-3)
    tol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    for name, g, w in zip(("xhat", "y", "mean", "var", "inv_std"), got, want):
        assert_close(g, w, rtol=tol[0], atol=tol[1], what=name)
    m = x.size // c
    # from the device's own mean and var, the running statistics have bn_update_moving's bits
    want_mm, want_mv = _moving_reference(mm, mv, got[2], got[3], 0.99, m)
    assert_equal(dev.h(dmm), want_mm, "moving_mean")
    assert_equal(dev.h(dmv), want_mv, "moving_variance")
    cmm, cmv = mm.copy(), mv.copy()
    cgot = cpu.batchnorm_train_forward_update(x, gamma, beta, 1e-3, cmm, cmv, 0.99)
    for name, g, w in zip(("xhat", "y", "mean", "var", "inv_std"), cgot, want):
        assert_equal(g, w, "cpu " + name)
    want_mm, want_mv = _moving_reference(mm, mv, want[2], want[3], 0.99, m)
    assert_equal(cmm, want_mm, "cpu moving_mean")
    assert_equal(cmv, want_mv, "cpu moving_variance")
