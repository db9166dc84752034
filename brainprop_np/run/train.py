"""The training loop: the paper's protocol, a run folder, checkpoints and exact resume.

    result = train("configs/mnist_conv.yaml", overrides=["train.epochs=2"])   # or a dict
    result = train(resume="runs/mnist_conv/20250101-120000", overrides=["train.epochs=10"])
    result.summary["best_val_acc"], result.out_dir, result.stop_reason

Protocol (BRAINPROP.md, "Exact settings"): every epoch the training images are
reshuffled with a permutation drawn from the run's host random generator
(numpy default_rng([seed, 1]); weights use default_rng(seed), exploration and dropout
use `net.rng`); plain SGD at lr(epoch) = lr·0.5^(epoch // lr_halve_every); BrainProp's
loss divides by the nominal batch size, also for the last, smaller batch. Training
accuracy counts the rewarded actions the network *chose* (Trial.n_correct); validation
runs after every epoch in inference mode (argmax). Loss and counts are summed on the
device and read once per epoch.

Early stopping follows Keras's EarlyStopping(monitor='val_accuracy', patience,
min_delta): an epoch improves when acc − min_delta > best, where acc is val_acc rounded
to float32 (Keras's val_accuracy is a float32 turned into a Python float, so a gain of
exactly min_delta sometimes counts) and best is that rounded value of the last
improving epoch; after an improvement the wait counter is 0, otherwise it grows
by one; training stops once wait ≥ patience (patience null: never). Independently,
`weights_best.npz` holds the weights of the epoch with the highest val_acc (the first
such epoch), which is what summary.json's best_val_acc / best_epoch report.

Outputs, in the run folder, each written to a temporary name and renamed into place:
config.yaml (resolved), history.csv, summary.json, weights_best.npz, checkpoint.npz and
accuracy.png (with matplotlib). After every epoch the checkpoint, history and summary
are rewritten; accuracy.png every PLOT_EVERY (10) epochs and whenever the run stops.

Runtime failures inside training or evaluation (a ValueError from a kernel, say) are
raised as TrainingError; MemoryError (CuPy's OutOfMemoryError included) passes through.
NumPy's floating-point warnings are silenced inside training and evaluation: a diverging
run ends with the one-line non-finite-loss error, not a page of RuntimeWarnings.

Interruption (SIGINT, Ctrl-C): the current batch finishes, then the checkpoint is
written *mid-epoch*: it stores the epoch's permutation, the index of the next batch,
the partial loss and correct sums (float64) and the seconds spent, next to the weights,
BatchNorm statistics and both random states. `--resume` continues with the next batch,
so on the CPU the resumed run ends with the same weights and history (epoch_seconds
aside) as an uninterrupted one, bit for bit. (On the GPU CuPy's generator state cannot
be saved: a resumed run reseeds it from (seed, epoch, batch) and is equivalent, not
identical.) A second Ctrl-C aborts at once; the last checkpoint on disk stays valid.
"""
import contextlib
import json
import math
import os
import platform
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backend import BackendError, to_host
from ..kernels import threads
from ..network import build_network
from ..optim import SGD
from ..rules import make_rule
from ..weights import load_weights_file, save_weights
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import ConfigError, check_resume_overrides, dump, load_config, read_yaml, resolve
from .figures import plot_accuracy
from .progress import Progress
from .runfolder import new_run_dir, write_csv, write_json, write_text

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "epoch_seconds",
                   "mean_delta", "mean_abs_delta", "explore_rate")
# mean_delta, mean_abs_delta: the mean δ = reward − q[action] and mean |δ| of the epoch's
# training trials; explore_rate: the fraction of trials whose chosen action was not the
# argmax of q (exploration that changed the choice). NaN for EBP, which has neither.
PLOT_EVERY = 10           # accuracy.png is redrawn every PLOT_EVERY epochs and when the run stops


class TrainingError(RuntimeError):
    """A runtime failure (missing data, no GPU, non-finite loss, unreadable weights); one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


class OutOfMemory(MemoryError):
    """Out of memory in one phase ('training', 'evaluation', 'copying the data to the device');
    `hint` says which setting to lower."""

    def __init__(self, message, phase, hint):
        super().__init__(" ".join(str(message).split()) or "MemoryError")
        self.phase, self.hint = phase, hint


_OOM_HINTS = {
    "training": lambda t: f"try a smaller train.batch_size (now {t['batch_size']}), "
                          f"e.g. train.batch_size={max(1, t['batch_size'] // 2)}",
    "evaluation": lambda t: f"try a smaller train.eval_batch_size (now {t['eval_batch_size']}), "
                            f"e.g. train.eval_batch_size={max(1, t['eval_batch_size'] // 2)}",
    "copying the data to the device": lambda t: "try data.limit_train=N or device=cpu",
}


def _oom(e, phase, cfg):
    return OutOfMemory(str(e), phase, _OOM_HINTS[phase](cfg["train"]))


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
        return self.stop_reason == "interrupted"


# ---------------------------------------------------------------------------------------
# small pieces

class _Say:
    """Where a run talks: epoch lines on stdout, notices on stderr (silent when not verbose)."""

    def __init__(self, verbose=True):
        self.verbose = verbose

    def out(self, text):
        if self.verbose:
            print(text, flush=True)

    def err(self, text):
        if self.verbose:
            print(text, file=sys.stderr, flush=True)


class _SigintFlag:
    """While active (main thread only), the first SIGINT sets `.set`; a second one aborts."""

    def __init__(self):
        self.set = False
        self._old = None

    def _handler(self, signum, frame):
        if self.set:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.set = True
        print("\nCtrl-C: finishing the current batch, then writing the checkpoint "
              "(press Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _epochs(n):
    """'1 epoch', '2 epochs'."""
    return f"{n} epoch" + ("" if n == 1 else "s")


def _configure_threads():
    """BLAS and kernel threads: the free cores, or $BRAINPROP_THREADS (kernels/threads.py)."""
    try:
        threads.configure()
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _compile_seconds(backend):
    """Seconds the fast CPU kernels took to compile or load from numba's cache (None otherwise)."""
    if backend.kernel_set != "fast":
        return None
    from ..kernels.fast.jit import compile_seconds
    return round(compile_seconds(), 3)


def _versions(backend):
    from .. import __version__
    v = {"python": platform.python_version(), "numpy": np.__version__, "brainprop_np": __version__}
    if backend.name == "cupy":
        v["cupy"] = backend.xp.__version__
    if backend.kernel_set == "fast":
        import numba
        v["numba"] = numba.__version__
    return v


def _as_config(config, overrides):
    if isinstance(config, (str, Path)):
        return load_config(config, overrides)
    if isinstance(config, dict):
        return resolve(config, overrides)
    raise ConfigError(f"config={type(config).__name__} is not allowed; use a path to a YAML file or a dict")


SAMPLE_LINE = ("warning: full MNIST not found and not downloadable: training on the bundled MNIST SAMPLE "
               "(5,000 images)")


def data_folder(cfg):
    """(folder, where) when the data folder was named (data.root, else $BRAINPROP_DATA), else (None, None)."""
    from ..data.paths import ENV_VAR
    if cfg["data"]["root"] not in (None, ""):
        return cfg["data"]["root"], "data.root"
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR], f"${ENV_VAR}"
    return None, None


def load_data(cfg, say, force=None):
    """(Dataset, info dict) for the config, with the MNIST-sample fallback.

    A named folder (data.root or $BRAINPROP_DATA) that lacks the files is an error naming
    the folder and the files, never a fallback: the sample stands in for MNIST only when
    no folder was named and nothing could be downloaded; then SAMPLE_LINE is printed
    (also when not verbose). force: the dataset a checkpoint used (resume uses that one).
    """
    from .. import data
    d = cfg["data"]
    name = force or d["name"]
    info = {"requested": d["name"], "used": name, "fallback": False, "fallback_reason": None}
    folder, where = data_folder(cfg)
    spec = data.dataset_info(name)
    if folder is not None and not spec.builtin and not Path(folder).expanduser().is_dir():
        raise TrainingError(f"{where}={folder}: no such folder; it should hold the {name} files "
                            f"({', '.join(spec.files)}) or a '{spec.folders[0]}' subfolder with them")
    try:
        ds = data.load(name, root=d["root"], download=d["download"], label_mode=d["label_mode"])
    except data.DataError as e:
        if force is None and d["fallback"] == "mnist_sample" and name == "mnist" and folder is None:
            print(SAMPLE_LINE, file=sys.stderr, flush=True)         # printed with -q too
            ds = data.load("mnist_sample")
            info.update(used="mnist_sample", fallback=True, fallback_reason=str(e))
        elif folder is not None:
            raise TrainingError(f"{e} ({where} names this folder, so the MNIST sample is not used instead)"
                                if d["fallback"] == "mnist_sample" and name == "mnist" else str(e)) from None
        else:
            raise TrainingError(str(e)) from None
    except ValueError as e:
        raise ConfigError(f"data: {e}") from None
    return ds, info


def on_sample(info):
    """' [MNIST SAMPLE]' when the run fell back to the bundled sample, else ''."""
    return " [MNIST SAMPLE]" if info.get("fallback") else ""


def _split(cfg, ds):
    from .. import data
    d = cfg["data"]
    try:
        return data.prepare(ds, limit_train=d["limit_train"], limit_test=d["limit_test"], holdout=d["holdout"])
    except ValueError as e:
        raise ConfigError(f"data.{e}") from None


def _build(cfg, split):
    t = cfg["train"]
    try:
        return build_network(cfg["model"], input_shape=split.input_shape, n_classes=split.n_classes,
                             seed=cfg["seed"], device=cfg["device"], dtype=cfg["dtype"],
                             algorithm=cfg["algorithm"], init_std=t["init_std"], kernels=cfg["kernels"],
                             **feedback_args(cfg))
    except BackendError as e:
        raise TrainingError(str(e)) from None
    except (ValueError, TypeError) as e:
        msg = str(e)
        msg = msg if msg.startswith("model") else f"model: {msg}"    # no "model: model layer 0 ..."
        raise ConfigError(f"{msg} (input {split.input_shape}, {split.n_classes} classes)") from None


def feedback_args(cfg):
    """build_network's untied-feedback arguments from a resolved config."""
    return {"feedback": cfg["feedback"], "feedback_decay": cfg["feedback_decay"],
            "feedback_sign": cfg["feedback_sign"]}


def _load_weights(net, path, what):
    try:
        load_weights_file(net, path)
    except ImportError as e:                    # h5py missing: the message says how to install it
        raise TrainingError(f"{what} {path}: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        msg = str(e)
        raise TrainingError(msg if str(path) in msg else f"{what} {path}: {msg}") from None


def evaluate(net, batches, batch_size, progress=False, label="evaluating"):
    """Accuracy of argmax(q) in inference mode over a BatchIterator (one host read).

    progress: draw a bar (True, False, or None: when stderr is a terminal).
    """
    correct = None
    bar = Progress(batches.n_batches(batch_size), label, enabled=progress)
    try:
        for x, y in batches.epoch(batch_size):
            q = net.forward(x, train=False)
            c = (q.argmax(axis=1) == y).sum()
            correct = c if correct is None else correct + c
            bar.update(images=len(y))
    finally:
        bar.close()
    return int(to_host(correct)) / len(batches) if correct is not None else float("nan")


@contextlib.contextmanager
def _quiet_fp():
    """No NumPy floating-point warnings (overflow, invalid value in matmul, ...) while inside.

    A diverging run would print them before its one-line error; the loss check after each
    epoch reports a non-finite loss instead. np.errstate covers this thread; the warnings
    filter covers any other thread (which does not inherit errstate).
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message=r"(overflow|invalid value|divide by zero|underflow) encountered")
        yield


@contextlib.contextmanager
def _runtime(where):
    """Raise a ValueError from inside training or evaluation (a kernel's, say) as TrainingError.

    where: text (or a callable returning it) that starts the message. ConfigError and
    MemoryError pass through unchanged.
    """
    try:
        yield
    except ConfigError:
        raise
    except ValueError as e:
        raise TrainingError(f"{where() if callable(where) else where}: {e}") from e


def _reg_loss(net, l2):
    """λ·ΣW² over the kernels, on the device (what Keras adds to the reported loss)."""
    xp = net.backend.xp
    total = None
    for _, pname, w in net.trainable():
        if pname == "kernel":
            flat = w.ravel()                   # a view: no w*w temporary per kernel per batch
            s = xp.vdot(flat, flat)
            total = s if total is None else total + s
    return l2 * total


def _reseed(net, seed, epoch, batch):
    """A fresh net.rng (and the dropout layers' reference to it) from (seed, epoch, batch)."""
    s = int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])
    net.rng = net.backend.rng(s)
    for layer in net.layers:
        if hasattr(layer, "rng"):
            layer.rng = net.rng


# ---------------------------------------------------------------------------------------
# the run

class _Run:
    """State and files of one run; `train` drives it."""

    def __init__(self, cfg, out_dir, say, progress):
        self.cfg, self.out_dir, self.say, self.progress = cfg, Path(out_dir), say, progress
        self.history = []
        self.epoch = 0            # 0-based index of the next (or interrupted) epoch
        self.batch = 0            # index of the next batch inside that epoch
        self.es_best, self.es_wait = None, 0
        self.best_val_acc, self.best_epoch = None, None
        self.stop_reason = None
        self.message = None
        self.test_acc = None
        self.partial = None       # (perm, sums, seconds) of an interrupted epoch
        self.phase = "training"   # what the run is doing (named by an out-of-memory error)
        self.mlflow_run_id = None
        self.loggers = None
        self.alignment = []       # alignment.csv rows (untied feedback), feedback.ALIGNMENT_COLUMNS
        self.align_batch = None   # (x, labels) of the fixed batch they are measured on

    # ---- files
    def path(self, name):
        return self.out_dir / name

    def write_history(self):
        write_csv(self.path("history.csv"), HISTORY_COLUMNS, self.history)

    def summary(self):
        secs = [r["epoch_seconds"] for r in self.history]
        s = {
            "name": self.cfg["name"],
            "algorithm": self.cfg["algorithm"],
            "model": self.cfg["model"],
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "stop_reason": self.stop_reason or "running",
            "mean_epoch_seconds": (sum(secs) / len(secs)) if secs else None,
            "final_lr": self.history[-1]["lr"] if self.history else None,
            "early_stopping": {"best": self.es_best, "wait": self.es_wait,
                               "patience": self.cfg["train"]["patience"],
                               "min_delta": self.cfg["train"]["min_delta"]},
            "backend": self.backend.name,
            "device": self.backend.device,              # 'cpu' | 'gpu', as the config's device
            "device_name": self.backend.device_name(),  # e.g. 'x86_64', 'NVIDIA H100 80GB HBM3'
            "kernels": self.backend.kernel_set,         # 'fast' | 'numpy' (CPU) | 'cuda'
            "threads": threads.current(),               # BLAS and kernel threads (kernels/threads.py)
            "kernel_compile_seconds": _compile_seconds(self.backend),
            "dtype": self.cfg["dtype"],
            "seed": self.cfg["seed"],
            "versions": _versions(self.backend),
            "dataset": self.data_info,
            "validation": ("test set" if not self.cfg["data"]["holdout"]
                           else f"holdout: last {self.cfg['data']['holdout']} training images"),
        }
        if self.cfg["data"]["holdout"]:
            s["test_acc"] = self.test_acc
        if self.message:
            s["message"] = self.message
        if self.mlflow_run_id:
            s["mlflow_run_id"] = self.mlflow_run_id
        return s

    def write_summary(self):
        write_json(self.path("summary.json"), self.summary())

    def write_plot(self):
        if self.history:
            try:
                drawn = plot_accuracy(self.history, self.best_epoch, self.path("accuracy.png"),
                                      title=f"{self.cfg['name']} ({self.cfg['algorithm']})"
                                            + (" on the MNIST SAMPLE, not full MNIST"
                                               if self.data_info.get("fallback") else ""))
                if not drawn and not getattr(self, "_said_no_plot", False):
                    self._said_no_plot = True
                    self.say.err("note: accuracy.png not drawn: matplotlib is not installed "
                                 "(pip install matplotlib)")
            except OSError:
                raise
            except Exception as e:  # a plotting problem must not end a training run
                self.say.err(f"note: accuracy.png not drawn ({type(e).__name__}: {e})")

    def meta(self):
        return {
            "epoch": self.epoch, "batch": self.batch, "history": self.history,
            "es_best": self.es_best, "es_wait": self.es_wait,
            "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "optimiser": {"name": "SGD", "lr": self.opt.lr0, "l2": self.opt.l2,
                          "halve_every": self.opt.halve_every, "momentum": 0.0,
                          "lr_now": self.opt.lr_at(self.epoch)},
            "rng": {"host": rng_state(self.host_rng), "net": rng_state(self.net.rng),
                    "net_backend": self.backend.name},
            "data": self.data_info,
            "seed": self.cfg["seed"],
            "mlflow_run_id": self.mlflow_run_id,
            "alignment": self.alignment,
        }

    def write_checkpoint(self, arrays=None):
        save_checkpoint(self.path("checkpoint.npz"), self.net.get_weights(), self.meta(), arrays)

    def restore(self, meta, arrays):
        self.epoch, self.batch = int(meta["epoch"]), int(meta["batch"])
        self.history = [dict(r) for r in meta["history"]]
        self.es_best, self.es_wait = meta["es_best"], int(meta["es_wait"])
        if self.es_best is not None:          # float32-rounded (a no-op for this version's checkpoints)
            self.es_best = float(np.float32(self.es_best))
        self.best_val_acc, self.best_epoch = meta["best_val_acc"], meta["best_epoch"]
        self.alignment = [dict(r) for r in meta.get("alignment", [])]
        if not set_rng_state(self.host_rng, meta["rng"]["host"]):
            raise TrainingError(f"{self.path('checkpoint.npz')}: the shuffling generator's state cannot be restored")
        if not set_rng_state(self.net.rng, meta["rng"]["net"]):
            self.say.err("note: the device random generator's state could not be restored "
                         f"(checkpoint from {meta['rng'].get('net_backend')}, now {self.backend.name}); "
                         "exploration and dropout continue from a generator reseeded from (seed, epoch, batch): "
                         "an equivalent, not bit-identical continuation")
            _reseed(self.net, self.cfg["seed"], self.epoch, self.batch)
        self.mlflow_run_id = meta.get("mlflow_run_id")
        if self.batch:
            zero = np.float64(0.0)
            sums = [arrays.get(k, zero) for k in SUMS]        # checkpoints before 0.1.1 lack the δ sums
            self.partial = (np.asarray(arrays["perm"]), sums, float(arrays["seconds"]))

    def measure_alignment(self):
        """Untied feedback: append this epoch's angles to alignment.csv (feedback.alignment).

        Inference mode on a fixed batch: no random draw and no statistic changes, so the
        run continues exactly as it would without the measurement.
        """
        from .. import feedback as F
        if self.align_batch is None or not F.is_untied(self.net):
            return
        x, y = self.align_batch
        self.alignment += F.alignment(self.net, self.rule, x, y, epoch=self.epoch,
                                      batch_size=self.cfg["train"]["batch_size"])
        write_csv(self.path("alignment.csv"), F.ALIGNMENT_COLUMNS, self.alignment)

    def es_text(self):
        """Early stopping's counter for the epoch line (epochs without a gain / patience)."""
        t = self.cfg["train"]
        if t["patience"] is None:
            return "es off"
        return f"es {self.es_wait}/{t['patience']}"

    # ---- the loop
    def stop_before_epoch(self):
        return _stop_reason(self.cfg["train"], self.epoch, self.es_wait)

    def loop(self, sigint):
        t = self.cfg["train"]
        be, xp, net = self.backend, self.backend.xp, self.net
        bs, n = t["batch_size"], len(self.train_it)
        nb = self.train_it.n_batches(bs)
        while True:
            if self.batch == 0:
                reason = self.stop_before_epoch()
                if reason:
                    self.stop_reason = reason
                    return
                perm = self.host_rng.permutation(n)
                sums = [xp.zeros((), dtype=np.float64) for _ in SUMS]
                seconds = 0.0
            else:
                perm, old, seconds = self.partial
                sums = [be.asarray(np.asarray(v, dtype=np.float64)) for v in old]
                self.partial = None
            loss_sum, correct, delta_sum, abs_sum, explored = sums
            lr = self.opt.lr_at(self.epoch)
            b = self.batch
            seen = [b * bs]                    # images of this epoch so far (for the bar's running stats)

            def stats():
                k = max(seen[0], 1)
                return (f"loss {float(to_host(loss_sum)) / k:.4f}  "
                        f"reward {float(to_host(correct)) / k:.3f}")

            bar = Progress(nb, f"epoch {self.epoch + 1}/{t['epochs']}", enabled=self.progress,
                           stats=stats, initial=b)
            self.phase = "training"
            be.synchronize()
            t0 = time.perf_counter()
            batches = self.train_it.epoch(bs, perm[b * bs:])
            try:
                for x, y in batches:
                    trial = self.rule.trial(net, x, y, train=True, batch_size=bs)
                    if trial.delta is not None:
                        delta_sum += trial.delta.sum(dtype=np.float64)
                        abs_sum += xp.abs(trial.delta).sum(dtype=np.float64)
                        explored += (trial.actions != trial.q.argmax(axis=1)).sum()
                    reg = self.opt.step(net, lr)      # the L2 term l2·ΣW² (before the update) when l2 > 0
                    if reg is not None:
                        loss_sum += reg * len(y)
                    loss_sum += trial.loss * len(y)
                    correct += trial.n_correct
                    b += 1
                    seen[0] += len(y)
                    bar.update(images=len(y))
                    if sigint.set and b < nb:
                        break
            finally:
                batches.close()
                bar.close()
            be.synchronize()
            seconds += time.perf_counter() - t0
            if b < nb:                         # interrupted inside the epoch
                self.batch = b
                arrays = {k: to_host(v) for k, v in zip(SUMS, (loss_sum, correct, delta_sum, abs_sum, explored))}
                arrays.update(perm=np.asarray(perm, dtype=np.int64), seconds=np.float64(seconds))
                self.write_checkpoint(arrays)
                self.stop_reason = "interrupted"
                self.message = f"interrupted in epoch {self.epoch + 1} after batch {b} of {nb}"
                return
            train_loss = float(to_host(loss_sum)) / n
            train_acc = float(to_host(correct)) / n
            if not math.isfinite(train_loss):
                self.stop_reason = "non_finite_loss"
                where = (f"the best weights (epoch {self.best_epoch}, val_acc {self.best_val_acc:.4f}) are kept in "
                         f"{self.path('weights_best.npz')}" if self.best_epoch else "no weights were saved")
                self.message = (f"the training loss became {train_loss} in epoch {self.epoch + 1} (lr {lr}); "
                                f"the run stopped; {where}; lower train.lr or check the data")
                return
            self.phase = "evaluation"
            val_acc = evaluate(net, self.val_it, t["eval_batch_size"], progress=self.progress,
                               label=f"validating {self.epoch + 1}/{t['epochs']}")
            self.phase = "training"
            bp = self.cfg["algorithm"] == "brainprop"
            row = {"epoch": self.epoch + 1, "lr": float(lr), "train_loss": train_loss,
                   "train_acc": train_acc, "val_acc": val_acc, "epoch_seconds": seconds,
                   "mean_delta": float(to_host(delta_sum)) / n if bp else float("nan"),
                   "mean_abs_delta": float(to_host(abs_sum)) / n if bp else float("nan"),
                   "explore_rate": float(to_host(explored)) / n if bp else float("nan")}
            self.history.append(row)
            mark = ""
            if self.best_val_acc is None or val_acc > self.best_val_acc:
                self.best_val_acc, self.best_epoch = val_acc, self.epoch + 1
                save_weights(self.path("weights_best.npz"), net)
                mark = " *"
            # Keras's test: its val_accuracy is a float32 turned into a Python float, so the
            # comparison (in float64) is made on the float32-rounded value; es_best keeps it.
            es_acc = float(np.float32(val_acc))
            if self.es_best is None or es_acc - t["min_delta"] > self.es_best:
                self.es_best, self.es_wait = es_acc, 0
            else:
                self.es_wait += 1
            self.epoch, self.batch = self.epoch + 1, 0
            self.measure_alignment()
            self.write_checkpoint()
            self.write_history()
            self.write_summary()
            if self.loggers is not None:
                self.loggers.epoch(row)
            if self.epoch % PLOT_EVERY == 0:     # and always when the run stops (train())
                self.write_plot()
            self.say.out(epoch_line(row, t["epochs"], mark, self.best_val_acc, self.best_epoch, self.es_text())
                         + on_sample(self.data_info))
            if sigint.set and self.stop_before_epoch() is None:
                self.stop_reason = "interrupted"
                self.message = f"interrupted after epoch {self.epoch}"
                return


SUMS = ("loss_sum", "correct", "delta_sum", "abs_delta_sum", "explored")   # per-epoch sums (float64)


def epoch_line(row, epochs, mark, best, best_epoch, es):
    """One line per epoch, at most ~100 characters: loss, train (rewarded choices), val, time,
    best val_acc @ epoch and early stopping's counter (es: epochs without a gain / patience)."""
    return (f"epoch {row['epoch']:>3}/{epochs}  loss {row['train_loss']:.4f}  train {row['train_acc']:.4f}  "
            f"val {row['val_acc']:.4f}{mark or '  '}  {row['epoch_seconds']:.1f}s  "
            f"best {best:.4f} @ {best_epoch}  {es}")


def _stop_reason(t, epochs_run, es_wait):
    """Why a run with `epochs_run` epochs and early-stopping counter `es_wait` stops before
    its next epoch under the train section `t` ('early_stopping', 'max_epochs'), or None."""
    if t["patience"] is not None and es_wait > 0 and es_wait >= t["patience"]:
        return "early_stopping"
    if epochs_run >= t["epochs"]:
        return "max_epochs"
    return None


def _finished(run_dir, cfg, meta, say):
    """For a resume, before any data is loaded: refuse a train.epochs below the epochs the
    checkpoint holds (ConfigError); when the run has nothing left to do under `cfg`, say so
    in one line and return its TrainResult (summary.json's, with this stop_reason; no file
    is written); else None.
    """
    t = cfg["train"]
    n, batch, wait = int(meta["epoch"]), int(meta["batch"]), int(meta["es_wait"])
    if batch and t["epochs"] <= n:
        raise ConfigError(f"train.epochs={t['epochs']} is not allowed when resuming {run_dir}: it stopped inside "
                          f"epoch {n + 1} after {_epochs(n)}; give train.epochs >= {n + 1}")
    if t["epochs"] < n:
        raise ConfigError(f"train.epochs={t['epochs']} is not allowed when resuming {run_dir}: it has run "
                          f"{_epochs(n)} already; give train.epochs=M with M > {n} to extend it")
    reason = None if batch else _stop_reason(t, n, wait)
    if reason is None:
        return None
    hints = []
    if n >= t["epochs"]:
        hints.append(f"train.epochs=M with M > {n}")
    if reason == "early_stopping":
        hints.append(f"train.patience=P with P > {wait} (or null)")
    say.out(f"{run_dir}: run already finished after {_epochs(n)} ({reason}); give {' and '.join(hints)} to extend it")
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {"best_val_acc": meta["best_val_acc"], "best_epoch": meta["best_epoch"], "epochs_run": n}
    summary["stop_reason"] = reason
    return TrainResult(Path(run_dir), summary, [dict(r) for r in meta["history"]])


def check_resume_folder(run_dir):
    """ConfigError unless `run_dir` is a run folder (checkpoint.npz and config.yaml in it)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {run_dir}: no such folder; give a run folder written by training "
                          "(runs/<name>-<algorithm>/<time>)")
    lacks = [f for f in ("checkpoint.npz", "config.yaml") if not (run_dir / f).is_file()]
    if lacks:
        raise ConfigError(f"--resume {run_dir} is not a run folder: no {' or '.join(lacks)} in it; give a "
                          "folder written by training (runs/<name>-<algorithm>/<time>)")


def resolve_config(config=None, overrides=(), resume=None):
    """The resolved config a run would use (what --print-config prints); no data, no files."""
    if resume is not None:
        check_resume_folder(resume)
        old = resolve(read_yaml(Path(resume) / "config.yaml"))
        cfg = resolve(old, overrides)
        check_resume_overrides(old, cfg)
        return cfg
    if config is None:
        raise ConfigError("config=None is not allowed; give a YAML path or a dict (or resume=RUN_DIR)")
    return _as_config(config, overrides)


def _check_device(cfg):
    """Before any data is loaded: device=gpu without a GPU is a TrainingError, a bad
    $BRAINPROP_KERNELS a ConfigError."""
    from ..backend import get_backend
    try:
        get_backend(cfg["device"], cfg["kernels"])
    except BackendError as e:
        raise TrainingError(str(e)) from None
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _check_batch(cfg, n_train):
    bs = cfg["train"]["batch_size"]
    if bs > n_train:
        raise ConfigError(f"train.batch_size={bs} is not allowed: it exceeds the {n_train:,} training images; "
                          f"use at most {n_train}")


def _start_text(cfg, meta):
    """Where the weights start: the checkpoint, init_from, or N(0, init_std²) from the seed."""
    if meta:
        return "the checkpoint's weights"
    if cfg["init_from"]:
        return f"weights {cfg['init_from']} (--init-from)"
    return f"initial weights N(0, {cfg['train']['init_std']:g}²), seed {cfg['seed']}"


def train(config=None, out=None, overrides=(), resume=None, verbose=True, progress=None):
    """Run the paper's protocol for `config` (YAML path or dict) and return a TrainResult.

    out: run folder (default runs/<name>-<algorithm>/<YYYYmmdd-HHMMSS>); overrides:
    ['train.epochs=2', ...]; resume: a run folder to continue from its checkpoint.npz
    (overrides may change only config.RESUMABLE_KEYS, e.g. a larger train.epochs; a run
    with nothing left to do is reported in one line and returned without loading data; a
    train.epochs below the epochs already run is a ConfigError); verbose: print epoch
    lines and notices; progress: draw progress bars (default: when stderr is a terminal).

    Raises ConfigError (bad config, a batch larger than the training set, a --resume
    folder that is not a run), TrainingError (runtime failure, e.g. missing data, no GPU,
    a non-finite loss: then the files are written first), OutOfMemory (naming the phase).
    On Ctrl-C the result has stop_reason 'interrupted' and the checkpoint can be resumed.
    """
    from .loggers import Loggers, LoggingError
    say = _Say(verbose)
    meta = arrays = ckpt_weights = None
    if resume is not None:
        run_dir = Path(resume)
        cfg = resolve_config(overrides=overrides, resume=run_dir)
        try:
            ckpt_weights, meta, arrays = load_checkpoint(run_dir / "checkpoint.npz")
        except (OSError, ValueError, KeyError) as e:
            raise TrainingError(f"cannot resume: {e}") from None
        done = _finished(run_dir, cfg, meta, say)
        if done is not None:
            return done
    else:
        cfg = resolve_config(config, overrides)
        if out is not None and (Path(out) / "checkpoint.npz").exists():
            raise ConfigError(f"--out {out} is not allowed: it already holds a run; continue it with "
                              f"--resume {out} or choose another folder")
    _check_device(cfg)
    try:
        loggers = Loggers(cfg, say.err)
    except LoggingError as e:
        raise TrainingError(str(e)) from None

    ds, data_info = load_data(cfg, say, force=meta["data"]["used"] if meta else None)
    if meta:      # a resumed run trains on the checkpoint's data: keep its provenance (MNIST-sample fallback)
        data_info.update({k: meta["data"][k] for k in ("requested", "fallback", "fallback_reason") if k in meta["data"]})
    split = _split(cfg, ds)
    _check_batch(cfg, len(split.x_train))
    data_info.update(n_train=len(split.x_train), n_val=len(split.x_val), n_test=len(split.x_test),
                     n_classes=split.n_classes)
    if meta and any(meta["data"].get(k) != data_info[k] for k in ("n_train", "n_val", "n_test")):
        raise TrainingError(f"cannot resume: the data differ from the checkpoint's "
                            f"({meta['data']['used']} {meta['data']['n_train']}/{meta['data']['n_val']}/"
                            f"{meta['data']['n_test']} train/val/test, now {data_info['n_train']}/"
                            f"{data_info['n_val']}/{data_info['n_test']})")
    _configure_threads()
    net = _build(cfg, split)
    if meta:
        try:
            net.set_weights(ckpt_weights)
        except ValueError as e:
            raise TrainingError(f"cannot resume: {e}") from None
    elif cfg["init_from"]:
        _load_weights(net, cfg["init_from"], "init_from")

    from ..data import BatchIterator
    run_name = f"{cfg['name']}-{cfg['algorithm']}"
    run = _Run(cfg, new_run_dir(run_name, out) if resume is None else Path(resume), say,
               progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)()))
    run.backend, run.net, run.data_info = net.backend, net, data_info
    run.rule = make_rule(cfg["algorithm"], cfg["brainprop"]["epsilon"])
    t = cfg["train"]
    run.opt = SGD(lr=t["lr"], l2=t["l2"], halve_every=t["lr_halve_every"])
    run.host_rng = np.random.default_rng([cfg["seed"], 1])
    if meta:
        run.restore(meta, arrays)
    try:
        run.train_it = BatchIterator(split.x_train, split.y_train, net.backend, cfg["dtype"])
        if cfg["alignment"]:
            n_align = min(t["batch_size"], len(split.x_train))    # the first training images, every epoch
            run.align_batch = next(BatchIterator(split.x_train[:n_align], split.y_train[:n_align], net.backend,
                                                 cfg["dtype"]).epoch(n_align))
        run.val_it = BatchIterator(split.x_val, split.y_val, net.backend, cfg["dtype"])
    except MemoryError as e:
        raise _oom(e, "copying the data to the device", cfg) from e

    write_text(run.path("config.yaml"),
               "# The resolved config of this run (every key; preset defaults filled in).\n"
               f"# Continue it with: brainprop train --resume {run.out_dir} [train.epochs=N]\n" + dump(cfg))
    n_params = sum(int(np.prod(a.shape)) for _, _, a in net.trainable())
    val = "the test set" if not cfg["data"]["holdout"] else f"{len(split.x_val)} held-out training images"
    verb = f"resuming at epoch {run.epoch + 1}" + (f" batch {run.batch + 1}" if run.batch else "") if meta else "training"
    used = data_info["used"] + (" (THE BUNDLED SAMPLE, not full MNIST)" if data_info["fallback"] else "")
    say.out(f"{cfg['name']}: {verb}; {cfg['algorithm']} on {used} ({len(split.x_train)} train, "
            f"validation on {val} ({len(split.x_val)})), model "
            f"{cfg['model'] if isinstance(cfg['model'], str) else 'custom'} ({n_params:,} parameters), "
            f"batch {t['batch_size']}, from {_start_text(cfg, meta)}, {net.backend.name} on "
            f"{net.backend.device_name()} ({net.backend.kernel_set} kernels, {threads.current()} threads); "
            f"run folder {run.out_dir}")
    say.out(f"(train: rewarded choices, val: val accuracy, *: new best, "
            f"es: epochs without a gain > {t['min_delta']:g} / patience)")
    loggers.open(run.out_dir, resume_id=run.mlflow_run_id)
    run.loggers, run.mlflow_run_id = loggers, loggers.run_id or run.mlflow_run_id

    status = "FAILED"
    try:
        # NumPy's floating-point warnings (overflow, invalid value in matmul) would precede the
        # one-line non-finite-loss error: the loss check after each epoch reports it instead.
        with _quiet_fp(), _SigintFlag() as sigint, \
                _runtime(lambda: f"training stopped in epoch {run.epoch + 1}"):
            try:
                if not meta:
                    run.measure_alignment()          # epoch 0: the initial network
                run.loop(sigint)
            except MemoryError as e:
                raise _oom(e, run.phase, cfg) from e
    except KeyboardInterrupt:
        status = "KILLED"
        if run.path("checkpoint.npz").is_file():
            say.err(f"aborted; the last checkpoint in {run.out_dir} is intact: "
                    f"brainprop train --resume {run.out_dir}")
        raise
    except (TrainingError, MemoryError):
        try:
            run.write_plot()               # the run stopped: draw the epochs it finished
        except Exception:
            pass
        raise
    finally:
        if status != "FINISHED" and run.stop_reason is None:
            loggers.close(status, [run.path(f) for f in _ARTIFACTS])

    if run.stop_reason in ("early_stopping", "max_epochs") and cfg["data"]["holdout"] and run.best_epoch:
        _load_weights(net, run.path("weights_best.npz"), "weights_best")
        test_it = BatchIterator(split.x_test, split.y_test, net.backend, cfg["dtype"])
        try:
            with _quiet_fp(), _runtime("evaluating the best weights on the test set"):
                run.test_acc = evaluate(net, test_it, t["eval_batch_size"], progress=run.progress,
                                        label="testing the best weights")
        except MemoryError as e:
            raise _oom(e, "evaluation", cfg) from e
    run.write_history()
    run.write_summary()
    run.write_plot()
    loggers.close({"interrupted": "KILLED", "non_finite_loss": "FAILED"}.get(run.stop_reason, "FINISHED"),
                  [run.path(f) for f in _ARTIFACTS])
    summary = run.summary()
    if run.stop_reason == "non_finite_loss":
        raise TrainingError(run.message)
    if run.stop_reason != "interrupted":
        extra = f", test_acc {run.test_acc:.4f}" if run.test_acc is not None else ""
        best = f"{run.best_val_acc:.4f} at epoch {run.best_epoch}" if run.best_epoch else "none"
        on = " (ON THE MNIST SAMPLE, not full MNIST)" if data_info["fallback"] else ""
        say.out(f"done ({run.stop_reason}) after {_epochs(len(run.history))}: best val_acc {best}{extra}{on}; "
                f"files in {run.out_dir}")
    return TrainResult(run.out_dir, summary, list(run.history))


_ARTIFACTS = ("weights_best.npz", "accuracy.png", "history.csv", "summary.json", "config.yaml")


def evaluate_weights(config, weights, overrides=(), verbose=True, progress=None):
    """Accuracy of saved weights (.npz or Keras .h5) on the config's test set.

    progress: draw a bar (default: when verbose and stderr is a terminal).
    Returns (accuracy, n_images, dataset_name).
    """
    say = _Say(verbose)
    cfg = _as_config(config, overrides)
    _check_device(cfg)
    ds, info = load_data(cfg, say)
    split = _split(cfg, ds)
    _configure_threads()
    net = _build(cfg, split)
    _load_weights(net, weights, "--load")
    from ..data import BatchIterator
    try:
        it = BatchIterator(split.x_test, split.y_test, net.backend, cfg["dtype"])
        with _quiet_fp(), _runtime(f"evaluating {weights}"):
            acc = evaluate(net, it, cfg["train"]["eval_batch_size"], progress=progress if verbose else False,
                           label="evaluating")
    except MemoryError as e:
        raise _oom(e, "evaluation", cfg) from e
    return acc, len(split.x_test), info["used"]
