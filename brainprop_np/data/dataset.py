"""The object `load` returns: uint8 images and int64 labels on the host."""
import numpy as np

from .errors import DataError


class ImageSets:
    """What a set of labelled images knows about itself (needs x_train and classes)."""

    @property
    def n_classes(self):
        """Number of classes (len(classes))."""
        return len(self.classes)

    @property
    def input_shape(self):
        """(H, W, C) of one image."""
        return tuple(self.x_train.shape[1:])


class Dataset(ImageSets):
    """A loaded dataset.

    x_train: uint8 (N, H, W, C), channels last; y_train: int64 (N,) in 0..n_classes-1;
    x_test, y_test: the same for the test split; classes: list of class names (str), index =
    label; name: the dataset's name. Extra keyword arguments become attributes (e.g. `wnids`
    for Tiny ImageNet, `label_mode` for CIFAR-100).
    """

    def __init__(self, name, x_train, y_train, x_test, y_test, classes, **meta):
        self.name = name
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.classes = list(classes)
        for k, v in meta.items():
            setattr(self, k, v)
        self._check()

    def _check(self):
        for split in ("train", "test"):
            x, y = getattr(self, "x_" + split), getattr(self, "y_" + split)
            if x.dtype != np.uint8 or x.ndim != 4:
                raise DataError(f"{self.name}: x_{split} is {x.dtype} {x.shape}, expected uint8 (N, H, W, C)")
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise DataError(f"{self.name}: y_{split} is {y.dtype} {y.shape}, expected int64 ({len(x)},)")

    def __repr__(self):
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"n_classes={self.n_classes})")
