"""Tiny ImageNet: a small zip / folder in the official layout loads to the expected pixels.

Expected pixels are what Pillow decodes from the very same JPEG bytes (RGB conversion
for the greyscale ones), so the comparison is exact (no tolerance).
"""
import os

import numpy as np
import pytest

from brainprop_np import data
from brainprop_np.data import DataError, tinyimagenet
from data_fixtures import jpeg_bytes, tiny_members, write_tiny_folder, write_tiny_zip


def check_same(ds, ref):
    for k in ("x_train", "y_train", "x_test", "y_test"):
        got = getattr(ds, k)
        assert got.dtype == (np.uint8 if k[0] == "x" else np.int64), k
        np.testing.assert_array_equal(got, ref[k], err_msg=k)
    assert ds.classes == ref["classes"] and ds.wnids == ref["wnids"] and ds.name == "tinyimagenet"


def make_zip(tmp_path, **kw):
    folder = tmp_path / "tinyimagenet"
    folder.mkdir()
    files, ref = tiny_members(**kw)
    write_tiny_zip(folder / "tiny-imagenet-200.zip", files)
    return folder, ref


def test_zip_exact_and_greyscale_to_rgb(tmp_path):
    folder, ref = make_zip(tmp_path)
    ds = data.load("tinyimagenet", root=tmp_path, download=False)
    check_same(ds, ref)
    assert ds.x_train.shape == (6, 64, 64, 3) and ds.x_test.shape == (5, 64, 64, 3)
    grey = ds.x_train[1]   # class 0, image 1 was written as a greyscale JPEG
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 0] == grey[..., 2]).all()
    # labels follow wnids.txt order (not sorted order): class 0 is n03000000
    assert list(ds.y_train) == [0, 0, 1, 1, 2, 2] and ds.wnids[0] == "n03000000"


def test_cache_written_atomically_and_used(tmp_path, monkeypatch):
    folder, ref = make_zip(tmp_path)
    data.load("tinyimagenet", root=tmp_path, download=False)
    assert sorted(os.listdir(folder)) == ["tiny-imagenet-200.npz", "tiny-imagenet-200.zip"]

    def no_decode(*a, **k):
        raise AssertionError("decoded again although the cache is valid")
    monkeypatch.setattr(tinyimagenet, "decode_source", no_decode)
    check_same(data.load("tinyimagenet", root=tmp_path, download=False), ref)
    (folder / "tiny-imagenet-200.zip").unlink()   # the cache alone is enough
    check_same(data.load("tinyimagenet", root=tmp_path, download=False), ref)


def test_cache_rebuilt_when_source_changes(tmp_path):
    folder, _ = make_zip(tmp_path)
    data.load("tinyimagenet", root=tmp_path, download=False)
    files, ref2 = tiny_members(seed=7)
    write_tiny_zip(folder / "tiny-imagenet-200.zip", files)
    st = (folder / "tiny-imagenet-200.zip").stat()
    os.utime(folder / "tiny-imagenet-200.zip", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    check_same(data.load("tinyimagenet", root=tmp_path, download=False), ref2)


def test_extracted_folder(tmp_path):
    files, ref = tiny_members()
    write_tiny_folder(tmp_path / "tinyimagenet" / "tiny-imagenet-200", files)
    check_same(data.load("tinyimagenet", root=tmp_path, download=False), ref)
    assert (tmp_path / "tinyimagenet" / "tiny-imagenet-200.npz").is_file()
    # root pointing straight at the extracted folder works too
    check_same(data.load("tinyimagenet", root=tmp_path / "tinyimagenet" / "tiny-imagenet-200",
                         download=False), ref)


def _error(tmp_path, files):
    folder = tmp_path / "tinyimagenet"
    folder.mkdir()
    write_tiny_zip(folder / "tiny-imagenet-200.zip", files)
    with pytest.raises(DataError) as e:
        data.load("tinyimagenet", root=tmp_path, download=False)
    assert os.listdir(folder) == ["tiny-imagenet-200.zip"]   # no cache, no temporary file
    assert "\n" not in str(e.value)
    return str(e.value)


def test_annotation_with_unknown_class(tmp_path):
    files, _ = tiny_members(annotations="val_0.JPEG\tn03000000\t0\t0\t1\t1\n"
                                        "val_1.JPEG\tn07777777\t0\t0\t1\t1\n")
    msg = _error(tmp_path, files)
    assert "val_annotations.txt" in msg and "line 2" in msg and "n07777777" in msg and "wnids.txt" in msg


def test_annotation_with_missing_fields(tmp_path):
    files, _ = tiny_members(annotations="val_0.JPEG n03000000 0 0 1 1\n")
    assert "val_annotations.txt: line 1 has 1 tab-separated fields" in _error(tmp_path, files)


def test_annotation_naming_a_missing_image(tmp_path):
    files, _ = tiny_members()
    del files["val/images/val_3.JPEG"]
    assert "names val_3.JPEG, which is not in val/images" in _error(tmp_path, files)


def test_corrupt_jpeg(tmp_path):
    files, _ = tiny_members()
    files["train/n01000000/images/n01000000_1.JPEG"] = jpeg_bytes(np.zeros((64, 64, 3), np.uint8))[:200]
    msg = _error(tmp_path, files)
    assert "train/n01000000/images/n01000000_1.JPEG" in msg and "cannot decode" in msg


def test_wrong_image_size(tmp_path):
    files, _ = tiny_members()
    files["val/images/val_2.JPEG"] = jpeg_bytes(np.zeros((32, 48, 3), np.uint8))
    assert "val/images/val_2.JPEG: image is 48x32, expected 64x64" in _error(tmp_path, files)


def test_train_class_not_in_wnids(tmp_path):
    files, _ = tiny_members()
    files["train/n05555555/images/n05555555_0.JPEG"] = files["train/n01000000/images/n01000000_0.JPEG"]
    assert "class n05555555 is not listed in wnids.txt" in _error(tmp_path, files)


def test_zip_without_wnids(tmp_path):
    files, _ = tiny_members()
    del files["wnids.txt"]
    assert "tiny-imagenet-200/wnids.txt is missing" in _error(tmp_path, files)


def test_not_a_zip(tmp_path):
    (tmp_path / "tiny-imagenet-200.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="tiny-imagenet-200.zip: not a valid zip file"):
        data.load("tinyimagenet", root=tmp_path, download=False)
