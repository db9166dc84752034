"""Finite-difference checks (float64) of every layer's feedback and tags."""
import numpy as np
import pytest

from brainprop_np import layers as L
from brainprop_np.backend import get_backend
from brainprop_np.teach.gradcheck import check_layer

TOL = 1e-6
pytestmark = pytest.mark.usefixtures("kernel_set")   # each check on the reference and the fast kernels


def build(layer, input_shape, seed=0, std=0.3):
    """Build `layer` in float64 on the CPU with weights large enough to matter."""
    layer.name = "under_test"
    if hasattr(layer, "init_std"):
        layer.init_std = std
    layer.build(input_shape, get_backend("cpu"), np.dtype("float64"), np.random.default_rng(seed))
    return layer


def rand(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_small(errs):
    for name, e in errs.items():
        assert e < TOL, f"{name}: relative error {e:.2e}"


def test_dense():
    layer = build(L.Dense(7), (5,))
    assert_small(check_layer(layer, rand((4, 5))))


def test_output_layer():
    layer = build(L.Output(3), (6,))
    assert_small(check_layer(layer, rand((4, 6))))


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("size", [7, 8])
def test_conv2d(padding, stride, kernel, size):
    layer = build(L.Conv2D(3, kernel=kernel, stride=stride, padding=padding), (size, size + 1, 2))
    assert_small(check_layer(layer, rand((2, size, size + 1, 2)), n_samples=30))


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_locally_connected2d(padding, stride, size):
    layer = build(L.LocallyConnected2D(3, kernel=3, stride=stride, padding=padding), (size, size, 2))
    assert_small(check_layer(layer, rand((3, size, size, 2)), n_samples=30))


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm(train):
    layer = build(L.BatchNorm(), (4, 3, 5))
    rng = np.random.default_rng(3)
    layer.params["gamma"][...] = rng.uniform(0.5, 1.5, 5)
    layer.params["beta"][...] = rng.standard_normal(5)
    layer.state["moving_mean"][...] = rng.standard_normal(5)
    layer.state["moving_variance"][...] = rng.uniform(0.5, 2.0, 5)
    assert_small(check_layer(layer, rand((3, 4, 3, 5)) * 2 + 1, train=train))


def test_batchnorm_on_flat_input():
    layer = build(L.BatchNorm(), (6,))
    assert_small(check_layer(layer, rand((8, 6)), train=True))


@pytest.mark.parametrize("size", [(6, 6), (7, 5)])
def test_maxpool_without_ties(size):
    layer = build(L.MaxPool2D(2), size + (3,))
    n = 2 * size[0] * size[1] * 3
    x = np.random.default_rng(4).permutation(n).reshape((2,) + size + (3,)) * 0.1
    assert_small(check_layer(layer, x.astype(np.float64)))


def test_dropout_with_fixed_mask():
    layer = build(L.Dropout(0.4), (10,))
    mask = (np.random.default_rng(5).random((4, 10)) >= 0.4) / 0.6
    layer.fixed_mask = mask
    x = rand((4, 10))
    assert_small(check_layer(layer, x, train=True))
    assert np.array_equal(layer.forward(x, True), x * mask)
    assert np.array_equal(layer.forward(x, False), x)


def test_relu_away_from_zero():
    layer = build(L.ReLU(), (12,))
    x = rand((5, 12))
    x[np.abs(x) < 0.05] = 0.5
    assert_small(check_layer(layer, x))


def test_flatten():
    layer = build(L.Flatten(), (3, 2, 4))
    assert_small(check_layer(layer, rand((2, 3, 2, 4))))
