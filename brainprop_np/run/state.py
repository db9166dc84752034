"""One run while it trains: what it trains (config, network, rule, optimiser, data) and
where it stands (epoch, batch, history, per-class accuracies, best epoch, early stopping, the shuffling
generator's state; the trial counter of the draws follows from epoch and batch);
checkpoint.npz keeps the second part (resume.py). Also TrainResult, what `train` returns.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .early_stopping import EarlyStopping
from . import stop_reasons as R


@dataclass
class TrainResult:
    """What `train` returns: the run folder, its summary (as in summary.json) and history."""
    out_dir: Path
    summary: dict
    history: list = field(default_factory=list)

    @property
    def stop_reason(self):
        return self.summary.get("stop_reason")

    @property
    def best_val_acc(self):
        return self.summary.get("best_val_acc")

    @property
    def interrupted(self):
        return self.stop_reason == R.INTERRUPTED


@dataclass
class Run:
    """State and files of one run; train.py drives it, loop.py trains its epochs."""
    cfg: dict
    out_dir: Path
    say: Any                  # console.Say
    progress: bool            # draw progress bars
    net: Any = None
    rule: Any = None          # BrainProp or EBP: one learning trial per batch
    opt: Any = None           # SGD
    data_info: dict = None    # summary.json's "dataset"
    host_rng: Any = None      # shuffles the training images: default_rng([seed, 1])
    train_it: Any = None      # data.BatchIterator of the training images
    val_it: Any = None
    align_batch: Any = None   # (x, labels) of the fixed batch alignment.csv is measured on
    loggers: Any = None
    epoch: int = 0            # 0-based index of the next (or interrupted) epoch
    batch: int = 0            # index of the next batch inside that epoch
    history: list = field(default_factory=list)
    per_class: list = field(default_factory=list)   # per_class.csv rows: epoch, acc_0 … acc_{C−1}
    stop: EarlyStopping = None
    best_val_acc: float = None
    best_epoch: int = None
    stop_reason: str = None
    message: str = None
    test_acc: float = None
    partial: tuple = None     # (perm, sums, seconds) of an interrupted epoch
    metrics: Any = None       # the epoch's float64 sums on the device (rules.base.METRICS), made once
    phase: str = "training"   # what the run is doing (named by an out-of-memory error)
    mlflow_run_id: str = None
    alignment: list = field(default_factory=list)   # alignment.csv rows (untied feedback)
    said_no_plot: bool = False
    warmup_seconds: float = None   # this process's warm-up before the first epoch (warmup.py)
    wall_seconds: float = 0.0      # the epochs' wall time, validation and records included, over every
                                   # process; None when resumed from a checkpoint that did not count it
    wall_mark: float = None        # perf_counter() up to which wall_seconds counts this process's time
    backend_changes: list = field(default_factory=list)  # resumes on another device or kernel set (resume.py)

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        t = self.cfg["train"]
        self.stop = self.stop or EarlyStopping(t["patience"], t["min_delta"])

    @property
    def backend(self):
        return self.net.backend

    def path(self, name):
        return self.out_dir / name

    def count_wall(self):
        """wall_seconds += the time since wall_mark; the mark moves to now."""
        now = time.perf_counter()
        if self.wall_seconds is not None and self.wall_mark is not None:
            self.wall_seconds += now - self.wall_mark
        self.wall_mark = now
