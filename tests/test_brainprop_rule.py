"""The BrainProp rule: the update is SGD on ½δ² of the chosen unit, selection statistics,
the per-trial δ·tag form, determinism; the optimiser's schedule and L2."""
import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np.teach.gradcheck import rule_loss
from brainprop_np.kernels import cpu


def conv_net(dtype="float64", seed=3, algorithm="brainprop"):
    net = bp.build_network("conv", (8, 8, 1), 5, seed=seed, device="cpu", dtype=dtype,
                           algorithm=algorithm, init_std=0.2)
    for layer in net.layers:
        if isinstance(layer, bp.layers.Dropout):
            layer.rate = 0.0
    return net


def batch(b=8, seed=0, n_classes=5):
    rng = np.random.default_rng(seed)
    return rng.random((b, 8, 8, 1)), rng.integers(0, n_classes, b)


def test_only_the_chosen_unit_gets_feedback_and_tags():
    net = conv_net()
    x, labels = batch()
    actions = np.array([0, 0, 1, 1, 0, 1, 0, 1])       # units 2..4 never chosen
    grads = bp.BrainProp().gradients(net, x, labels, actions=actions, train=True)
    g_out = grads["brain_prop_layer"]["kernel"]
    assert np.all(g_out[:, 2:] == 0)
    assert np.abs(g_out[:, :2]).max() > 0
    q = net.forward(x, True)
    _, delta, fb = cpu.brainprop_output(q, labels, actions, 1.0 / len(x))
    assert np.count_nonzero(fb) == np.count_nonzero(delta)
    assert np.all(fb[np.arange(len(x)), actions] == -delta / len(x))


@pytest.mark.parametrize("train", [True, False])
def test_grads_are_gradient_of_half_delta_squared(train):
    """Analytic grads equal the finite-difference gradient of mean ½(r − Q_a)² (spot check)."""
    net = conv_net()
    x, labels = batch()
    actions = labels.copy()
    actions[:3] = (actions[:3] + 1) % 5
    rule = bp.BrainProp()
    grads = rule.gradients(net, x, labels, actions=actions, train=train)
    w = net.layers[0].params["kernel"]
    flat, eps = w.reshape(-1), 1e-6
    for i in range(0, w.size, 37):
        old = flat[i]
        flat[i] = old + eps
        lp = rule_loss(net, rule, x, labels, actions, train)
        flat[i] = old - eps
        lm = rule_loss(net, rule, x, labels, actions, train)
        flat[i] = old
        assert abs((lp - lm) / (2 * eps) - grads["conv2d"]["kernel"].reshape(-1)[i]) < 1e-7


@pytest.mark.parametrize("train", [True, False])
def test_per_trial_delta_times_tag_equals_folded_update(train):
    """ΔW = (1/B) Σ_b δ_b · tag_b, with tag_b from an unscaled one-hot feedback of trial b."""
    net = conv_net()
    x, labels = batch()
    actions = labels.copy()
    actions[::3] = (actions[::3] + 2) % 5
    b = len(x)
    folded = bp.BrainProp().gradients(net, x, labels, actions=actions, train=train)
    folded = {l: {p: -g.copy() for p, g in d.items()} for l, d in folded.items()}   # ΔW/lr = −∂L/∂W
    q = net.forward(x, train)
    reward = (actions == labels).astype(float)
    delta = reward - q[np.arange(b), actions]
    per_trial = {l: {p: np.zeros_like(g) for p, g in d.items()} for l, d in folded.items()}
    for i in range(b):
        fb = np.zeros_like(q)
        fb[i, actions[i]] = 1.0                          # attention on trial i's chosen unit
        net.feedback(fb)
        for lname, d in net.grads().items():
            for p, tag in d.items():
                per_trial[lname][p] += delta[i] * tag / b
    for lname in folded:
        for p in folded[lname]:
            np.testing.assert_allclose(per_trial[lname][p], folded[lname][p], rtol=1e-10, atol=1e-13)


def test_selection_statistics():
    """P(argmax) = (1 − ε) + ε·softmax(q)_argmax; explored actions follow softmax(q)."""
    rng = np.random.default_rng(11)
    q = np.array([[0.2, 1.0, -0.5, 0.4]] * 200_000, dtype=np.float32)
    p = cpu.softmax(q[:1].astype(np.float64))[0]
    for eps in (0.02, 0.5):
        a = cpu.select_actions(q, eps, rng.random(len(q), dtype=np.float32), rng.random(len(q), dtype=np.float32))
        freq = np.bincount(a, minlength=4) / len(q)
        expected = eps * p
        expected[1] += 1 - eps
        sigma = np.sqrt(expected * (1 - expected) / len(q))
        assert np.all(np.abs(freq - expected) < 5 * sigma), (eps, freq, expected)


def test_rule_selection_uses_network_rng_and_inference_is_argmax():
    net = conv_net(dtype="float32")
    x, labels = batch(b=64)
    rule = bp.BrainProp(epsilon=1.0)                     # always explore in training
    t_inf = rule.trial(net, x, labels, train=False)
    q = net.forward(x, False)
    assert np.array_equal(t_inf.actions, q.argmax(axis=1))
    t_train = rule.trial(net, x, labels, train=True)
    assert not np.array_equal(t_train.actions, t_train.q.argmax(axis=1))   # 64 draws, all argmax is ~impossible
    t_greedy = bp.BrainProp(epsilon=0.0).trial(net, x, labels, train=True)
    assert np.array_equal(t_greedy.actions, t_greedy.q.argmax(axis=1))


def _train_steps(seed, steps=3):
    net = bp.build_network("conv", (8, 8, 1), 5, seed=seed, device="cpu", dtype="float32")
    rule, opt = bp.BrainProp(), bp.SGD(lr=0.1)
    x, labels = batch(b=16, seed=5)
    x = x.astype(np.float32)
    out = []
    for _ in range(steps):
        t = rule.trial(net, x, labels, train=True, batch_size=16)
        opt.step(net, 0.1)
        out.append(t.actions.copy())
    return net.get_weights(), out


def test_same_seed_same_results():
    w1, a1 = _train_steps(1)
    w2, a2 = _train_steps(1)
    w3, _ = _train_steps(2)
    for l in w1:
        for p in w1[l]:
            assert np.array_equal(w1[l][p], w2[l][p])
    assert all(np.array_equal(a, b) for a, b in zip(a1, a2))
    assert not np.array_equal(w1["conv2d"]["kernel"], w3["conv2d"]["kernel"])


def test_nominal_batch_size_scales_the_last_batch():
    net = conv_net()
    x, labels = batch(b=4)
    actions = labels.copy()
    g4 = bp.BrainProp().gradients(net, x, labels, actions=actions, train=False)["dense"]["kernel"].copy()
    g16 = bp.BrainProp().gradients(net, x, labels, actions=actions, train=False, batch_size=16)["dense"]["kernel"]
    np.testing.assert_allclose(g16 * 4, g4, rtol=1e-12)


def test_sgd_schedule_and_l2():
    opt = bp.SGD(lr=0.1, l2=5e-4, halve_every=100)
    assert opt.lr_at(0) == 0.1 and opt.lr_at(99) == 0.1
    assert opt.lr_at(100) == 0.05 and opt.lr_at(250) == 0.025
    net = conv_net()
    x, labels = batch()
    bp.BrainProp().gradients(net, x, labels, actions=labels, train=False)
    before = {(l.name, p): w.copy() for l, p, w in net.trainable()}
    grads = {(l.name, p): l.grads[p].copy() for l, p, _ in net.trainable()}
    opt.step(net, 0.1)
    for layer, p, w in net.trainable():
        w0, g = before[(layer.name, p)], grads[(layer.name, p)]
        expected = w0 - 0.1 * (g + 2 * 5e-4 * w0) if p == "kernel" else w0 - 0.1 * g
        np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-15)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="model='nope' is not a preset"):
        bp.build_network("nope", (8, 8, 1), 10, device="cpu")
    with pytest.raises(ValueError, match="unknown key 'filter'"):
        bp.build_network([{"type": "conv2d", "filter": 3}], (8, 8, 1), 10, device="cpu")
    with pytest.raises(ValueError, match="kernel=4"):
        bp.build_network([{"type": "conv2d", "filters": 3, "kernel": 4}, {"type": "flatten"}], (8, 8, 1), 10, device="cpu")
    with pytest.raises(ValueError, match="epsilon"):
        bp.BrainProp(epsilon=2)
    with pytest.raises(ValueError, match="dtype"):
        bp.build_network("dense", (8, 8, 1), 10, device="cpu", dtype="float16")
