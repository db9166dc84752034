"""Real MNIST / Fashion-MNIST from ../shared/datasets (or $BRAINPROP_DATA); skipped when absent.
Also the MNIST sample shipped in the package."""

import numpy as np
import pytest

from brainprop_np import data
from shared_data import SHARED as WORKSPACE, dataset_roots

SHARED = WORKSPACE / "datasets"

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def real(name):
    """The dataset from $BRAINPROP_DATA or ../shared/datasets, or skip."""
    for root in dataset_roots():
        try:
            return data.load(name, root=root, download=False)
        except data.DataError:
            continue
    pytest.skip(f"real {name} not found in $BRAINPROP_DATA or {SHARED}")


@pytest.fixture(scope="module")
def mnist():
    return real("mnist")


def test_mnist(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_test.shape == (10000, 28, 28, 1)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.int64
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert round(float(mnist.x_train.mean()) / 255, 4) == 0.1307


def test_fashion_mnist():
    ds = real("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top"


def test_shared_root_forms():
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"{SHARED / 'mnist'} not present")
    a = data.load("mnist", root=SHARED / "mnist", download=False)
    b = data.load("mnist", root=SHARED, download=False)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_mnist_sample():
    s = data.load("mnist_sample", root="/nonexistent", download=False)
    assert s.x_train.shape == (5000, 28, 28, 1) and s.x_test.shape == (1000, 28, 28, 1)
    assert s.x_train.dtype == np.uint8 and s.y_train.dtype == np.int64 and s.name == "mnist_sample"
    assert set(np.unique(s.y_train)) == set(range(10))
    from brainprop_np.data.mnist import SAMPLE
    assert SAMPLE.stat().st_size <= 1.5e6


def test_mnist_sample_is_the_first_images(mnist):
    s = data.load("mnist_sample")
    np.testing.assert_array_equal(s.x_train, mnist.x_train[:5000])
    np.testing.assert_array_equal(s.y_train, mnist.y_train[:5000])
    np.testing.assert_array_equal(s.x_test, mnist.x_test[:1000])
    np.testing.assert_array_equal(s.y_test, mnist.y_test[:1000])
