"""Whole-network finite-difference checks of both rules on all four presets (float64)."""
import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np.teach.gradcheck import check_network

SHAPES = {"dense": (6, 6, 1), "conv": (8, 8, 1), "loccon": (8, 8, 1), "deep": (8, 8, 2)}
TOL = 1e-5
pytestmark = pytest.mark.usefixtures("kernel_set")   # each check on the reference and the fast kernels


def small_net(model, algorithm, seed=1):
    """A preset on a small input, weights scaled up so that signals are O(1), no dropout."""
    net = bp.build_network(model, SHAPES[model], 4, seed=seed, device="cpu", dtype="float64",
                           algorithm=algorithm, init_std=0.3)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, bp.layers.Dropout):
            layer.rate = 0.0
        if isinstance(layer, bp.layers.BatchNorm):
            c = layer.params["gamma"].shape[0]
            layer.params["gamma"][...] = rng.uniform(0.5, 1.5, c)
            layer.params["beta"][...] = rng.uniform(0.0, 0.5, c)
            layer.state["moving_mean"][...] = rng.uniform(0.0, 0.5, c)
            layer.state["moving_variance"][...] = rng.uniform(0.5, 2.0, c)
    for layer, pname, w in net.trainable():
        if pname == "kernel":   # unit-scale signals: std 1.5/sqrt(fan-in), so the loss is O(1)
            fan_in = w.shape[1] if w.ndim == 3 else int(np.prod(w.shape[:-1]))
            w[...] = rng.standard_normal(w.shape) * 1.5 / np.sqrt(fan_in)
    return net


@pytest.mark.parametrize("train", [True, False], ids=["train_bn", "inference"])
@pytest.mark.parametrize("rule_name", ["brainprop", "ebp"])
@pytest.mark.parametrize("model", ["dense", "conv", "loccon", "deep"])
def test_whole_network(model, rule_name, train):
    net = small_net(model, rule_name)
    rule = bp.make_rule(rule_name)
    rng = np.random.default_rng(7)
    b = 6
    x = rng.random((b,) + SHAPES[model])
    labels = rng.integers(0, 4, b)
    actions = labels.copy()
    actions[::2] = (labels[::2] + 1) % 4       # half the trials rewarded, half not
    errs = check_network(net, rule, x, labels, actions, train=train)
    bad = {k: v for k, v in errs.items() if v > TOL}
    assert not bad, bad
    assert len(errs) == sum(1 for _ in net.trainable()) + 1
