"""Tiny ImageNet (200 classes, 64x64 RGB) from tiny-imagenet-200.zip or its extracted folder.

Layout: wnids.txt (one wnid a line: fixes the class order), words.txt (wnid<TAB>names),
train/<wnid>/images/*.JPEG, val/images/*.JPEG with val/val_annotations.txt
(filename<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1). The test split has no labels and is
not used: val serves as the test set, as in the original. The JPEGs are decoded once with
Pillow (greyscale ones become RGB) and cached as an uncompressed .npz beside the source,
so later loads read that file instead.
"""
import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .archive import DirTree, ZipTree
from ..files import atomic_path
from .dataset import Dataset
from .errors import DataError

ARCHIVE = "tiny-imagenet-200.zip"
TOP = "tiny-imagenet-200"
CACHE = "tiny-imagenet-200.npz"
CACHE_VERSION = 1
SIZE = 64
JPEG = (".jpeg", ".jpg")


def find_source(folder):
    """The zip, the extracted folder, or `folder` itself when it is that folder; else None."""
    folder = Path(folder)
    if (folder / ARCHIVE).is_file():
        return folder / ARCHIVE
    for d in (folder / TOP, folder):
        if (d / "wnids.txt").is_file() and (d / "train").is_dir():
            return d
    return None


def present(folder):
    return find_source(folder) is not None or (Path(folder) / CACHE).is_file()


def missing(folder):
    return [] if present(folder) else [ARCHIVE]


def _natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _text_lines(tree, rel):
    try:
        return tree.read(rel).decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{tree.where(rel)}: not UTF-8 text ({e})") from None


def _wnids(tree):
    wnids = [w.strip() for w in _text_lines(tree, "wnids.txt") if w.strip()]
    if not wnids:
        raise DataError(f"{tree.where('wnids.txt')}: lists no classes")
    if len(set(wnids)) != len(wnids):
        dup = next(w for w in wnids if wnids.count(w) > 1)
        raise DataError(f"{tree.where('wnids.txt')}: class {dup} is listed twice")
    return wnids


def _names(tree, wnids):
    """Class names from words.txt (the wnid itself where words.txt is absent or silent)."""
    if not tree.exists("words.txt"):
        return list(wnids)
    words = {}
    for line in _text_lines(tree, "words.txt"):
        wnid, _, name = line.partition("\t")
        words[wnid.strip()] = name.strip()
    return [words.get(w) or w for w in wnids]


def _train_items(tree, wnids):
    """[(rel path, label)] of the training JPEGs, class by class in wnids order."""
    index = {w: i for i, w in enumerate(wnids)}
    for d in tree.subdirs("train"):
        if d not in index:
            raise DataError(f"{tree.where('train/' + d)}: class {d} is not listed in wnids.txt")
    items = []
    for w in wnids:
        files = sorted((f for f in tree.files(f"train/{w}/images") if f.lower().endswith(JPEG)), key=_natural)
        if not files:
            raise DataError(f"{tree.where(f'train/{w}/images')}: missing or holds no JPEG "
                            f"(class {w} is listed in wnids.txt)")
        items += [(f"train/{w}/images/{f}", index[w]) for f in files]
    return items


def _val_items(tree, wnids):
    """[(rel path, label)] of the validation JPEGs, in val_annotations.txt order."""
    rel = "val/val_annotations.txt"
    where = tree.where(rel)
    index = {w: i for i, w in enumerate(wnids)}
    images = {f for f in tree.files("val/images") if f.lower().endswith(JPEG)}
    items, seen = [], set()
    for no, line in enumerate(_text_lines(tree, rel), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 6:
            raise DataError(f"{where}: line {no} has {len(fields)} tab-separated fields, expected 6 "
                            "(filename, wnid, x0, y0, x1, y1)")
        fname, wnid = fields[0], fields[1]
        if wnid not in index:
            raise DataError(f"{where}: line {no} names class {wnid!r}, which is not listed in wnids.txt")
        if not all(re.fullmatch(r"-?\d+", b) for b in fields[2:]):
            raise DataError(f"{where}: line {no} has a bounding box {fields[2:]} that is not 4 integers")
        if fname not in images:
            raise DataError(f"{where}: line {no} names {fname}, which is not in val/images")
        if fname in seen:
            raise DataError(f"{where}: line {no} names {fname} a second time")
        seen.add(fname)
        items.append((f"val/images/{fname}", index[wnid]))
    if not items:
        raise DataError(f"{where}: holds no annotation")
    extra = sorted(images - seen)
    if extra:
        raise DataError(f"{where}: {len(extra)} image(s) in val/images have no line (e.g. {extra[0]})")
    return items


def decode_jpeg(data, where):
    """uint8 (64, 64, 3) RGB image from JPEG bytes (greyscale and other modes become RGB)."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            a = np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError
        raise DataError(f"{where}: cannot decode the image ({type(e).__name__}: {e})") from None
    if a.shape != (SIZE, SIZE, 3):
        raise DataError(f"{where}: image is {a.shape[1]}x{a.shape[0]}, expected {SIZE}x{SIZE}")
    return a


def _decode_all(tree, items, workers):
    """x uint8 (N, 64, 64, 3), y int64 (N,) for [(rel path, label)]; decoded on `workers` threads."""
    x = np.empty((len(items), SIZE, SIZE, 3), np.uint8)
    y = np.fromiter((label for _, label in items), np.int64, len(items))

    def work(i):
        rel = items[i][0]
        x[i] = decode_jpeg(tree.read(rel), tree.where(rel))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(work, range(len(items)), chunksize=64):
            pass
    return x, y


def decode_source(source, workers=None):
    """Decode the zip or extracted folder `source` into (arrays dict, classes, wnids)."""
    source = Path(source)
    tree = ZipTree(source, TOP, "wnids.txt") if source.is_file() else DirTree(source)
    try:
        wnids = _wnids(tree)
        classes = _names(tree, wnids)
        train, val = _train_items(tree, wnids), _val_items(tree, wnids)
        workers = workers or min(8, os.cpu_count() or 1)
        x_train, y_train = _decode_all(tree, train, workers)
        x_test, y_test = _decode_all(tree, val, workers)
    finally:
        tree.close()
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test), classes, wnids


def _signature(source):
    """Identifies the source's version: name, size and mtime (of val_annotations.txt for a folder)."""
    f = source if source.is_file() else source / "val" / "val_annotations.txt"
    try:
        st = f.stat()
    except OSError:
        return f"{source.name}:missing"
    return f"{source.name}:{st.st_size}:{st.st_mtime_ns}"


def _read_cache(path, signature):
    """Dataset from the cache at `path`, or None when it was made from another source version."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or (signature and str(z["source"]) != signature):
                return None
            a = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test", "classes", "wnids")}
    except Exception as e:  # zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError
        if signature:  # the source is there: rebuild the cache from it
            warnings.warn(f"{path}: unreadable cache ({type(e).__name__}: {e}); decoding the source again")
            return None
        raise DataError(f"{path}: unreadable cache ({type(e).__name__}: {e}) and no "
                        f"{ARCHIVE} or {TOP}/ beside it to rebuild it from") from None
    return Dataset("tinyimagenet", a["x_train"], a["y_train"], a["x_test"], a["y_test"],
                   [str(c) for c in a["classes"]], wnids=[str(w) for w in a["wnids"]])


def _write_cache(path, arrays, classes, wnids, signature):
    """Write the cache atomically; a folder that cannot be written only gives a warning."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, version=np.int64(CACHE_VERSION), source=np.str_(signature),
                     classes=np.array(classes, dtype=str), wnids=np.array(wnids, dtype=str), **arrays)
    except OSError as e:
        warnings.warn(f"{path}: cannot write the decoded cache ({e}); the next load decodes again")


def read_tinyimagenet(folder, label_mode=None, workers=None):
    """Dataset from tiny-imagenet-200.zip, tiny-imagenet-200/ or the cache in `folder`.

    x: uint8 (N, 64, 64, 3); 100,000 train and 10,000 test (= official val) images for the
    full dataset. Decoding happens once; the cache `folder/tiny-imagenet-200.npz` serves
    later loads while the source is unchanged (or absent).
    """
    folder = Path(folder)
    source = find_source(folder)
    cache = folder / CACHE
    signature = _signature(source) if source is not None else ""
    if cache.is_file():
        ds = _read_cache(cache, signature)
        if ds is not None:
            return ds
    if source is None:
        raise DataError(f"{folder}: holds neither {ARCHIVE} nor {TOP}/ nor {CACHE}")
    arrays, classes, wnids = decode_source(source, workers)
    _write_cache(cache, arrays, classes, wnids, signature)
    return Dataset("tinyimagenet", arrays["x_train"], arrays["y_train"], arrays["x_test"],
                   arrays["y_test"], classes, wnids=wnids)
