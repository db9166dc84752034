"""BatchIterator: batches cover the permutation exactly, last partial batch kept, x = uint8/255."""
import numpy as np
import pytest

from brainprop_np.backend import get_backend
from brainprop_np.data import BatchIterator


def dataset(n=23, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 5, 3), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_epoch_covers_perm(dtype):
    x, y = dataset()
    it = BatchIterator(x, y, get_backend("cpu"), dtype)
    perm = np.random.default_rng(1).permutation(len(x))
    seen, sizes = [], []
    for xb, yb in it.epoch(5, perm):
        idx = perm[sum(sizes):sum(sizes) + len(xb)]
        assert xb.dtype == np.dtype(dtype) and xb.shape == (len(idx), 4, 5, 3)
        assert yb.dtype == np.int64
        np.testing.assert_array_equal(xb, x[idx].astype(dtype) / np.dtype(dtype).type(255))
        np.testing.assert_array_equal(yb, y[idx])
        sizes.append(len(xb))
        seen.append(yb.copy())
    assert sizes == [5, 5, 5, 5, 3] and it.n_batches(5) == 5 and len(it) == 23
    np.testing.assert_array_equal(np.concatenate(seen), y[perm])


def test_stored_order_without_perm():
    x, y = dataset(10)
    it = BatchIterator(x, y, "cpu")
    xs = [xb.copy() for xb, _ in it.epoch(4)]
    assert [len(b) for b in xs] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(xs), x.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in it.epoch(4)]), y)


def test_values_in_unit_range():
    x = np.array([0, 1, 128, 255], np.uint8).reshape(4, 1, 1, 1)
    xb, _ = next(BatchIterator(x, np.zeros(4, int), "cpu", "float64").epoch(4))
    np.testing.assert_array_equal(xb.ravel(), [0, 1 / 255, 128 / 255, 1.0])


def test_buffer_contract():
    """A batch stays intact until its generator advances; two live generators do not share."""
    x, y = dataset(8)
    it = BatchIterator(x, y, "cpu")
    g1, g2 = it.epoch(4), it.epoch(4, np.arange(8)[::-1])
    a, _ = next(g1)
    a_copy = a.copy()
    b, _ = next(g2)
    np.testing.assert_array_equal(a, a_copy)
    assert not np.shares_memory(a, b)
    g1.close(), g2.close()
    # a finished epoch's buffer is reused by the next one (no allocation per epoch)
    c, _ = next(it.epoch(4))
    assert np.shares_memory(c, a) or np.shares_memory(c, b)


def test_bad_arguments():
    x, y = dataset(6)
    with pytest.raises(ValueError, match="uint8"):
        BatchIterator(x.astype(np.float32), y, "cpu")
    with pytest.raises(ValueError, match="labels"):
        BatchIterator(x, y[:5], "cpu")
    with pytest.raises(ValueError, match="dtype"):
        BatchIterator(x, y, "cpu", "float16")
    it = BatchIterator(x, y, "cpu")
    with pytest.raises(ValueError, match="batch_size"):
        next(it.epoch(0))
    with pytest.raises(ValueError, match="outside 0..5"):
        next(it.epoch(2, np.array([0, 6])))
    with pytest.raises(ValueError, match="perm"):
        next(it.epoch(2, np.array([0.0, 1.0])))


@pytest.mark.gpu
def test_gpu_matches_cpu():
    cupy = pytest.importorskip("cupy")
    try:
        be = get_backend("gpu")
    except Exception as e:
        pytest.skip(f"no GPU: {e}")
    x, y = dataset(23)
    perm = np.random.default_rng(2).permutation(23)
    cpu = [(a.copy(), b) for a, b in BatchIterator(x, y, "cpu").epoch(5, perm)]
    gpu = list(BatchIterator(x, y, be).epoch(5, perm))
    assert len(cpu) == len(gpu)
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert isinstance(xg, cupy.ndarray) and xg.dtype == np.float32 and yg.dtype == np.int64
        np.testing.assert_array_equal(cupy.asnumpy(xg), xc)
        np.testing.assert_array_equal(cupy.asnumpy(yg), yc)
