"""One epoch of the paper's protocol, and evaluation (BRAINPROP.md, "One learning trial").

Every epoch the training images are reshuffled with a permutation drawn from the run's
host random generator (numpy default_rng([seed, 1]); weights use default_rng(seed)).
Exploration and dropout draw from the counter-based generator (brainprop_np/philox.py) at
trial number net.draws.step, which the epoch sets to epoch·n_batches + batch before its
first trial and each trial advances: batch b of epoch e draws the same numbers however the
run got there (a resume included) and on every backend. Each batch is one learning trial: q, the chosen
action, its reward and delta = reward − q[action], the attention-gated fb from the chosen
unit down, and the tags pre × fb; then plain SGD at lr(epoch) = lr·0.5^(epoch //
lr_halve_every). BrainProp's loss divides by the nominal batch size, also for the last,
smaller batch. Training accuracy counts the rewarded actions the network *chose*
(Trial.n_correct); validation runs after every epoch in inference mode (argmax q). Loss
and counts (rules.base.METRICS) are added by the trials themselves — BrainProp's in its
output-step kernel — into one float64 accumulator on the device, allocated once per run
and read once per epoch; the L2 term of the loss (from the SGD step) is added beside them.

Ctrl-C (SIGINT) or SIGTERM inside an epoch: the current batch finishes, then the checkpoint is written
*mid-epoch* with the epoch's permutation, the index of the next batch, the partial sums and
the seconds spent (resume.py continues from there). A second signal aborts at once.
"""
import math
import time

import numpy as np

from ..backend import to_host
from ..rules.base import METRICS
from .failures import guarded
from .per_class import class_row
from .progress import Progress
from .resume import write_checkpoint
from .setup import load_weights
from . import stop_reasons as R


def step(rule, opt, net, x, y, lr, batch_size, metrics=None):
    """One learning trial on a batch and its weight update (what training and explain's
    pre-training both do): the rule computes q, action, reward, delta, fb and the tags (and
    adds its sums to `metrics`, a float64 accumulator of METRICS, when given), SGD applies
    them. Returns (trial, the L2 term l2·ΣW² before the update, or None), the L2 term also
    added, times the batch's length, to metrics' loss sum."""
    trial = rule.trial(net, x, y, train=True, batch_size=batch_size, metrics=metrics)
    reg = opt.step(net, lr)
    if reg is not None and metrics is not None:
        loss_sum = metrics[0:1]                # a view: added in place, no copy back
        loss_sum += reg * len(y)
    return trial, reg


def run_epoch(run, stop_flag):
    """The training pass of epoch run.epoch (from batch run.batch): a trial and an SGD step
    per batch. Returns the epoch's history row (val_acc still None), or None when the epoch
    stopped: Ctrl-C or SIGTERM inside it (mid-epoch checkpoint) or a non-finite loss (run.stop_reason says)."""
    bs = run.cfg["train"]["batch_size"]
    nb = run.train_it.n_batches(bs)
    perm, sums, seconds = _shuffle_or_continue(run)
    lr = run.opt.lr_at(run.epoch)
    b = run.batch
    run.net.draws.step = run.epoch * nb + b    # the trial number of (epoch, batch): what it draws
    seen = [b * bs]                    # images of this epoch so far (for the bar's running stats)
    bar = _bar(run, nb, sums, seen)
    run.phase = "training"
    run.backend.synchronize()
    t0 = time.perf_counter()
    batches = run.train_it.epoch(bs, perm[b * bs:])
    try:
        for x, y in batches:
            step(run.rule, run.opt, run.net, x, y, lr, bs, sums)
            b += 1
            seen[0] += len(y)
            bar.update(images=len(y))
            if stop_flag.set and b < nb:
                break
    finally:
        batches.close()
        bar.close()
    run.backend.synchronize()
    seconds += time.perf_counter() - t0
    if b < nb:                         # interrupted inside the epoch
        _interrupted(run, b, nb, perm, sums, seconds)
        return None
    return _row(run, sums, seconds, lr)


def _shuffle_or_continue(run):
    """(perm, sums, seconds): a fresh permutation and zero sums, or the interrupted epoch's.
    sums is the run's one float64 accumulator of METRICS on the device (allocated once)."""
    if run.metrics is None:
        run.metrics = run.backend.xp.zeros(len(METRICS), dtype=np.float64)
    if run.batch == 0:
        run.metrics.fill(0)
        return run.host_rng.permutation(len(run.train_it)), run.metrics, 0.0
    perm, old, seconds = run.partial
    run.partial = None
    run.metrics[...] = run.backend.asarray(np.asarray(old, dtype=np.float64))
    return perm, run.metrics, seconds


def _bar(run, n_batches, sums, seen):
    """The epoch's progress bar, with the running loss and reward rate."""
    def stats():
        k = max(seen[0], 1)
        loss_sum, correct = to_host(sums[:2])
        return f"loss {float(loss_sum) / k:.4f}  reward {float(correct) / k:.3f}"
    return Progress(n_batches, f"epoch {run.epoch + 1}/{run.cfg['train']['epochs']}", enabled=run.progress,
                    stats=stats, initial=run.batch)


def _interrupted(run, b, nb, perm, sums, seconds):
    """Ctrl-C or SIGTERM inside the epoch: the mid-epoch checkpoint (permutation, next batch, partial sums)."""
    run.batch = b
    arrays = dict(zip(METRICS, to_host(sums)))
    arrays.update(perm=np.asarray(perm, dtype=np.int64), seconds=np.float64(seconds))
    run.count_wall()
    write_checkpoint(run, arrays)
    run.stop_reason = R.INTERRUPTED
    run.message = f"interrupted in epoch {run.epoch + 1} after batch {b} of {nb}"


def _row(run, sums, seconds, lr):
    """The epoch's history row from its sums (None after a non-finite loss, which stops the run)."""
    n = len(run.train_it)
    loss_sum, correct, delta_sum, abs_sum, explored = (float(v) for v in to_host(sums))   # the epoch's one read
    if not math.isfinite(loss_sum / n):
        where = (f"the best weights (epoch {run.best_epoch}, val_acc {run.best_val_acc:.4f}) are kept in "
                 f"{run.path('weights_best.npz')}" if run.best_epoch else "no weights were saved")
        run.stop_reason = R.NON_FINITE_LOSS
        run.message = (f"the training loss became {loss_sum / n} in epoch {run.epoch + 1} (lr {lr}); "
                       f"the run stopped; {where}; lower train.lr or check the data")
        return None
    bp = run.cfg["algorithm"] == "brainprop"
    return {"epoch": run.epoch + 1, "lr": float(lr), "train_loss": loss_sum / n, "train_acc": correct / n,
            "val_acc": None, "epoch_seconds": seconds,
            "mean_delta": delta_sum / n if bp else float("nan"),
            "mean_abs_delta": abs_sum / n if bp else float("nan"),
            "explore_rate": explored / n if bp else float("nan")}


def validate(run):
    """After an epoch, from one pass over the validation images in inference mode (argmax q):
    (val_acc, the epoch's per_class.csv row: the accuracy of each class; None when the
    evaluation gave no counts)."""
    t = run.cfg["train"]
    run.phase = "evaluation"
    counts = {}
    acc = evaluate(run.net, run.val_it, t["eval_batch_size"], progress=run.progress,
                   label=f"validating {run.epoch + 1}/{t['epochs']}", counts=counts)
    run.phase = "training"
    return acc, (class_row(run.epoch + 1, counts) if counts else None)


def evaluate_best(run, test_it):
    """With a holdout: the test accuracy of the best weights (weights_best.npz), into run.test_acc."""
    load_weights(run.net, run.path("weights_best.npz"), "weights_best")
    with guarded("evaluating the best weights on the test set", "evaluation", run.cfg):
        run.test_acc = evaluate(run.net, test_it, run.cfg["train"]["eval_batch_size"], progress=run.progress,
                                label="testing the best weights")


def evaluate(net, batches, batch_size, progress=False, label="evaluating", counts=None):
    """Accuracy of argmax(q) in inference mode over a BatchIterator (one host read).

    progress: draw a bar (True, False, or None: when stderr is a terminal); counts: None,
    or a dict that receives the per-class counts of the same pass, int64 (C,) each:
    "images" (images of class c) and "correct" (those whose argmax q is c).
    """
    tally = None
    bar = Progress(batches.n_batches(batch_size), label, enabled=progress)
    try:
        for x, y in batches.epoch(batch_size):
            q = net.forward(x, train=False)
            t = class_tally(net.backend.xp, q, y)
            tally = t if tally is None else tally + t
            bar.update(images=len(y))
    finally:
        bar.close()
    if tally is None:
        return float("nan")
    tally = to_host(tally)                         # the pass's one read: (C, 2)
    if counts is not None:
        counts.update(images=tally.sum(axis=1), correct=tally[:, 1])
    return int(tally[:, 1].sum()) / len(batches)


def class_tally(xp, q, y):
    """(C, 2) int64 counts of one batch on the device, one bincount: [c, 1] the images of
    class c whose argmax q is c (the action chosen in inference mode is rewarded),
    [c, 0] the other images of class c. q: (B, C); y: (B,) int64 labels."""
    n_classes = q.shape[1]
    hit = q.argmax(axis=1) == y
    return xp.bincount(2 * y + hit, minlength=2 * n_classes).reshape(n_classes, 2)


def reg_loss(net, l2):
    """λ·ΣW² over the kernels, on the device (what Keras adds to the reported loss). SGD.step
    returns this term; kept as the reference the tests compare it with."""
    xp = net.backend.xp
    total = None
    for _, pname, w in net.trainable():
        if pname == "kernel":
            flat = w.ravel()                   # a view: no w*w temporary per kernel per batch
            s = xp.vdot(flat, flat)
            total = s if total is None else total + s
    return l2 * total
