"""CIFAR-10 / CIFAR-100: official-format tarballs written here load to the exact pixels and labels."""
import pickle
import tarfile

import numpy as np
import pytest

from brainprop_np import data
from brainprop_np.data import DataError
from data_fixtures import make_cifar10_tar, make_cifar100_tar, rows_to_images


def test_cifar10_exact(tmp_path):
    (tmp_path / "cifar10").mkdir()
    rows_tr, y_tr, rows_te, y_te, names = make_cifar10_tar(tmp_path / "cifar10" / "cifar-10-python.tar.gz")
    ds = data.load("cifar10", root=tmp_path, download=False)
    assert ds.x_train.shape == (30, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.x_test.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(ds.x_train, rows_to_images(rows_tr))
    np.testing.assert_array_equal(ds.x_test, rows_to_images(rows_te))
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)
    assert ds.classes == names and ds.name == "cifar10"


def test_channel_layout_by_hand(tmp_path):
    """Row bytes 0..1023 are the red plane, row-major: pixel (r, c) is byte r*32 + c."""
    rows_tr, *_ = make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz")
    ds = data.load("cifar10", root=tmp_path, download=False)
    row = rows_tr[0]
    assert ds.x_train[0, 0, 1, 0] == row[1]
    assert ds.x_train[0, 1, 0, 0] == row[32]
    assert ds.x_train[0, 2, 3, 1] == row[1024 + 2 * 32 + 3]
    assert ds.x_train[0, 31, 31, 2] == row[3071]


def test_cifar10_extracted_folder(tmp_path):
    tar = tmp_path / "cifar-10-python.tar.gz"
    rows_tr, y_tr, *_ = make_cifar10_tar(tar)
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tar) as tf:
        tf.extractall(tmp_path / "cifar10", filter="data")
    tar.unlink()
    ds = data.load("cifar10", root=tmp_path, download=False)
    np.testing.assert_array_equal(ds.x_train, rows_to_images(rows_tr))
    np.testing.assert_array_equal(ds.y_train, y_tr)
    ds2 = data.load("cifar10", root=tmp_path / "cifar10" / "cifar-10-batches-py", download=False)
    np.testing.assert_array_equal(ds2.y_train, y_tr)


@pytest.mark.parametrize("mode", ["fine", "coarse", None])
def test_cifar100_fine_and_coarse(tmp_path, mode):
    (tmp_path / "cifar100").mkdir()
    ref = make_cifar100_tar(tmp_path / "cifar100" / "cifar-100-python.tar.gz")
    ds = data.load("cifar100", root=tmp_path, download=False, label_mode=mode)
    key = mode or "fine"
    np.testing.assert_array_equal(ds.x_train, rows_to_images(ref["rows_train"]))
    np.testing.assert_array_equal(ds.x_test, rows_to_images(ref["rows_test"]))
    np.testing.assert_array_equal(ds.y_train, ref[f"{key}_train"])
    np.testing.assert_array_equal(ds.y_test, ref[f"{key}_test"])
    assert ds.classes == ref[f"{key}_names"] and ds.n_classes == (20 if key == "coarse" else 100)
    assert ds.label_mode == key


def test_bad_label_mode(tmp_path):
    with pytest.raises(ValueError, match="'fine' or 'coarse'"):
        data.load("cifar100", root=tmp_path, label_mode="superclass")


def _error(tmp_path, name="cifar10"):
    with pytest.raises(DataError) as e:
        data.load(name, root=tmp_path, download=False)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_missing_batch(tmp_path):
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", skip={"data_batch_3"})
    msg = _error(tmp_path)
    assert "cifar-10-python.tar.gz" in msg and "cifar-10-batches-py/data_batch_3 is missing" in msg


def test_cifar100_missing_meta(tmp_path):
    make_cifar100_tar(tmp_path / "cifar-100-python.tar.gz", skip={"meta"})
    assert "cifar-100-python/meta is missing" in _error(tmp_path, "cifar100")


def test_truncated_tarball(tmp_path):
    p = tmp_path / "cifar-10-python.tar.gz"
    make_cifar10_tar(p)
    p.write_bytes(p.read_bytes()[:3000])
    msg = _error(tmp_path)
    assert "cifar-10-python.tar.gz" in msg and ("truncated" in msg or "missing" in msg)


def test_wrong_row_size(tmp_path):
    bad = pickle.dumps({b"data": np.zeros((6, 3000), np.uint8), b"labels": [0] * 6}, protocol=2)
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", extra={"data_batch_2": bad})
    msg = _error(tmp_path)
    assert "data_batch_2" in msg and "(6, 3000)" in msg and "(N, 3072)" in msg


def test_label_out_of_range(tmp_path):
    bad = pickle.dumps({b"data": np.zeros((6, 3072), np.uint8), b"labels": [0, 1, 2, 3, 4, 10]})
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", extra={"test_batch": bad})
    msg = _error(tmp_path)
    assert "test_batch" in msg and "0..9" in msg


def test_missing_key(tmp_path):
    bad = pickle.dumps({b"data": np.zeros((6, 3072), np.uint8)})
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", extra={"data_batch_1": bad})
    assert "data_batch_1: key b'labels' is missing" in _error(tmp_path)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo should-not-run",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", extra={"batches.meta": pickle.dumps(_Evil())})
    msg = _error(tmp_path)
    assert "batches.meta" in msg and "refusing to load" in msg


def test_not_a_pickle(tmp_path):
    make_cifar10_tar(tmp_path / "cifar-10-python.tar.gz", extra={"data_batch_4": b"garbage"})
    assert "data_batch_4: not a valid CIFAR pickle" in _error(tmp_path)
