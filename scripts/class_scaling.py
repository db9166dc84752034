"""How learning scales with the number of classes: epochs that BrainProp and EBP
need to reach a fixed fraction of their final accuracy on k = 2, 5, 10 MNIST classes.

    python scripts/class_scaling.py [--net dense] [--ks 2,5,10] [--algorithms brainprop,ebp]
        [--seeds 1-2] [--epochs 5] [--limit-train 2000] [--limit-test 1000] [--fraction 0.9]
        [--runs runs/class_scaling] [--write docs/results.md] [key=value ...]

Each run trains configs/mnist_<net>.yaml on the first k digits (`data.classes=[0..k-1]`,
relabelled 0..k-1), the first --limit-train training images of those classes, validating
on the first --limit-test test images of those classes, for exactly --epochs epochs (no
early stopping), the paper's settings otherwise. Per run, the epochs to the fraction is
the first epoch whose accuracy reaches fraction × the run's best, on the validation curve
(inference mode) and on the training curve (the epoch's rewarded trials; for BrainProp
its exploration included). Runs go to RUNS/k<k>_<algorithm>_seed<s>; a finished run is read,
not retrained, so the script can be stopped and started again. With --write FILE the
table replaces the text between `<!-- class-scaling:begin -->` and `:end -->` in FILE and
the figure goes beside it (class_scaling.png); the table is printed in any case.
"""
import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import brainprop_np as bp  # noqa: E402
from brainprop_np.run.console import plural  # noqa: E402
from brainprop_np.run.history import read_history  # noqa: E402
from pages import mean_std, train_or_read, write_between_markers  # noqa: E402

MARKER = "class-scaling"
FIGURE = "class_scaling.png"


def seed_list(text):
    """'1-3' → [1, 2, 3]; '1,4' → [1, 4]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def overrides(args, k, algorithm, seed):
    """The overrides of one run."""
    return [f"algorithm={algorithm}", f"seed={seed}", f"data.classes=[{', '.join(map(str, range(k)))}]",
            f"train.epochs={args.epochs}", "train.patience=null", f"data.limit_train={args.limit_train}",
            f"data.limit_test={args.limit_test}"] + list(args.overrides)


def epochs_to(curve, fraction):
    """The first epoch (1-based) whose accuracy reaches fraction × the best of `curve`."""
    goal = fraction * max(curve)
    return next(i + 1 for i, acc in enumerate(curve) if acc >= goal)


def measure(args, k, algorithm, seed):
    """One run, trained or read back: {"summary", "val", "train" (accuracy per epoch),
    "val_reach", "train_reach" (epochs to the fraction of each curve's best)}."""
    out = Path(args.runs) / f"k{k}_{algorithm}_seed{seed}"
    t0 = time.time()
    s = train_or_read(ROOT / "configs" / f"mnist_{args.net}.yaml", out, overrides(args, k, algorithm, seed))
    history = read_history(out)
    r = {"summary": s, "val": [h["val_acc"] for h in history], "train": [h["train_acc"] for h in history]}
    r["val_reach"], r["train_reach"] = epochs_to(r["val"], args.fraction), epochs_to(r["train"], args.fraction)
    print(f"k={k:<2} {algorithm:9s} seed {seed}: best val_acc {s['best_val_acc']:.4f} at epoch "
          f"{s['best_epoch']}; {args.fraction:.0%} of it at epoch {r['val_reach']}, of the best train_acc at "
          f"epoch {r['train_reach']} ({time.time() - t0:.0f} s)", flush=True)
    return r


def table(args, cells):
    """The markdown table: one row per k × rule (cells: {(k, rule): [measure's dicts]})."""
    pct = f"{args.fraction:.0%}"
    lines = [f"| k (classes 0..k−1) | rule | seeds | epochs to {pct} of the best val accuracy | "
             f"epochs to {pct} of the best training accuracy | best val accuracy % | best training accuracy % "
             "| chance % |", "|---|---|---|---|---|---|---|---|"]
    for (k, rule), runs in cells.items():
        lines.append(f"| {k} | {rule} | {len(runs)} | {mean_std([r['val_reach'] for r in runs], 1)} | "
                     f"{mean_std([r['train_reach'] for r in runs], 1)} | "
                     f"{mean_std([r['summary']['best_val_acc'] for r in runs], 2, 100)} | "
                     f"{mean_std([max(r['train']) for r in runs], 2, 100)} | {100 / k:.0f} |")
    return "\n".join(lines)


def command(args):
    """The command line that regenerates the section."""
    extra = "".join(f" {o}" for o in args.overrides)
    return (f"python scripts/class_scaling.py --net {args.net} --ks {args.ks} --algorithms {args.algorithms} "
            f"--seeds {args.seeds} --epochs {args.epochs} --limit-train {args.limit_train} "
            f"--limit-test {args.limit_test} --fraction {args.fraction:g} --write docs/results.md{extra}")


def section(args, cells, minutes):
    """The generated section: how it was made, the budget, the table, the figure."""
    s0 = next(iter(cells.values()))[0]["summary"]
    ds = s0["dataset"]
    return "\n".join([
        f"Generated by `{command(args)}` ({datetime.date.today().isoformat()}, {s0['backend']} on "
        f"{s0['device_name']}, {s0['kernels']} kernels, {plural(s0['threads'], 'thread')}, brainprop_np "
        f"{bp.__version__}, {minutes:.1f} min of training in all).",
        "",
        f"Budget: `configs/mnist_{args.net}.yaml` ({'MNIST SAMPLE' if ds['fallback'] else ds['used']}), "
        f"the first {args.limit_train:,} training images of the k classes, validation on the first "
        f"{args.limit_test:,} test images of the k classes, {args.epochs} epochs per run without early "
        f"stopping, seeds {args.seeds}, the config's settings (the paper's) otherwise.",
        "",
        table(args, cells),
        "",
        f"![validation and training accuracy against epoch per k and rule, mean over seeds]({FIGURE})",
    ])


def figure(args, cells, path):
    """Mean accuracy per epoch, one panel per k, BrainProp beside EBP: validation (top row),
    training (bottom row)."""
    from brainprop_np.run.figures import epoch_axes, new_figure, save_png
    ks = sorted({k for k, _ in cells})
    fig = new_figure((3.2 * len(ks), 6.2))
    for row, (curve, label) in enumerate((("val", "validation accuracy"), ("train", "training accuracy"))):
        for i, k in enumerate(ks):
            ax = fig.add_subplot(2, len(ks), row * len(ks) + i + 1)
            for j, ((kk, rule), runs) in enumerate(cells.items()):
                if kk == k:
                    curves = [r[curve] for r in runs]
                    mean = [statistics.mean(c[e] for c in curves) for e in range(min(map(len, curves)))]
                    ax.plot(range(1, len(mean) + 1), mean, marker="o", markersize=3, color=f"C{j % 2}",
                            label=f"{rule} (n={len(runs)})")
            ax.axhline(1 / k, color="grey", linestyle=":", linewidth=1)
            epoch_axes(ax, label if i == 0 else "")
            ax.set_title(f"k = {k} classes", fontsize=10)
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", default="dense", choices=("dense", "conv", "loccon"))
    p.add_argument("--ks", default="2,5,10")
    p.add_argument("--algorithms", default="brainprop,ebp")
    p.add_argument("--seeds", default="1-2")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--limit-train", type=int, default=2000)
    p.add_argument("--limit-test", type=int, default=1000)
    p.add_argument("--fraction", type=float, default=0.9)
    p.add_argument("--runs", default=str(ROOT / "runs" / "class_scaling"))
    p.add_argument("--write", metavar="FILE", help="replace the section between the marker lines of FILE")
    p.add_argument("overrides", nargs="*", help="key=value for every run, e.g. data.root=../shared/datasets")
    args = p.parse_args(argv)
    t0 = time.time()
    cells = {(k, rule): [measure(args, k, rule, seed) for seed in seed_list(args.seeds)]
             for k in map(int, args.ks.split(",")) for rule in args.algorithms.split(",")}
    minutes = sum(r["summary"]["mean_epoch_seconds"] * r["summary"]["epochs_run"]
                  for runs in cells.values() for r in runs) / 60
    text = section(args, cells, minutes)
    print(text)
    print(f"({time.time() - t0:.0f} s wall)", file=sys.stderr)
    if args.write:
        figure(args, cells, Path(args.write).parent / FIGURE)
        write_between_markers(args.write, MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
