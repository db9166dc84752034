"""Datasets: readers of the official files, downloads with checksums, batches on the device.

    ds = load("mnist", root=None, download=True)   # Dataset: uint8 x (N, H, W, C), int64 y (N,)
    run = prepare(ds, limit_train=None, limit_test=None, holdout=0)   # train / val / test views
    batches = BatchIterator(run.x_train, run.y_train, backend, "float32")
    for x, y in batches.epoch(128, perm=rng.permutation(len(batches))): ...

Images stay uint8 on the host; scaling to float (/255) happens per batch on the device
that trains. Missing, corrupt or undownloadable data raise DataError (a RuntimeError)
whose one-line message names the file and what is wrong.
"""
from .batches import BatchIterator
from .dataset import Dataset
from .errors import DataError
from .paths import default_root
from .registry import DATASETS, DatasetInfo, dataset_info, load
from .split import Split, prepare

__all__ = ["load", "prepare", "BatchIterator", "DATASETS", "DatasetInfo", "dataset_info",
           "Dataset", "Split", "DataError", "default_root"]
