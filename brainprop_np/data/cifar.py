"""CIFAR-10 and CIFAR-100 from the official python tarballs (or their extracted folders).

Each batch is a pickle of a dict with b'data' (uint8 (N, 3072), rows channel-first:
1024 R, 1024 G, 1024 B, each 32x32 row-major) and labels (b'labels' for CIFAR-10,
b'fine_labels' / b'coarse_labels' for CIFAR-100); the meta pickle holds the class names.
"""
import tarfile
import zlib
from pathlib import Path

import numpy as np

from . import safe_pickle
from .dataset import Dataset
from .errors import DataError

LAYOUTS = {
    "cifar10": {"archive": "cifar-10-python.tar.gz", "dir": "cifar-10-batches-py",
                "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
                "meta": "batches.meta",
                "modes": {"fine": ("labels", "label_names", 10)}},
    "cifar100": {"archive": "cifar-100-python.tar.gz", "dir": "cifar-100-python",
                 "train": ["train"], "test": ["test"], "meta": "meta",
                 "modes": {"fine": ("fine_labels", "fine_label_names", 100),
                           "coarse": ("coarse_labels", "coarse_label_names", 20)}},
}


def _members(lay):
    return lay["train"] + lay["test"] + [lay["meta"]]


def find_source(folder, name):
    """The tarball, the extracted folder, or `folder` itself when it is that folder; else None."""
    lay, folder = LAYOUTS[name], Path(folder)
    if (folder / lay["archive"]).is_file():
        return folder / lay["archive"]
    for d in (folder / lay["dir"], folder):
        if all((d / m).is_file() for m in _members(lay)):
            return d
    return None


def present(folder, name):
    return find_source(folder, name) is not None


def missing(folder, name):
    return [] if present(folder, name) else [LAYOUTS[name]["archive"]]


def _read_tar(path, lay):
    """{member: bytes} for the batch and meta members of the tarball at `path`."""
    want = {f"{lay['dir']}/{m}": m for m in _members(lay)}
    got = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for info in tf:
                key = info.name[2:] if info.name.startswith("./") else info.name
                if key in want and info.isfile():
                    got[want[key]] = tf.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated tar.gz ({type(e).__name__}: {e})") from None
    lost = [k for k, m in want.items() if m not in got]
    if lost:
        raise DataError(f"{path}: member {', '.join(lost)} is missing "
                        f"(expected {', '.join(want)})")
    return {m: (got[m], f"{path}:{lay['dir']}/{m}") for m in want.values()}


def _read_dir(path, lay):
    out = {}
    for m in _members(lay):
        try:
            out[m] = ((path / m).read_bytes(), str(path / m))
        except OSError as e:
            raise DataError(f"{path / m}: cannot be read ({e.strerror or e})") from None
    return out


def _unpickle(data, where):
    """The dict in a CIFAR pickle, keys decoded to str."""
    try:
        d = safe_pickle.loads(data)
    except Exception as e:  # any unpickling failure means a corrupt member
        raise DataError(f"{where}: not a valid CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{where}: holds a {type(d).__name__}, expected a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}


def _get(d, key, where):
    if key not in d:
        raise DataError(f"{where}: key b'{key}' is missing (it has {', '.join(sorted(map(str, d)))})")
    return d[key]


def _batches(members, names, label_key, n_classes):
    """x uint8 (N, 32, 32, 3) and y int64 (N,) from the batch pickles `names`, in order."""
    parts = []
    for m in names:
        data, where = members[m]
        d = _unpickle(data, where)
        x = _get(d, "data", where)
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{where}: data is {desc}, expected uint8 (N, 3072)")
        try:
            y = np.asarray(_get(d, label_key, where), dtype=np.int64)
        except (TypeError, ValueError) as e:
            raise DataError(f"{where}: {label_key} are not integers ({e})") from None
        if y.shape != (len(x),):
            raise DataError(f"{where}: {label_key} has shape {y.shape}, expected ({len(x)},) like data")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DataError(f"{where}: {label_key} holds {int(y.min())}..{int(y.max())}, "
                            f"expected 0..{n_classes - 1}")
        parts.append((x, y))
    n = sum(len(x) for x, _ in parts)
    x_all = np.empty((n, 32, 32, 3), np.uint8)
    i = 0
    for x, _ in parts:
        x_all[i:i + len(x)] = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        i += len(x)
    return x_all, np.concatenate([y for _, y in parts])


def read_cifar(folder, name, label_mode=None):
    """Dataset from the CIFAR-10/100 tarball (or extracted folder) in `folder`.

    label_mode: CIFAR-100 only, 'fine' (100 classes, default) or 'coarse' (20 superclasses).
    """
    lay = LAYOUTS[name]
    mode = label_mode or "fine"
    label_key, names_key, n_classes = lay["modes"][mode]
    source = find_source(folder, name)
    if source is None:
        raise DataError(f"{Path(folder) / lay['archive']}: not found")
    members = _read_tar(source, lay) if source.is_file() else _read_dir(source, lay)
    data, where = members[lay["meta"]]
    meta = _unpickle(data, where)
    raw = _get(meta, names_key, where)
    classes = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in raw]
    if len(classes) != n_classes:
        raise DataError(f"{where}: {names_key} has {len(classes)} names, expected {n_classes}")
    x_train, y_train = _batches(members, lay["train"], label_key, n_classes)
    x_test, y_test = _batches(members, lay["test"], label_key, n_classes)
    meta = {"label_mode": mode} if len(lay["modes"]) > 1 else {}
    return Dataset(name, x_train, y_train, x_test, y_test, classes, **meta)
