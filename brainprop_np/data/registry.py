"""The datasets `load` knows: folders, official files, checksums, mirrors, readers."""
import functools
import os
from pathlib import Path

from . import cifar, mnist, tinyimagenet
from .download import fetch
from .errors import DataError
from .paths import ENV_VAR, candidate_folders, default_root


class DatasetInfo:
    """What `load` needs to find, download and read one dataset.

    name; folders (subfolder names under a root, the first is where downloads go);
    files (official file names that a download fetches); shape (H, W, C); n_classes (with
    the default labels); label_modes ({mode: n_classes} for load's label_mode; the first is
    the default; only CIFAR-100 has them: {'fine': 100, 'coarse': 20}); homepage;
    mirrors (base URLs tried in order: replace this list to download from elsewhere);
    md5 / gunzip_md5 ({file: accepted MD5s} of the file / of its gunzipped bytes);
    present(folder) -> bool, missing(folder) -> [files], read(folder, label_mode) -> Dataset.
    """

    def __init__(self, name, folders, files, shape, n_classes, homepage, mirrors, md5,
                 present, missing, read, gunzip_md5=None, builtin=False, label_modes=None):
        self.name, self.folders, self.files = name, tuple(folders), tuple(files)
        self.shape, self.n_classes, self.homepage = tuple(shape), int(n_classes), homepage
        self.label_modes = dict(label_modes or {})
        self.mirrors, self.md5, self.gunzip_md5 = list(mirrors), dict(md5), dict(gunzip_md5 or {})
        self.present, self.missing, self.read = present, missing, read
        self.builtin = builtin

    def __repr__(self):
        return f"DatasetInfo({self.name!r}, shape={self.shape}, n_classes={self.n_classes})"


_idx_present, _idx_missing = mnist.present, mnist.missing

DATASETS = {
    "mnist": DatasetInfo(
        "mnist", ["mnist"], mnist.FILES, (28, 28, 1), 10,
        "http://yann.lecun.com/exdb/mnist/",
        ["https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        {"train-images-idx3-ubyte.gz": ["f68b3c2dcbeaaa9fbdd348bbdeb94873"],
         "train-labels-idx1-ubyte.gz": ["d53e105ee54ea40749a09fcbcd1e9432"],
         "t10k-images-idx3-ubyte.gz": ["9fb629c4189551a2d022fa330f9573f3"],
         "t10k-labels-idx1-ubyte.gz": ["ec29112dd5afa0611ce80d1b7f02629c"]},
        _idx_present, _idx_missing,
        lambda folder, label_mode=None: mnist.read_idx_folder(folder, "mnist", mnist.MNIST_CLASSES),
        gunzip_md5={"train-images-idx3-ubyte.gz": ["6bbc9ace898e44ae57da46a324031adb"],
                    "train-labels-idx1-ubyte.gz": ["a25bea736e30d166cdddb491f175f624"],
                    "t10k-images-idx3-ubyte.gz": ["2646ac647ad5339dbf082846283269ea"],
                    "t10k-labels-idx1-ubyte.gz": ["27ae3e4e09519cfbb04c329615203637"]}),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", ["fashion_mnist", "fashion-mnist"], mnist.FILES, (28, 28, 1), 10,
        "https://github.com/zalandoresearch/fashion-mnist",
        ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        {"train-images-idx3-ubyte.gz": ["8d4fb7e6c68d591d4c3dfef9ec88bf0d"],
         "train-labels-idx1-ubyte.gz": ["25c81989df183df01b3e8a0aad5dffbe"],
         "t10k-images-idx3-ubyte.gz": ["bef4ecab320f06d8554ea6380940ec79"],
         "t10k-labels-idx1-ubyte.gz": ["bb300cfdad3c16e7a12a480ee83cd310"]},
        _idx_present, _idx_missing,
        lambda folder, label_mode=None: mnist.read_idx_folder(folder, "fashion_mnist", mnist.FASHION_CLASSES),
        gunzip_md5={"train-images-idx3-ubyte.gz": ["f4a8712d7a061bf5bd6d2ca38dc4d50a"],
                    "train-labels-idx1-ubyte.gz": ["9018921c3c673c538a1fc5bad174d6f9"],
                    "t10k-images-idx3-ubyte.gz": ["8181f5470baa50b63fa0f6fddb340f0a"],
                    "t10k-labels-idx1-ubyte.gz": ["15d484375f8d13e6eb1aabb0c3f46965"]}),
    "cifar10": DatasetInfo(
        "cifar10", ["cifar10"], [cifar.LAYOUTS["cifar10"]["archive"]], (32, 32, 3), 10,
        "https://www.cs.toronto.edu/~kriz/cifar.html", ["https://www.cs.toronto.edu/~kriz/"],
        {"cifar-10-python.tar.gz": ["c58f30108f718f92721af3b95e74349a"]},
        functools.partial(cifar.present, name="cifar10"), functools.partial(cifar.missing, name="cifar10"),
        functools.partial(cifar.read_cifar, name="cifar10")),
    "cifar100": DatasetInfo(
        "cifar100", ["cifar100"], [cifar.LAYOUTS["cifar100"]["archive"]], (32, 32, 3),
        100,
        "https://www.cs.toronto.edu/~kriz/cifar.html", ["https://www.cs.toronto.edu/~kriz/"],
        {"cifar-100-python.tar.gz": ["eb9058c3a382ffc7106e4002c42a8d85"]},
        functools.partial(cifar.present, name="cifar100"), functools.partial(cifar.missing, name="cifar100"),
        functools.partial(cifar.read_cifar, name="cifar100"), label_modes={"fine": 100, "coarse": 20}),
    "tinyimagenet": DatasetInfo(
        "tinyimagenet", ["tinyimagenet"], [tinyimagenet.ARCHIVE], (64, 64, 3), 200,
        "http://cs231n.stanford.edu/", ["http://cs231n.stanford.edu/"],
        {"tiny-imagenet-200.zip": ["90528d7ca1a48142e341f4ef8d21d0de"]},
        tinyimagenet.present, tinyimagenet.missing, tinyimagenet.read_tinyimagenet),
    "mnist_sample": DatasetInfo(
        "mnist_sample", [], [], (28, 28, 1), 10, "http://yann.lecun.com/exdb/mnist/", [], {},
        lambda folder: True, lambda folder: [], mnist.read_sample, builtin=True),
}

ALIASES = {"fashion-mnist": "fashion_mnist"}
NAMES = tuple(DATASETS)                       # the one list of dataset names (run/schema.py)
LABEL_MODES = tuple(dict.fromkeys(m for info in DATASETS.values() for m in info.label_modes))


def dataset_info(name):
    """The DatasetInfo of `name` (aliases accepted); ValueError listing the allowed names."""
    key = ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in DATASETS:
        raise ValueError(f"dataset {name!r} is not known; use one of {', '.join(DATASETS)}")
    return DATASETS[key]


def locate(info, base):
    """The folder under `base` that holds (or should hold) the dataset `info`."""
    others = {f for n, i in DATASETS.items() if n != info.name for f in i.folders}
    cands = candidate_folders(base, info.folders, others)
    for c in cands:
        if info.present(c):
            return c
    for c in cands:  # a folder holding some of the files: complete it there
        if any((c / f).exists() for f in info.files):
            return c
    return cands[0]


def _where_to_get(info):
    urls = list(info.mirrors) or [info.homepage]
    see = f" (see {info.homepage})" if info.homepage not in urls else ""
    return (f"get them from {' or '.join(urls)}{see}, or point data.root=DIR (root= in Python) or "
            f"${ENV_VAR} at a folder that holds them or a '{info.folders[0]}' subfolder with them")


def _hint(info, folder):
    return f"Expected in {folder}: {', '.join(info.files)}; {_where_to_get(info)}."


def _download(info, folder, mirrors):
    """Fetch the files missing from `folder`; on failure remove the folders this call made."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        for f in info.missing(folder):
            fetch(f, folder, info.mirrors if mirrors is None else mirrors,
                  md5=info.md5.get(f, ()), gunzip_md5=info.gunzip_md5.get(f, ()), hint=_hint(info, folder))
    except BaseException:
        for p in made:  # deepest first
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise


def load(name, root=None, download=True, label_mode=None, mirrors=None):
    """Load dataset `name` as a Dataset (uint8 x (N, H, W, C), int64 y (N,), classes, name).

    name: mnist, fashion_mnist (or fashion-mnist), cifar10, cifar100, tinyimagenet, or
    mnist_sample (shipped in the package; root and download are ignored).
    root: a folder holding one subfolder per dataset (mnist/, fashion_mnist/, cifar10/, ...)
    or holding the dataset's official files directly; default $BRAINPROP_DATA, else
    ~/.cache/brainprop_np. download: fetch missing files from the official mirrors (MD5
    verified). label_mode: CIFAR-100 only, 'fine' (default, 100 classes) or 'coarse' (20).
    mirrors: base URLs to download from instead of DATASETS[name].mirrors.
    Raises ValueError for a bad argument, DataError for missing, corrupt or undownloadable data.
    """
    info = dataset_info(name)
    if label_mode is not None and label_mode not in info.label_modes:
        allowed = (" or ".join(map(repr, info.label_modes))
                   or "none (leave it unset: only cifar100 has label modes)")
        raise ValueError(f"label_mode={label_mode!r} is not allowed for {info.name}; use {allowed}")
    if info.builtin:
        return info.read(None, label_mode=label_mode)
    base = Path(os.path.abspath(Path(root).expanduser() if root not in (None, "") else default_root()))
    folder = locate(info, base)
    if not info.present(folder):
        if not download:
            raise DataError(f"{info.name}: {', '.join(info.missing(folder))} not found in {folder} "
                            f"(download=False; data.download=true fetches them); {_where_to_get(info)}.")
        _download(info, folder, mirrors)
    return info.read(folder, label_mode=label_mode)
