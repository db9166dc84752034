"""Training / validation / test arrays for one run: limits and the validation choice."""
import numbers

from .dataset import ImageSets


class Split(ImageSets):
    """Views of a dataset's arrays for one run.

    x_train, y_train: the training images (uint8 (N, H, W, C)) and labels (int64 (N,));
    x_val, y_val: the validation set (the test set itself when holdout is 0, as in the
    paper; else the last `holdout` training images); x_test, y_test: the test set;
    classes, name, holdout: as given. No array is copied.
    """

    def __init__(self, name, classes, holdout, x_train, y_train, x_val, y_val, x_test, y_test):
        self.name, self.classes, self.holdout = name, list(classes), holdout
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


def prepare(ds, limit_train=None, limit_test=None, holdout=0):
    """Split a loaded dataset for a run; returns a Split (views, no copies).

    holdout: 0 validates on the test set (as in the paper); n > 0 moves the last n
    training images into the validation set and removes them from training.
    limit_train: keep the first N training images (after the holdout is taken, so the
    validation set does not depend on it); limit_test: keep the first N test images (the
    validation set too when holdout is 0). None = no limit; limits above the size keep all.
    """
    holdout = _count(holdout, "holdout", 0) or 0
    limit_train = _count(limit_train, "limit_train", 1)
    limit_test = _count(limit_test, "limit_test", 1)
    n = len(ds.x_train)
    if holdout >= n:
        raise ValueError(f"holdout={holdout} is not allowed for {ds.name}: it has {n} training images; "
                         f"use 0 (validate on the test set) or 1..{n - 1}")
    x_tr, y_tr = ds.x_train[:n - holdout], ds.y_train[:n - holdout]
    x_te, y_te = ds.x_test[:limit_test], ds.y_test[:limit_test]
    if holdout:
        x_va, y_va = ds.x_train[n - holdout:], ds.y_train[n - holdout:]
    else:
        x_va, y_va = x_te, y_te
    return Split(ds.name, ds.classes, holdout, x_tr[:limit_train], y_tr[:limit_train],
                 x_va, y_va, x_te, y_te)
