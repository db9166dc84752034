"""Training / validation / test arrays for one run: a subset of the classes, limits and the
validation choice."""
import numbers

import numpy as np

from .dataset import ImageSets


class Split(ImageSets):
    """Views of a dataset's arrays for one run.

    x_train, y_train: the training images (uint8 (N, H, W, C)) and labels (int64 (N,));
    x_val, y_val: the validation set (the test set itself when holdout is 0, as in the
    paper; else the last `holdout` training images); x_test, y_test: the test set;
    classes (names, index = label), name, holdout: as given; labels: the dataset's labels
    of a class subset, in their new order (None: every class, labels unchanged). No array is
    copied, except that a class subset copies its images once.
    """

    def __init__(self, name, classes, holdout, x_train, y_train, x_val, y_val, x_test, y_test, labels=None):
        self.name, self.classes, self.holdout = name, list(classes), holdout
        self.labels = None if labels is None else list(labels)
        self.x_train, self.y_train = x_train, y_train
        self.x_val, self.y_val = x_val, y_val
        self.x_test, self.y_test = x_test, y_test

    def __repr__(self):
        return (f"Split({self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}"
                f"{' (test set)' if not self.holdout else ''}, test={len(self.x_test)})")


def _count(value, key, low):
    """`value` as an int >= low (None passes), else a one-line ValueError naming `key`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{key}={value!r} is not allowed; use an integer >= {low}"
                         + (" or null (no limit)" if key.startswith("limit") else ""))
    return int(value)


def select_classes(ds, labels):
    """(x_train, y_train, x_test, y_test) of the images of `labels` only, relabelled
    0..k-1 in the order given (labels[i] becomes i); the dataset's order is kept."""
    labels = list(labels)
    n = ds.n_classes
    if len(labels) < 2 or len(set(labels)) != len(labels) \
            or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c < n for c in labels):
        raise ValueError(f"classes={labels!r} is not allowed for {ds.name}: its labels are 0..{n - 1}; "
                         f"use at least 2 distinct labels from 0 to {n - 1}")
    new = np.full(n, -1, dtype=np.int64)
    new[labels] = np.arange(len(labels))
    out = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        keep = new[y] >= 0
        out += [x[keep], new[y[keep]]]
    return tuple(out)


def prepare(ds, limit_train=None, limit_test=None, holdout=0, classes=None):
    """Split a loaded dataset for a run; returns a Split (views, no copies without `classes`).

    classes: a list of labels (e.g. [3, 8]): only their images, relabelled 0..k-1 in the
    order given, chosen first (the holdout and the limits count images of these classes).
    holdout: 0 validates on the test set (as in the paper); n > 0 moves the last n
    training images into the validation set and removes them from training.
    limit_train: keep the first N training images (after the holdout is taken, so the
    validation set does not depend on it); limit_test: keep the first N test images (the
    validation set too when holdout is 0). None = no limit; limits above the size keep all.
    """
    holdout = _count(holdout, "holdout", 0) or 0
    limit_train = _count(limit_train, "limit_train", 1)
    limit_test = _count(limit_test, "limit_test", 1)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    names = ds.classes
    if classes is not None:
        x_train, y_train, x_test, y_test = select_classes(ds, classes)
        names = [ds.classes[c] for c in classes]
    n = len(x_train)
    if holdout >= n:
        raise ValueError(f"holdout={holdout} is not allowed for {ds.name}: it has {n} training images"
                         f"{' of these classes' if classes is not None else ''}; "
                         f"use 0 (validate on the test set) or 1..{n - 1}")
    x_tr, y_tr = x_train[:n - holdout], y_train[:n - holdout]
    x_te, y_te = x_test[:limit_test], y_test[:limit_test]
    if holdout:
        x_va, y_va = x_train[n - holdout:], y_train[n - holdout:]
    else:
        x_va, y_va = x_te, y_te
    return Split(ds.name, names, holdout, x_tr[:limit_train], y_tr[:limit_train],
                 x_va, y_va, x_te, y_te, labels=classes)
