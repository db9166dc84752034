"""Train, kill, resume: is a resumed run bit for bit the uninterrupted one? (scripts/gpu_check.sh, stage 5)

    PYTHONPATH=. python scripts/resume_check.py [--device gpu|cpu] [--out DIR] [--kill-after N]

Three runs of configs/quickstart.yaml (the locally-connected network with dropout, on the
bundled MNIST sample: exploration, dropout and the batched GEMM all take part), 2 epochs
of --images training images: (a) uninterrupted; (b) the same run, sent SIGINT (the real
Ctrl-C handler) after --kill-after learning trials, i.e. inside epoch 2, which writes the
mid-epoch checkpoint; (b') `--resume` of (b) to the end. Then the weights of the last
checkpoints and of weights_best.npz and every column of history.csv but epoch_seconds are
compared. Prints one line `resume: bit-exact` or `resume: NOT bit-exact (...)`.
Exit status 0 bit-exact, 3 the runs finished but differ, 1 a run failed.
"""
import argparse
import csv
import os
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import brainprop_np  # noqa: E402,F401  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
from brainprop_np.run import train as T  # noqa: E402
from brainprop_np.run.checkpoint import load_checkpoint  # noqa: E402
from brainprop_np.weights import read_weights  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc", "mean_delta", "mean_abs_delta", "explore_rate")


def kill_after(make_rule, n):
    """make_rule, whose rule sends this process SIGINT after its n-th learning trial."""
    done = [0]

    def make(*args, **kwargs):
        rule = make_rule(*args, **kwargs)
        trial = rule.trial

        def trial_then_count(*a, **kw):
            out = trial(*a, **kw)
            done[0] += 1
            if done[0] == n:
                os.kill(os.getpid(), signal.SIGINT)     # the real Ctrl-C handler takes it
            return out
        rule.trial = trial_then_count
        return rule
    return make


def differences(a, b):
    """What differs between the runs in folders a and b (an empty list: bit for bit the same)."""
    diff = []
    ha, hb = (list(csv.DictReader(open(d / "history.csv", newline=""))) for d in (a, b))
    if len(ha) != len(hb):
        return [f"{len(ha)} epochs against {len(hb)}"]
    diff += [f"history {c} of epoch {ra['epoch']}" for ra, rb in zip(ha, hb) for c in COLUMNS if ra[c] != rb[c]]
    pairs = [(read_weights(a / "weights_best.npz"), read_weights(b / "weights_best.npz"), "weights_best"),
             (load_checkpoint(a / "checkpoint.npz")[0], load_checkpoint(b / "checkpoint.npz")[0], "checkpoint")]
    for wa, wb, what in pairs:
        for layer in wa:
            for name in wa[layer]:
                x, y = np.asarray(wa[layer][name]), np.asarray(wb[layer][name])
                if x.tobytes() != y.tobytes():
                    diff.append(f"{what} {layer}/{name} (max |diff| {np.max(np.abs(x - y)):.3g})")
    return diff


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="gpu", choices=("gpu", "cpu", "auto"))
    ap.add_argument("--out", default=None, help="folder for the three runs (default: a temporary one)")
    ap.add_argument("--images", type=int, default=640, help="training images (batch 32: 20 batches an epoch)")
    ap.add_argument("--kill-after", type=int, default=30, help="learning trials before SIGINT (default 30: epoch 2)")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="resume_check_"))
    over = [f"device={args.device}", "train.epochs=2", f"data.limit_train={args.images}", "data.limit_test=500"]
    quiet = dict(verbose=False, progress=False)
    whole = T.train(CONFIG, out=out / "whole", overrides=over, **quiet)
    real = T.make_rule
    T.make_rule = kill_after(real, args.kill_after)
    try:
        killed = T.train(CONFIG, out=out / "killed", overrides=over, **quiet)
    finally:
        T.make_rule = real
    if not killed.interrupted:
        print(f"resume: the run was not interrupted ({killed.stop_reason}); see {out}")
        return 1
    resumed = T.train(resume=out / "killed", **quiet)
    print(f"backend {whole.summary['backend']} ({whole.summary['device_name']}); killed: "
          f"{killed.summary.get('message')}; resumed to {resumed.summary['epochs_run']} epochs")
    diff = differences(out / "whole", out / "killed")
    print("resume: bit-exact" if not diff else f"resume: NOT bit-exact ({len(diff)} differ: {'; '.join(diff[:4])})")
    return 0 if not diff else 3


if __name__ == "__main__":
    sys.exit(main())
