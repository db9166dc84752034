"""A whole training step on the GPU backend equals the same step on the CPU.

For each preset (dense, conv, loccon on 28×28×1; deep on 32×32×3), two networks are
built from the same seed (equal initial weights): one on `device='cpu'` (NumPy), one on
the GPU backend. Both run one BrainProp trial with the same images, labels and actions
(`rule.trial(..., actions=...)`), dropout with the same fixed masks and BatchNorm with
batch statistics, then `SGD.step`. The q-values, the trial's loss and reward count, every
gradient and every weight after the step (BatchNorm's moving statistics included) must
agree to float32 tolerances. The step takes the fused kernels (`brainprop_step`,
`sgd_update`, `bn_update_moving`); on the emulator a test counts their launches.

Devices, as in test_gpu_kernels.py: `cuda` (CuPy on a GPU; marked `gpu`, skipped without
one) and `emulated` (kernels/gpu.py on the CUDA sources compiled for the CPU by
tests/cuda_emulator.py; NumPy does the GEMMs there).
"""
import numpy as np
import pytest

import brainprop_np as bp
import cuda_emulator
from brainprop_np import layers as L
from brainprop_np.backend import to_host
from brainprop_np.kernels import cpu
from brainprop_np.presets import PRESET_SETTINGS
from test_gpu_kernels import cupy_or_skip

CASES = {   # model: (input shape, batch)
    "dense": ((28, 28, 1), 8),
    "conv": ((28, 28, 1), 8),
    "loccon": ((28, 28, 1), 8),
    "deep": ((32, 32, 3), 4),
}
RTOL = 2e-3     # of the largest magnitude of each array: float32 sums in another order


@pytest.fixture(params=[pytest.param("cuda", marks=pytest.mark.gpu), "emulated"])
def device(request, monkeypatch):
    """What to pass as build_network's `device` for the GPU backend."""
    if request.param == "cuda":
        cupy_or_skip()
        return "gpu"
    return cuda_emulator.patch_gpu_kernels(monkeypatch, request.getfixturevalue("emulator"))


def build_pair(model, device, seed=3, algorithm="brainprop", **feedback):
    shape, _ = CASES[model]
    ref = bp.build_network(model, shape, 10, seed=seed, device="cpu", algorithm=algorithm, **feedback)
    net = bp.build_network(model, shape, 10, seed=seed, device=device, algorithm=algorithm, **feedback)
    return ref, net


def fix_dropout(ref, net, batch, seed=4):
    """The same fixed dropout masks on both networks."""
    r = np.random.default_rng(seed)
    for a, b in zip(ref.layers, net.layers):
        if isinstance(a, L.Dropout):
            u = r.random((batch,) + a.input_shape, dtype=np.float32)
            mask = cpu.dropout_mask(u, a.rate, np.float32)
            a.fixed_mask = mask
            b.fixed_mask = net.backend.asarray(mask)


def batch_data(model, seed=5):
    shape, b = CASES[model]
    r = np.random.default_rng(seed)
    x = r.random((b,) + shape, dtype=np.float32)
    labels = r.integers(0, 10, b)
    actions = np.where(r.random(b) < 0.5, labels, r.integers(0, 10, b)).astype(np.int64)
    return x, labels, actions


def assert_like(got, want, what, rtol=RTOL):
    got, want = np.asarray(to_host(got), np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max()
    assert err <= rtol * scale + 1e-7, f"{what}: max error {err:.3g} vs largest magnitude {scale:.3g}"


def run_step(rule, net, x, labels, actions, batch, train, l2, opt=None):
    be = net.backend
    trial = rule.trial(net, be.asarray(x), be.asarray(labels, "int64"), train=train,
                       actions=None if actions is None else be.asarray(actions, "int64"), batch_size=batch)
    grads = {name: {p: to_host(g).copy() for p, g in d.items()} for name, d in net.grads().items()}
    (opt or bp.SGD(lr=0.1, l2=l2)).step(net, 0.1)
    return trial, grads


def compare_step(model, device, train=True, algorithm="brainprop", select=False, draw_masks=False, **feedback):
    ref, net = build_pair(model, device, algorithm=algorithm, **feedback)
    x, labels, actions = batch_data(model)
    batch = x.shape[0]
    if train and not draw_masks:
        fix_dropout(ref, net, batch)
    before = ref.get_weights()
    for lname, arrays in net.get_weights().items():   # equal initial weights
        for aname, a in arrays.items():
            np.testing.assert_array_equal(a, before[lname][aname], err_msg=f"{lname}.{aname} initial")
    rule = bp.BrainProp(epsilon=0.02) if algorithm == "brainprop" else bp.EBP()
    l2 = PRESET_SETTINGS[model]["l2"]
    opt = bp.SGD(lr=0.1, l2=l2)
    acts = actions if algorithm == "brainprop" and not select else None
    t_ref, g_ref = run_step(rule, ref, x, labels, acts, batch, train, l2, opt)
    t_net, g_net = run_step(rule, net, x, labels, acts, batch, train, l2, opt)

    assert_like(t_net.q, t_ref.q, "q")
    a_net, a_ref = to_host(t_net.actions), to_host(t_ref.actions)
    q_ref = np.sort(to_host(t_ref.q), axis=1)
    clear = (q_ref[:, -1] - q_ref[:, -2]) > 1e-5 * np.abs(q_ref).max()   # argmax ties may flip under other BLAS
    np.testing.assert_array_equal(a_net[clear], a_ref[clear])
    assert_like(t_net.loss, t_ref.loss, "loss")
    n_net, n_ref = float(to_host(t_net.n_correct)), float(to_host(t_ref.n_correct))
    assert abs(n_net - n_ref) <= np.count_nonzero(~clear)
    for lname, d in g_ref.items():
        for p, g in d.items():
            assert_like(g_net[lname][p], g, f"grad {lname}.{p}")
    after_ref, after_net = ref.get_weights(), net.get_weights()
    for lname, arrays in after_ref.items():
        for aname, w in arrays.items():
            w0 = before[lname][aname]
            if aname in ("moving_mean", "moving_variance"):
                assert_like(after_net[lname][aname], w, f"{lname}.{aname}", rtol=1e-4)
            else:   # compare the updates, which are small next to the weights
                assert_like(after_net[lname][aname] - w0, w - w0, f"update of {lname}.{aname}")


@pytest.mark.parametrize("model", list(CASES))
def test_brainprop_training_step(device, model):
    compare_step(model, device, train=True)


@pytest.mark.parametrize("model", ["conv", "deep"])
def test_training_step_with_selection(device, model):
    """The counter-based draws: the GPU draws the CPU's dropout masks and exploration uniforms
    (in its own kernels), so the choices and the whole step agree with nothing fixed by hand."""
    compare_step(model, device, train=True, select=True, draw_masks=True)


# what a training step launches instead of the fused kernels (CuPy's elementwise work aside)
UNFUSED = ("select_actions", "softmax")


@pytest.mark.parametrize("model", list(CASES))
def test_training_step_takes_the_fused_kernels(emulator, monkeypatch, model):
    """rule.trial + SGD.step: one output-step launch, one update per trained array, no launch of its own
    for BatchNorm's running statistics, one per dropout layer's forward."""
    net = bp.build_network(model, CASES[model][0], 10, seed=3,
                           device=cuda_emulator.patch_gpu_kernels(monkeypatch, emulator))
    x, labels, _ = batch_data(model)
    emulator.launches.clear()
    run_step(bp.BrainProp(epsilon=0.02), net, x, labels, None, x.shape[0], True, PRESET_SETTINGS[model]["l2"])
    n_bn = sum(isinstance(layer, L.BatchNorm) for layer in net.layers)
    assert emulator.launches.get("brainprop_step_f32") == 1, emulator.launches
    n_sgd = emulator.launches.get("sgd_update_f32", 0) + emulator.launches.get("sgd_update_sumsq_f32", 0)
    assert n_sgd == len(list(net.trainable())), emulator.launches
    if PRESET_SETTINGS[model]["l2"]:   # the L2 term of the loss comes from the kernels' own updates
        assert emulator.launches.get("sgd_update_sumsq_f32") == sum(p == "kernel" for _, p, _ in net.trainable())
    # the running statistics are updated inside the statistics kernel, the dropout mask with y = x·mask
    assert emulator.launches.get("bn_update_moving_f32", 0) == 0, emulator.launches
    assert emulator.launches.get("bn_stats_f32", 0) == n_bn, emulator.launches
    n_drop = sum(isinstance(layer, L.Dropout) for layer in net.layers)
    assert emulator.launches.get("dropout_forward_f32", 0) == n_drop, emulator.launches
    assert emulator.launches.get("dropout_mask_f32", 0) == 0, emulator.launches
    assert not [k for k in emulator.launches if k.rsplit("_", 1)[0] in UNFUSED], emulator.launches


def test_brainprop_inference_mode_step(device):
    """train=False: running BatchNorm statistics, no dropout (the deterministic path)."""
    compare_step("conv", device, train=False)


@pytest.mark.parametrize("model", ["dense", "conv"])
def test_ebp_training_step(device, model):
    compare_step(model, device, train=True, algorithm="ebp")


def test_selection_on_the_device_is_deterministic(device):
    """Without given actions the GPU backend draws them in its kernels: same seed, same step."""
    results = []
    for _ in range(2):
        _, net = build_pair("conv", device)
        x, labels, _ = batch_data("conv")
        t, _ = run_step(bp.BrainProp(epsilon=0.5), net, x, labels, None, x.shape[0], True, 0.0)
        results.append((to_host(t.actions), to_host(net.get_weights()["conv2d"]["kernel"])))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("model", ["deep", "conv"])
def test_sgd_step_returns_the_l2_term(device, model):
    """SGD.step gives l2·ΣW² of the kernels before the update: on the CPU the bits of train's
    former _reg_loss, on the GPU backend the same to float32 tolerance, and None without L2."""
    import importlib
    L = importlib.import_module("brainprop_np.run.loop")
    ref, net = build_pair(model, device)
    x, labels, actions = batch_data(model)
    l2 = 5e-4
    for n in (ref, net):
        want = L.reg_loss(n, l2)
        total = None
        for _, pname, w in n.trainable():             # the former _reg_loss's sum, in W's dtype
            if pname == "kernel":
                s = n.xp.vdot(w.ravel(), w.ravel())
                total = s if total is None else total + s
        rule = bp.BrainProp(epsilon=0.02)
        rule.trial(n, n.backend.asarray(x), n.backend.asarray(labels, "int64"), train=False,
                   actions=n.backend.asarray(actions, "int64"), batch_size=x.shape[0])
        got = bp.SGD(lr=0.1, l2=l2).step(n, 0.1)
        if n is ref:
            assert np.asarray(got).dtype == np.float32 and got == np.float32(l2) * total
            if np.lib.NumpyVersion(np.__version__) >= "2.0.0":   # NEP 50: the bits of _reg_loss too
                assert got == want
        else:
            assert abs(float(to_host(got)) - float(to_host(want))) <= 1e-4 * float(to_host(want))   # float32 sums of 3M terms
        assert bp.SGD(lr=0.1, l2=0.0).step(n, 0.1) is None


UNTIED = ("random", "sign", "kolen_pollack", "dfa")


@pytest.mark.parametrize("mode", UNTIED)
@pytest.mark.parametrize("model", ["conv", "loccon"])
def test_untied_feedback_training_step(device, model, mode):
    """The same layer code with B in place of W (and sign's copysign, Kolen–Pollack's update of B,
    DFA's direct GEMMs): plain xp operations, so the GPU step equals the CPU step."""
    compare_step(model, device, train=True, feedback=mode, feedback_decay=0.01)


@pytest.mark.parametrize("mode", ["random", "dfa"])
def test_untied_feedback_ebp_step(device, mode):
    compare_step("dense", device, train=True, algorithm="ebp", feedback=mode)


def test_untied_feedback_sign_and_kp_on_the_device(device):
    """After a step, sign's B has the signs of the updated W, and KP's B moved with W."""
    from brainprop_np import feedback as F
    for mode in ("sign", "kolen_pollack"):
        _, net = build_pair("conv", device, feedback=mode)
        x, labels, actions = batch_data("conv")
        b0 = {l.name: to_host(l.params.get("feedback_kernel", l.state.get("feedback_kernel"))).copy()
              for l in net.layers if F.has_kernel(l)}
        run_step(bp.BrainProp(epsilon=0.02), net, x, labels, actions, x.shape[0], True, 0.0)
        run_step(bp.BrainProp(epsilon=0.02), net, x, labels, actions, x.shape[0], True, 0.0)
        for l in net.layers:
            if not F.has_kernel(l):
                continue
            if mode == "sign":
                l.refresh_sign()                        # what the next feedback does first (on the device)
            b = to_host(l.params.get("feedback_kernel", l.state.get("feedback_kernel")))
            if mode == "sign":
                w = to_host(l.params["kernel"])
                np.testing.assert_array_equal(np.signbit(b), np.signbit(w))
                np.testing.assert_allclose(np.abs(b), np.sqrt(np.mean(w.astype(np.float64) ** 2)), rtol=1e-5)
            if mode == "kolen_pollack":
                assert not np.array_equal(b, b0[l.name])
