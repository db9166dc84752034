"""Resume: what checkpoint.npz holds besides the weights, and how a run continues from it.

After every epoch, and mid-epoch on Ctrl-C, the checkpoint stores the epoch, the index of
the next batch, the history, per_class.csv's rows, the best epoch, early stopping's best
and wait, the optimiser, the host's shuffling generator's state, the trial counter of the
draws (`draws_step`), the data's provenance and, mid-epoch, the epoch's permutation with its
partial float64 sums and seconds. Exploration and dropout need no generator state: they
are a function of (seed, trial number, element) (brainprop_np/philox.py), and the trial
number of batch b of epoch e is e·n_batches + b. `--resume` continues with the next batch,
so a resumed run ends with the same weights and history (epoch_seconds aside) as an
uninterrupted one, bit for bit, on every backend (the CPU sets and the GPU alike).

Bit for bit needs the same arithmetic: the checkpoint records the device, the kernel set
and the thread count the run used. A resume takes the same thread count, and the same
device and kernel set where the config leaves them to auto (pin_backend); when that set
is missing here, the resume stops and says which setting continues elsewhere. A resume
on another set the config names runs there, says so, and lists the change in
summary.json's backend_changes: from there on the run agrees with an uninterrupted one
to float rounding, not bit for bit. The .npz format itself is checkpoint.py's.
"""
import json
import os
from collections import namedtuple
from pathlib import Path

import numpy as np

from ..kernels import threads
from ..rules.base import METRICS
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import ConfigError
from .console import epochs_text
from .runfolder import LOCK_NAME, RunLock
from .early_stopping import EarlyStopping, stop_reason
from .failures import TrainingError
from .state import TrainResult
from . import stop_reasons as R

Checkpoint = namedtuple("Checkpoint", "weights meta arrays")


def checkpoint_meta(run):
    """The JSON part of the checkpoint: where the run stands and how to continue it."""
    return {
        "epoch": run.epoch, "batch": run.batch, "history": run.history,
        "per_class": run.per_class,
        "es_best": run.stop.best, "es_wait": run.stop.wait,
        "best_val_acc": run.best_val_acc, "best_epoch": run.best_epoch,
        "stop_reason": run.stop_reason,
        "optimiser": {"name": "SGD", "lr": run.opt.lr0, "l2": run.opt.l2,
                      "halve_every": run.opt.halve_every, "momentum": 0.0,
                      "lr_now": run.opt.lr_at(run.epoch)},
        "rng": {"host": rng_state(run.host_rng)},
        "draws_step": run.net.draws.step,   # epoch·n_batches + batch, kept to read and check
        "data": run.data_info,
        "seed": run.cfg["seed"],
        "threads": threads.current(),      # a resume uses the same count: BLAS rounds by it
        "backend": {"device": run.backend.device, "kernels": run.backend.kernel_set},
        "backend_changes": run.backend_changes,
        "mlflow_run_id": run.mlflow_run_id,
        "alignment": run.alignment,
        "wall_seconds": run.wall_seconds,
    }


def write_checkpoint(run, arrays=None):
    """checkpoint.npz: the weights (BatchNorm statistics included), the meta and `arrays`."""
    save_checkpoint(run.path("checkpoint.npz"), run.net.get_weights(), checkpoint_meta(run), arrays)


def read_checkpoint(run_dir):
    """Checkpoint(weights, meta, arrays) of a run folder; TrainingError when unreadable."""
    try:
        return Checkpoint(*load_checkpoint(Path(run_dir) / "checkpoint.npz"))
    except (OSError, ValueError, KeyError) as e:
        raise TrainingError(f"cannot resume: {e}") from None


def set_checkpoint_weights(net, weights):
    """The checkpoint's weights (BatchNorm statistics and feedback weights included) into `net`."""
    try:
        net.set_weights(weights)
    except ValueError as e:
        raise TrainingError(f"cannot resume: {e}") from None


def restore(run, meta, arrays):
    """Put the checkpoint's counters, history, early stopping and shuffling state into `run`
    (the draws' trial counter is set from epoch and batch by the loop: loop.run_epoch)."""
    run.epoch, run.batch = int(meta["epoch"]), int(meta["batch"])
    run.history = [dict(r) for r in meta["history"]]
    run.per_class = [dict(r) for r in meta.get("per_class", [])]   # none in checkpoints before per_class.csv
    t = run.cfg["train"]
    run.stop = EarlyStopping(t["patience"], t["min_delta"], meta["es_best"], meta["es_wait"])
    run.best_val_acc, run.best_epoch = meta["best_val_acc"], meta["best_epoch"]
    run.alignment = [dict(r) for r in meta.get("alignment", [])]
    run.wall_seconds = meta.get("wall_seconds")        # None: a checkpoint written before it was counted
    if not set_rng_state(run.host_rng, meta["rng"]["host"]):
        raise TrainingError(f"{run.path('checkpoint.npz')}: the shuffling generator's state cannot be restored")
    run.net.draws.step = int(meta["draws_step"])
    run.mlflow_run_id = meta.get("mlflow_run_id")
    run.backend_changes = list(meta.get("backend_changes", []))
    if run.batch:
        zero = np.float64(0.0)
        sums = [arrays.get(k, zero) for k in METRICS]
        run.partial = (np.asarray(arrays["perm"]), sums, float(arrays["seconds"]))


def _the(device):
    """'the CPU' | 'the GPU'."""
    return f"the {device.upper()}"


def pin_backend(cfg, meta):
    """(config, same): the config a resume runs with, and what of the checkpoint's backend it
    asks for. Where the config leaves `device` (and on the CPU `kernels`, with
    $BRAINPROP_KERNELS unset) to auto, the checkpoint's device and kernel set are named
    instead. same: {'device': 'the GPU', 'kernels': 'the fast kernels', ...} for each setting
    that is now the run's own, pinned or named alike; empty for checkpoints written before
    the backend was recorded, which pin nothing."""
    ran_on = meta.get("backend")
    if not ran_on:
        return cfg, {}
    cfg = dict(cfg)
    if cfg["device"] == "auto":
        cfg["device"] = ran_on["device"]
    cpu = cfg["device"] == "cpu" == ran_on["device"]
    if cpu and cfg["kernels"] == "auto" and not os.environ.get("BRAINPROP_KERNELS"):
        cfg["kernels"] = ran_on["kernels"]
    same = {}
    if cfg["device"] == ran_on["device"]:
        same["device"] = _the(ran_on["device"])
    if cpu and cfg["kernels"] == ran_on["kernels"]:
        same["kernels"] = f"the {ran_on['kernels']} kernels"
    return cfg, same


ELSEWHERE = {"device": "device=cpu", "kernels": "kernels=numpy"}


def elsewhere(same, run_dir):
    """For check_device on a resume: the message when the device or kernel set the run used
    is missing here, naming the setting that continues it elsewhere; any other backend
    error keeps its own message."""
    def text(e):
        if e.setting not in same:
            return str(e)
        return (f"cannot resume {run_dir} on {same[e.setting]}, which it ran on: {e.reason}; give "
                f"{ELSEWHERE[e.setting]} to continue it elsewhere (then to float rounding of an uninterrupted "
                "run, not bit for bit)")
    return text


def backend_change(run, meta):
    """The resumed run's device or kernel set when it is not the checkpoint's: 'epoch E[ batch
    B]: <old> → <new>' (added to run.backend_changes), else None."""
    ran_on, be = meta.get("backend"), run.backend
    if not ran_on or (ran_on["device"], ran_on["kernels"]) == (be.device, be.kernel_set):
        return None
    where = f"epoch {run.epoch + 1}" + (f" batch {run.batch + 1}" if run.batch else "")
    change = (f"{where}: {ran_on['kernels']} kernels on {_the(ran_on['device'])} → "
              f"{be.kernel_set} kernels on {_the(be.device)}")
    run.backend_changes.append(change)
    return change


def finished(run_dir, cfg, meta, say):
    """For a resume, before any data is loaded: refuse a train.epochs below the epochs the
    checkpoint holds (ConfigError); when the run has nothing left to do under `cfg`, say so
    in one line and return its TrainResult (summary.json's, with this stop_reason; no file
    is written); else None.
    """
    t = cfg["train"]
    n, batch, wait = int(meta["epoch"]), int(meta["batch"]), int(meta["es_wait"])
    if batch and t["epochs"] <= n:
        raise ConfigError(f"train.epochs={t['epochs']} is not allowed when resuming {run_dir}: it stopped inside "
                          f"epoch {n + 1} after {epochs_text(n)}; give train.epochs >= {n + 1}")
    if t["epochs"] < n:
        raise ConfigError(f"train.epochs={t['epochs']} is not allowed when resuming {run_dir}: it has run "
                          f"{epochs_text(n)} already; give train.epochs=M with M > {n} to extend it")
    reason = None if batch else stop_reason(EarlyStopping(t["patience"], t["min_delta"], wait=wait), n, t["epochs"])
    if reason is None:
        return None
    hints = [f"train.epochs=M with M > {n}"] if n >= t["epochs"] else []
    if reason == R.EARLY_STOPPING:
        hints.append(f"train.patience=P with P > {wait} (or null)")
    say.out(f"{run_dir}: run already finished after {epochs_text(n)} ({reason}); "
            f"give {' and '.join(hints)} to extend it")
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {"best_val_acc": meta["best_val_acc"], "best_epoch": meta["best_epoch"], "epochs_run": n}
    summary["stop_reason"] = reason
    return TrainResult(Path(run_dir), summary, [dict(r) for r in meta["history"]])


def check_resume_folder(run_dir):
    """ConfigError unless `run_dir` is a run folder (checkpoint.npz and config.yaml in it);
    FolderInUse when it lacks them because another process is training in it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {run_dir}: no such folder; give a run folder written by training "
                          "(runs/<name>-<algorithm>/<time>)")
    lacks = [f for f in ("checkpoint.npz", "config.yaml") if not (run_dir / f).is_file()]
    if lacks and (run_dir / LOCK_NAME).is_file():
        try:
            with RunLock(run_dir):      # FolderInUse: a run still before its first checkpoint
                pass
        except PermissionError:         # a lock we may not open (another user's folder): not ours to tell
            pass
    if lacks:
        raise ConfigError(f"--resume {run_dir} is not a run folder: no {' or '.join(lacks)} in it; give a "
                          "folder written by training (runs/<name>-<algorithm>/<time>)")


def check_same_data(meta, info):
    """A resumed run must see the checkpoint's numbers of train/val/test images."""
    d = meta["data"]
    if any(d.get(k) != info[k] for k in ("n_train", "n_val", "n_test")):
        raise TrainingError(f"cannot resume: the data differ from the checkpoint's "
                            f"({d['used']} {d['n_train']}/{d['n_val']}/{d['n_test']} train/val/test, "
                            f"now {info['n_train']}/{info['n_val']}/{info['n_test']})")
