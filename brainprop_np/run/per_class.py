"""per_class.csv: the validation accuracy of each class per epoch, and the staircase read from it.

    row = class_row(epoch, counts)            # {"epoch": 3, "acc_0": 0.98, ..., "acc_9": 0.0}
    epochs, acc = read_per_class(run_dir)     # (E,) epochs, (E, C) accuracies
    first = first_passes(epochs, acc, 0.5)    # per class: the first epoch with acc >= 0.5, or None

One row per epoch: `epoch`, then `acc_<c>` for the classes c = 0..C−1 (the labels the
network sees): the fraction of class c's validation images whose argmax q is c, from the
same inference-mode pass that gives val_acc (loop.evaluate). `nan` for a class without
validation images. The writer is records.py; checkpoint.npz keeps the rows for a resume.
"""
import csv
from pathlib import Path

import numpy as np


def class_columns(n_classes):
    """The header of per_class.csv: epoch, acc_0, …, acc_{C−1}."""
    return ["epoch"] + [f"acc_{c}" for c in range(n_classes)]


def class_row(epoch, counts):
    """The epoch's row from evaluate's counts (images, correct: int64 (C,))."""
    row = {"epoch": epoch}
    for c, (n, k) in enumerate(zip(counts["images"].tolist(), counts["correct"].tolist())):
        row[f"acc_{c}"] = k / n if n else float("nan")
    return row


def read_per_class(run_dir):
    """(epochs (E,) int, acc (E, C) float) of RUN_DIR/per_class.csv.

    Raises FileNotFoundError, one line naming the folder, when it has none.
    """
    run_dir = Path(run_dir)
    path = run_dir / "per_class.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no per_class.csv here; it is written by training runs after "
                                "every epoch (runs of older versions of brainprop_np have none)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], [r for r in rows[1:] if r]
    if head[:1] != ["epoch"] or len(head) < 2:
        raise ValueError(f"{path}: not a per_class.csv (its header is not epoch, acc_0, …)")
    epochs = np.array([int(float(r[0])) for r in body], dtype=np.int64)
    acc = np.array([[float(v) for v in r[1:]] for r in body], dtype=np.float64).reshape(len(body), len(head) - 1)
    return epochs, acc


def first_passes(epochs, acc, threshold):
    """Per class, the first epoch whose accuracy is >= threshold (None if none): the staircase.

    epochs: (E,); acc: (E, C). Returns a list of C ints or Nones."""
    acc = np.asarray(acc)
    if not len(acc):
        return [None] * acc.shape[1]
    passed = acc >= threshold                                  # nan compares False
    hit = passed.any(axis=0)
    first = passed.argmax(axis=0)
    return [int(epochs[i]) if h else None for i, h in zip(first, hit)]
