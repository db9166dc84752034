"""MNIST / Fashion-MNIST: gzipped IDX files written here load to the exact pixels and labels."""
import gzip

import numpy as np
import pytest

from brainprop_np import data
from brainprop_np.data import DataError
from data_fixtures import IDX_FILES, idx_bytes, make_idx_folder, write_idx_gz


def check_same(ds, arrays):
    x_tr, y_tr, x_te, y_te = arrays
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == x_tr.shape + (1,)
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[..., 0], x_tr)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.x_test[..., 0], x_te)
    np.testing.assert_array_equal(ds.y_test, y_te)


def test_mnist_from_root_with_subfolder(tmp_path):
    arrays = make_idx_folder(tmp_path / "mnist")
    ds = data.load("mnist", root=tmp_path, download=False)
    check_same(ds, arrays)
    assert ds.name == "mnist" and ds.classes == [str(i) for i in range(10)]
    assert ds.input_shape == (28, 28, 1) and ds.n_classes == 10


def test_root_pointing_at_the_files(tmp_path):
    arrays = make_idx_folder(tmp_path / "somewhere")
    check_same(data.load("mnist", root=tmp_path / "somewhere", download=False), arrays)


def test_fashion_mnist_folder_names_and_alias(tmp_path):
    arrays = make_idx_folder(tmp_path / "fashion-mnist", seed=3)
    ds = data.load("fashion_mnist", root=tmp_path, download=False)
    check_same(ds, arrays)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    check_same(data.load("fashion-mnist", root=tmp_path, download=False), arrays)
    other = make_idx_folder(tmp_path / "fashion_mnist", seed=4)   # the primary name comes first
    check_same(data.load("fashion_mnist", root=tmp_path, download=False), other)


def test_mnist_folder_does_not_serve_as_fashion_mnist(tmp_path):
    make_idx_folder(tmp_path / "mnist")
    with pytest.raises(DataError, match="fashion_mnist"):
        data.load("fashion_mnist", root=tmp_path / "mnist", download=False)


def test_env_var_is_the_default_root(tmp_path, monkeypatch):
    arrays = make_idx_folder(tmp_path / "mnist")
    monkeypatch.setenv("BRAINPROP_DATA", str(tmp_path))
    assert data.default_root() == tmp_path
    check_same(data.load("mnist", download=False), arrays)


def test_default_root_without_env(monkeypatch):
    monkeypatch.delenv("BRAINPROP_DATA", raising=False)
    assert str(data.default_root()).endswith(".cache/brainprop_np")


def test_missing_files_without_download(tmp_path):
    make_idx_folder(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        data.load("mnist", root=tmp_path, download=False)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and str(tmp_path / "mnist") in msg
    assert "download=False" in msg and "\n" not in msg
    assert "data.download=true" in msg and "data.root=" in msg     # the config keys to type


def test_unknown_name_and_label_mode():
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10, cifar100, tinyimagenet"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="label_mode"):
        data.load("mnist", label_mode="coarse")


def _corrupt(tmp_path, name, content):
    make_idx_folder(tmp_path / "mnist")
    (tmp_path / "mnist" / name).write_bytes(content)
    with pytest.raises(DataError) as e:
        data.load("mnist", root=tmp_path, download=False)
    assert isinstance(e.value, RuntimeError)
    msg = str(e.value)
    assert name in msg and "\n" not in msg
    return msg


def test_truncated_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((30, 28, 28), np.uint8)))
    assert "truncated" in _corrupt(tmp_path, IDX_FILES[0], good[:len(good) // 2])


def test_not_gzip(tmp_path):
    assert "not a gzip" in _corrupt(tmp_path, IDX_FILES[2], idx_bytes(np.zeros((12, 28, 28), np.uint8)))


def test_wrong_magic(tmp_path):
    # a label file where images are expected: magic 0x00000801 instead of 0x00000803
    msg = _corrupt(tmp_path, IDX_FILES[0], gzip.compress(idx_bytes(np.zeros(30, np.uint8))))
    assert "magic" in msg and "0x00000801" in msg and "0x00000803" in msg


def test_declared_size_larger_than_data(tmp_path):
    raw = idx_bytes(np.zeros((30, 28, 28), np.uint8))[:-100]
    msg = _corrupt(tmp_path, IDX_FILES[0], gzip.compress(raw))
    assert "declares 30x28x28" in msg and str(30 * 28 * 28 - 100) in msg


def test_label_count_mismatch(tmp_path):
    msg = _corrupt(tmp_path, IDX_FILES[1], gzip.compress(idx_bytes(np.zeros(29, np.uint8))))
    assert "29 labels" in msg and "30 images" in msg


def test_label_out_of_range(tmp_path):
    msg = _corrupt(tmp_path, IDX_FILES[3], gzip.compress(idx_bytes(np.full(12, 10, np.uint8))))
    assert "label 10" in msg


def test_non_square_idx_shape_is_kept(tmp_path):
    """The declared dims are honoured (no hard-coded 28x28 in the parser)."""
    from brainprop_np.data.idx import read_idx_gz
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx_gz(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(read_idx_gz(tmp_path / "a.gz", 3), a)
