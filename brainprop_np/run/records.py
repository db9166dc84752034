"""What a run records and reports: history.csv, per_class.csv, summary.json, alignment.csv,
accuracy.png (redrawn every PLOT_EVERY epochs and whenever the run stops), the resolved
config.yaml, and the lines it prints (the start line, one line per epoch, the closing line).
Every file is written to a temporary name and renamed into place (files.py).
"""
from ..blocks import Single
from ..kernels import threads
from ..weights import save_weights
from .config import dump
from .console import compile_seconds, cublas_fallback, epochs_text, threads_text, versions
from .figures import plot_accuracy
from .per_class import class_columns
from .resume import write_checkpoint
from .runfolder import write_csv, write_json, write_text
from .failures import TrainingError
from .setup import data_text, on_sample
from . import stop_reasons as R

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "epoch_seconds",
                   "mean_delta", "mean_abs_delta", "explore_rate")
# mean_delta, mean_abs_delta: the mean δ = reward − q[action] and mean |δ| of the epoch's
# training trials; explore_rate: the fraction of trials whose chosen action was not the
# argmax of q (exploration that changed the choice). NaN for EBP, which has neither.
PLOT_EVERY = 10           # accuracy.png is redrawn every PLOT_EVERY epochs and when the run stops
ARTIFACTS = ("weights_best.npz", "accuracy.png", "history.csv", "per_class.csv", "summary.json", "config.yaml")


def open_loggers(cfg, say):
    """TensorBoard and MLflow as the config asks (loggers.py); a missing library is a TrainingError."""
    from .loggers import Loggers, LoggingError
    try:
        return Loggers(cfg, say.err)
    except LoggingError as e:
        raise TrainingError(str(e)) from None


def summary(run):
    """summary.json: the best epoch, why the run stopped, speed, machine, versions and data."""
    secs = [r["epoch_seconds"] for r in run.history]
    cfg, be = run.cfg, run.backend
    s = {
        "name": cfg["name"], "algorithm": cfg["algorithm"], "model": cfg["model"],
        "best_val_acc": run.best_val_acc, "best_epoch": run.best_epoch,
        "epochs_run": len(run.history),
        "stop_reason": run.stop_reason or R.RUNNING,
        "mean_epoch_seconds": (sum(secs) / len(secs)) if secs else None,
        "final_lr": run.history[-1]["lr"] if run.history else None,
        "early_stopping": run.stop.state(),
        "backend": be.name,
        "device": be.device,                        # 'cpu' | 'gpu', as the config's device
        "device_name": be.device_name(),            # e.g. 'x86_64', 'NVIDIA H100 80GB HBM3'
        "kernels": be.kernel_set,                   # 'fast' | 'numpy' (CPU) | 'cuda'
        "fused_blocks": fused_blocks(run.net),      # the plan's blocks (blocks.py), e.g. 'DirectConv conv2d'
        "threads": threads.current(),               # BLAS and kernel threads (kernels/threads.py)
        "backend_changes": run.backend_changes,     # resumes on another device or kernel set (resume.py)
        "kernel_compile_seconds": compile_seconds(be),  # numba (fast) or NVRTC (cuda); None for numpy
        "warmup_seconds": _rounded(run.warmup_seconds), # before the first epoch, outside epoch_seconds
        "wall_seconds": _rounded(run.wall_seconds),     # the epochs with validation and records, all processes
        "cublas_fallback": cublas_fallback(be),     # None, or why the GPU's batched GEMM fell back
        "dtype": cfg["dtype"], "seed": cfg["seed"],
        "versions": versions(be),
        "dataset": run.data_info,
        "validation": ("test set" if not cfg["data"]["holdout"]
                       else f"holdout: last {cfg['data']['holdout']} training images"),
    }
    if cfg["data"]["holdout"]:
        s["test_acc"] = run.test_acc
    if run.message:
        s["message"] = run.message
    if run.mlflow_run_id:
        s["mlflow_run_id"] = run.mlflow_run_id
    return s


def fused_blocks(net):
    """The steps of the network's plan that fuse or replace layers: ['Kind layer+layer', ...]."""
    return [f"{type(st).__name__} {st.describe()}" for st in net.steps() if type(st) is not Single]


def _rounded(seconds):
    return None if seconds is None else round(seconds, 3)


def write_history(run):
    write_csv(run.path("history.csv"), HISTORY_COLUMNS, run.history)


def write_per_class(run):
    """per_class.csv: the accuracy of each class per epoch (per_class.py)."""
    if run.per_class:
        write_csv(run.path("per_class.csv"), class_columns(len(run.per_class[0]) - 1), run.per_class)


def write_summary(run):
    write_json(run.path("summary.json"), summary(run))


def write_config(run):
    """config.yaml: the resolved config, with how to continue the run."""
    write_text(run.path("config.yaml"),
               "# The resolved config of this run (every key; preset defaults filled in).\n"
               f"# Continue it with: brainprop train --resume {run.out_dir} [train.epochs=N]\n" + dump(run.cfg))


def write_plot(run):
    """accuracy.png of the epochs so far; a plotting problem is a note, never the end of a run."""
    if not run.history:
        return
    sample = " on the MNIST SAMPLE, not full MNIST" if run.data_info.get("fallback") else ""
    try:
        drawn = plot_accuracy(run.history, run.best_epoch, run.path("accuracy.png"),
                              title=f"{run.cfg['name']} ({run.cfg['algorithm']})" + sample)
        if not drawn and not run.said_no_plot:
            run.said_no_plot = True
            run.say.err("note: accuracy.png not drawn: matplotlib is not installed (pip install matplotlib)")
    except OSError:
        raise
    except Exception as e:  # a plotting problem must not end a training run
        run.say.err(f"note: accuracy.png not drawn ({type(e).__name__}: {e})")


def record_alignment(run):
    """Untied feedback: append this epoch's angles to alignment.csv (feedback.alignment).

    Inference mode on a fixed batch: no random draw and no statistic changes, so the
    run continues exactly as it would without the measurement.
    """
    from .. import feedback as F
    if run.align_batch is None or not F.is_untied(run.net):
        return
    x, y = run.align_batch
    run.alignment += F.alignment(run.net, run.rule, x, y, epoch=run.epoch,
                                 batch_size=run.cfg["train"]["batch_size"])
    write_csv(run.path("alignment.csv"), F.ALIGNMENT_COLUMNS, run.alignment)


def record_epoch(run, row, classes=None):
    """After an epoch: the best weights, early stopping, then every record and the epoch line.
    classes: the epoch's per_class.csv row (loop.validate), or None."""
    run.count_wall()                   # the epoch and its validation; its records count in the next
    run.history.append(row)
    if classes is not None:
        run.per_class.append(classes)
    mark = ""
    if run.best_val_acc is None or row["val_acc"] > run.best_val_acc:
        run.best_val_acc, run.best_epoch = row["val_acc"], row["epoch"]
        save_weights(run.path("weights_best.npz"), run.net)
        mark = " *"
    run.stop.update(row["val_acc"])
    run.epoch, run.batch = run.epoch + 1, 0
    record_alignment(run)
    write_checkpoint(run)
    write_history(run)
    write_per_class(run)
    write_summary(run)
    if run.loggers is not None:
        run.loggers.epoch(row)
    if run.epoch % PLOT_EVERY == 0:     # and always when the run stops (train.py)
        write_plot(run)
    run.say.out(epoch_line(row, run.cfg["train"]["epochs"], mark, run.best_val_acc, run.best_epoch,
                           run.stop.text()) + on_sample(run.data_info))


def epoch_line(row, epochs, mark, best, best_epoch, es):
    """One line per epoch, at most ~100 characters: loss, train (rewarded choices), val, time,
    best val_acc @ epoch and early stopping's counter (es: epochs without a gain / patience)."""
    return (f"epoch {row['epoch']:>3}/{epochs}  loss {row['train_loss']:.4f}  train {row['train_acc']:.4f}  "
            f"val {row['val_acc']:.4f}{mark or '  '}  {row['epoch_seconds']:.1f}s  "
            f"best {best:.4f} @ {best_epoch}  {es}")


def start_lines(run, split, resumed):
    """The first two lines: what trains on what, from which weights, where; then the legend."""
    cfg, t, be = run.cfg, run.cfg["train"], run.backend
    n_params = sum(int(a.size) for _, _, a in run.net.trainable())
    val = "the test set" if not cfg["data"]["holdout"] else f"{len(split.x_val)} held-out training images"
    verb = (f"resuming at epoch {run.epoch + 1}" + (f" batch {run.batch + 1}" if run.batch else "")
            if resumed else "training")
    used = data_text(run.data_info)
    model = cfg["model"] if isinstance(cfg["model"], str) else "custom"
    return (f"{cfg['name']}: {verb}; {cfg['algorithm']} on {used} ({len(split.x_train)} train, "
            f"validation on {val} ({len(split.x_val)})), model {model} ({n_params:,} parameters), "
            f"batch {t['batch_size']}, from {start_text(cfg, resumed)}, {be.name} on "
            f"{be.device_name()} ({be.kernel_set} kernels, {threads_text()}); run folder {run.out_dir}\n"
            f"(train: rewarded choices, val: val accuracy, *: new best, "
            f"es: epochs without a gain > {t['min_delta']:g} / patience)")


def start_text(cfg, resumed):
    """Where the weights start: the checkpoint, init_from, or N(0, init_std²) from the seed."""
    if resumed:
        return "the checkpoint's weights"
    if cfg["init_from"]:
        return f"weights {cfg['init_from']} (--init-from)"
    return f"initial weights N(0, {cfg['train']['init_std']:g}²), seed {cfg['seed']}"


def done_line(run):
    """The closing line of a run that stopped (not interrupted): best val_acc and where the files are."""
    extra = f", test_acc {run.test_acc:.4f}" if run.test_acc is not None else ""
    best = f"{run.best_val_acc:.4f} at epoch {run.best_epoch}" if run.best_epoch else "none"
    on = " (ON THE MNIST SAMPLE, not full MNIST)" if run.data_info["fallback"] else ""
    return (f"done ({run.stop_reason}) after {epochs_text(len(run.history))}: best val_acc {best}{extra}{on}; "
            f"files in {run.out_dir}")

