"""Downloads against a local HTTP server on 127.0.0.1: checksums, interrupted transfers,
mirrors, and the offline error message."""
import gzip
import hashlib
import os

import numpy as np
import pytest

from brainprop_np import data
from brainprop_np.data import DATASETS, DataError, download
from data_fixtures import IDX_FILES, local_server, make_cifar10_tar, make_idx_folder, rows_to_images

OFFLINE = "http://127.0.0.1:9/"   # the discard port: nothing listens there


def md5(b):
    return hashlib.md5(b).hexdigest()


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setattr(download, "VERBOSE", False)
    monkeypatch.setattr(download, "TIMEOUT", 5)


@pytest.fixture
def mnist_files(tmp_path, monkeypatch):
    """Generated MNIST-format files, and DATASETS['mnist'] checksums set to theirs."""
    arrays = make_idx_folder(tmp_path / "src")
    files = {f: (tmp_path / "src" / f).read_bytes() for f in IDX_FILES}
    info = DATASETS["mnist"]
    monkeypatch.setattr(info, "md5", {f: [md5(b)] for f, b in files.items()})
    monkeypatch.setattr(info, "gunzip_md5", {f: [md5(gzip.decompress(b))] for f, b in files.items()})
    return files, arrays


def test_download_then_load(tmp_path, mnist_files):
    files, arrays = mnist_files
    with local_server(files) as srv:
        ds = data.load("mnist", root=tmp_path / "data", mirrors=[srv.url])
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays[0])
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert sorted(os.listdir(tmp_path / "data" / "mnist")) == sorted(IDX_FILES)


def test_gunzipped_md5_is_accepted(tmp_path, mnist_files, monkeypatch):
    """Re-gzipped copies (like ../shared/datasets) pass by the MD5 of their uncompressed bytes."""
    files, _ = mnist_files
    monkeypatch.setattr(DATASETS["mnist"], "md5", {f: ["0" * 32] for f in files})
    with local_server(files) as srv:
        data.load("mnist", root=tmp_path, mirrors=[srv.url])
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(IDX_FILES)


def test_only_missing_files_are_fetched(tmp_path, mnist_files):
    files, _ = mnist_files
    (tmp_path / "mnist").mkdir()
    for f in IDX_FILES[:3]:
        (tmp_path / "mnist" / f).write_bytes(files[f])
    with local_server(files) as srv:
        data.load("mnist", root=tmp_path, mirrors=[srv.url])
    assert srv.requests == ["/" + IDX_FILES[3]]


def test_checksum_mismatch_leaves_nothing(tmp_path, mnist_files):
    files, _ = mnist_files
    bad = dict(files, **{IDX_FILES[0]: files[IDX_FILES[2]]})   # wrong content for train-images
    with local_server(bad) as srv, pytest.raises(DataError) as e:
        data.load("mnist", root=tmp_path, mirrors=[srv.url])
    msg = str(e.value)
    assert IDX_FILES[0] in msg and "checksum mismatch" in msg
    assert f"expected md5 {md5(files[IDX_FILES[0]])}" in msg and f"got md5 {md5(files[IDX_FILES[2]])}" in msg
    assert "\n" not in msg
    assert not (tmp_path / "mnist").exists() or os.listdir(tmp_path / "mnist") == []


def test_interrupted_transfer_leaves_nothing(tmp_path, mnist_files):
    files, _ = mnist_files
    with local_server(short=files) as srv, pytest.raises(DataError) as e:
        data.load("mnist", root=tmp_path, mirrors=[srv.url])
    msg = str(e.value)
    assert IDX_FILES[0] in msg and "interrupted" in msg and str(len(files[IDX_FILES[0]])) in msg
    assert not (tmp_path / "mnist").exists() or os.listdir(tmp_path / "mnist") == []


def test_interrupted_transfer_keeps_earlier_complete_files(tmp_path, mnist_files):
    files, _ = mnist_files
    good = {f: files[f] for f in IDX_FILES[:2]}
    short = {f: files[f] for f in IDX_FILES[2:]}
    with local_server(good, short) as srv, pytest.raises(DataError, match=IDX_FILES[2]):
        data.load("mnist", root=tmp_path, mirrors=[srv.url])
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(IDX_FILES[:2])   # verified ones only


def test_next_mirror_after_a_failure(tmp_path, mnist_files):
    files, arrays = mnist_files
    with local_server({}) as empty, local_server(files) as srv:
        ds = data.load("mnist", root=tmp_path, mirrors=[OFFLINE, empty.url, srv.url])
    np.testing.assert_array_equal(ds.y_train, arrays[1])


def test_http_404(tmp_path, mnist_files):
    with local_server({}) as srv, pytest.raises(DataError, match="HTTP error 404"):
        data.load("mnist", root=tmp_path, mirrors=[srv.url])


def test_offline_message(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("mnist", root=tmp_path, mirrors=[OFFLINE])
    msg = str(e.value)
    folder = str(tmp_path / "mnist")
    assert "cannot download train-images-idx3-ubyte.gz" in msg and "unreachable" in msg
    assert f"Expected in {folder}: " + ", ".join(IDX_FILES) in msg
    assert "get them from https://ossci-datasets.s3.amazonaws.com/mnist/ or " in msg
    assert "(see http://yann.lecun.com/exdb/mnist/)" in msg and "BRAINPROP_DATA" in msg
    assert "data.root=" in msg
    assert "\n" not in msg
    assert not (tmp_path / "mnist").exists()   # the folder this call made is removed again
    with pytest.raises(DataError):
        data.load("mnist", root=tmp_path / "a" / "b", mirrors=[OFFLINE])
    assert not (tmp_path / "a").exists()


def test_offline_via_module_mirrors(tmp_path, monkeypatch):
    monkeypatch.setattr(DATASETS["fashion_mnist"], "mirrors", [OFFLINE])
    with pytest.raises(DataError, match="fashion_mnist.*Expected in"):
        data.load("fashion_mnist", root=tmp_path)


def test_download_false_message(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("cifar10", root=tmp_path, download=False)
    msg = str(e.value)
    assert "cifar-10-python.tar.gz" in msg and str(tmp_path / "cifar10") in msg
    assert "https://www.cs.toronto.edu/~kriz/" in msg and "download=False" in msg
    assert "data.download=true" in msg and "data.root=" in msg and "\n" not in msg


def test_cifar_download(tmp_path, monkeypatch):
    src = tmp_path / "cifar-10-python.tar.gz"
    rows_tr, y_tr, *_ = make_cifar10_tar(src)
    blob = src.read_bytes()
    monkeypatch.setattr(DATASETS["cifar10"], "md5", {src.name: [md5(blob)]})
    with local_server({src.name: blob}) as srv:
        ds = data.load("cifar10", root=tmp_path / "data", mirrors=[srv.url])
    np.testing.assert_array_equal(ds.x_train, rows_to_images(rows_tr))
    assert os.listdir(tmp_path / "data" / "cifar10") == [src.name]


def test_fetch_directly(tmp_path):
    blob = b"hello" * 1000
    with local_server({"f.bin": blob}) as srv:
        p = download.fetch("f.bin", tmp_path / "x", [srv.url], md5=[md5(blob)])
        assert p.read_bytes() == blob
        with pytest.raises(DataError, match="f.bin.*expected md5 " + "0" * 32):
            download.fetch("f.bin", tmp_path / "y", [srv.url], md5=["0" * 32])
    assert os.listdir(tmp_path / "y") == []
