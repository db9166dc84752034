"""MNIST and Fashion-MNIST from the four official gzipped IDX files, and the shipped sample."""
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataError
from .idx import read_idx_gz

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

SAMPLE = Path(__file__).resolve().parent / "sample" / "mnist_sample.npz"


def _labels(path, n_classes, n_images, images_path):
    """int64 (N,) labels of an IDX label file, checked against the image count and range."""
    y = read_idx_gz(path, 1)
    if len(y) != n_images:
        raise DataError(f"{path}: holds {len(y)} labels but {images_path.name} holds {n_images} images")
    if len(y) and y.max() >= n_classes:
        raise DataError(f"{path}: label {int(y.max())} is out of range 0..{n_classes - 1}")
    return y.astype(np.int64)


def read_idx_folder(folder, name, classes):
    """Dataset from `folder` holding the four official IDX .gz files (x: (N, 28, 28, 1))."""
    folder = Path(folder)
    arrays = []
    for images, labels in ((FILES[0], FILES[1]), (FILES[2], FILES[3])):
        x = read_idx_gz(folder / images, 3)
        arrays += [x[..., None], _labels(folder / labels, len(classes), len(x), folder / images)]
    return Dataset(name, *arrays, classes)


def present(folder):
    """True when `folder` holds all four IDX files."""
    return all((Path(folder) / f).is_file() for f in FILES)


def missing(folder):
    """The IDX files absent from `folder`."""
    return [f for f in FILES if not (Path(folder) / f).is_file()]


def read_sample(folder=None, label_mode=None):
    """The MNIST sample shipped in the package: 5,000 train and 1,000 test images."""
    try:
        with np.load(SAMPLE, allow_pickle=False) as z:
            a = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{SAMPLE}: cannot read the shipped MNIST sample ({e})") from None
    return Dataset("mnist_sample", a["x_train"], a["y_train"].astype(np.int64),
                   a["x_test"], a["y_test"].astype(np.int64), MNIST_CLASSES)
