"""history.csv of a run folder, read back: one row per epoch (the writer is records.py).

    rows = read_history(run_dir)     # [{"epoch": 1.0, "lr": 0.1, "train_acc": ..., "val_acc": ...}, ...]
"""
import csv
from pathlib import Path


def read_history(run_dir):
    """The rows of RUN_DIR/history.csv as dicts of floats (empty cells left out).

    Raises FileNotFoundError, one line naming the folder, when it has no history.csv.
    """
    run_dir = Path(run_dir)
    path = run_dir / "history.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no history.csv here; pass run folders written by training")
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]
