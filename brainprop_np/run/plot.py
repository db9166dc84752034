"""Learning curves of several runs on one figure, best epochs marked.

    brainprop plot RUN_DIR [RUN_DIR ...] [--out curves.png] [--train]
    brainprop plot RUN_DIR [RUN_DIR ...] --alignment [--out alignment.png]
    brainprop plot RUN_DIR [RUN_DIR ...] --classes [--threshold 0.5] [--out classes.png]

Each RUN_DIR is a run folder written by run.py (history.csv, summary.json, config.yaml);
a run is labelled by its config name, algorithm and seed (e.g. "mnist_conv brainprop seed 1"), so
BrainProp and EBP runs of the same network can be compared at a glance. --classes draws
their per_class.csv (class_plot.py).
"""
import argparse
import csv
import json
import sys
from pathlib import Path

from .figures import epoch_axes, new_figure, save_png
from .history import read_history
from ..errors import RUNTIME, OneLineParser, fail


def read_run(run_dir):
    """(label, rows, best_epoch) of a run folder; rows are dicts of floats from history.csv."""
    run_dir = Path(run_dir)
    rows = read_history(run_dir)
    summary = _summary(run_dir)
    best = summary.get("best_epoch")
    if best is None and rows:
        best = max(rows, key=lambda r: r["val_acc"])["epoch"]
    return run_label(run_dir, summary), rows, best


def _summary(run_dir):
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_label(run_dir, summary=None):
    """A run's label: its config name, algorithm and seed (e.g. "mnist_conv brainprop seed 2"),
    else the folder's name; "[MNIST SAMPLE]" added when it trained on the bundled sample."""
    run_dir = Path(run_dir)
    summary = _summary(run_dir) if summary is None else summary
    label = run_dir.name
    cfg = run_dir / "config.yaml"
    if cfg.is_file():
        import yaml
        c = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        label = f"{c.get('name', run_dir.name)} {c.get('algorithm', '')}".strip()
        if c.get("seed") is not None:
            label += f" seed {c['seed']}"
    if (summary.get("dataset") or {}).get("fallback"):
        label += " [MNIST SAMPLE]"
    return label


def plot_runs(run_dirs, out, show_train=False, title="validation accuracy"):
    """Draw every run's val_acc (and train_acc with show_train) against epochs into `out` (PNG)."""
    fig = new_figure((7.2, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, run_dir in enumerate(run_dirs):
        label, rows, best = read_run(run_dir)
        color = f"C{i % 10}"
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["val_acc"] for r in rows], color=color, label=label)
        if show_train:
            ax.plot(ep, [r["train_acc"] for r in rows], color=color, linestyle="--", alpha=0.6)
        hit = [r for r in rows if r["epoch"] == best]
        if hit:
            ax.plot([best], [hit[0]["val_acc"]], "o", color=color)
            ax.annotate(f"{hit[0]['val_acc']:.4f} @ {int(best)}", (best, hit[0]["val_acc"]),
                        textcoords="offset points", xytext=(4, -12), fontsize=8, color=color)
    epoch_axes(ax, "accuracy")
    ax.set_title(title + (" (dashed: training, on the chosen actions)" if show_train else ""), fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_png(fig, out)


def read_alignment(run_dir):
    """(label, {layer: [(epoch, weight_angle, grad_angle)]}) from a run's alignment.csv."""
    run_dir = Path(run_dir)
    path = run_dir / "alignment.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no alignment.csv here; it is written by runs with untied "
                                "feedback (feedback=random|sign|kolen_pollack|dfa) and alignment: true")
    label = read_run(run_dir)[0] if (run_dir / "history.csv").is_file() else run_dir.name
    layers = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            layers.setdefault(r["layer"], []).append((int(r["epoch"]), float(r["weight_angle"] or "nan"),
                                                     float(r["grad_angle"] or "nan")))
            label_mode = r["mode"]
    return f"{label} {label_mode}" if layers else label, layers


def plot_alignment(run_dirs, out):
    """Two panels against epochs: ∠(W, B) and ∠(update, gradient) of every layer of every run."""
    fig = new_figure((10, 4.5))
    ax_w, ax_g = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for i, run_dir in enumerate(run_dirs):
        label, layers = read_alignment(run_dir)
        color = f"C{i % 10}"
        for j, (name, pts) in enumerate(layers.items()):
            ep = [p[0] for p in pts]
            kw = dict(color=color, linestyle=styles[j % len(styles)], label=f"{label}: {name}")
            ax_w.plot(ep, [p[1] for p in pts], **kw)
            ax_g.plot(ep, [p[2] for p in pts], **kw)
    for ax, title in ((ax_w, "weight alignment ∠(W, B)"), (ax_g, "gradient alignment ∠(update, gradient)")):
        epoch_axes(ax, "degrees", xlabel="epoch (0: initial network)")
        ax.set_ylim(0, 180)
        ax.set_title(title, fontsize=10)
    ax_g.legend(loc="upper right", fontsize=6)
    fig.tight_layout()
    return save_png(fig, out)


def _threshold(text):
    """--threshold: a float in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; give a fraction in (0, 1], e.g. 0.5")
    return value


def main(argv=None, prog="brainprop plot"):
    ap = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders written by run.py")
    ap.add_argument("--out", default=None,
                    help="PNG to write (default curves.png; alignment.png, classes.png with those options)")
    ap.add_argument("--train", action="store_true", help="also draw training accuracy (dashed)")
    kind = ap.add_mutually_exclusive_group()
    kind.add_argument("--alignment", action="store_true",
                      help="draw the runs' alignment.csv instead (untied feedback: angles W-B and update-gradient)")
    kind.add_argument("--classes", action="store_true",
                      help="draw the runs' per_class.csv instead: class x epoch heat maps and the staircase")
    ap.add_argument("--threshold", type=_threshold, default=0.5,
                    help="with --classes: the accuracy at which a class counts as learned (default 0.5)")
    args = ap.parse_args(argv)
    out = args.out or ("alignment.png" if args.alignment else "classes.png" if args.classes else "curves.png")
    try:
        if args.alignment:
            plot_alignment(args.runs, out)
        elif args.classes:
            from .class_plot import plot_classes
            plot_classes(args.runs, out, threshold=args.threshold)
        else:
            plot_runs(args.runs, out, show_train=args.train)
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        return fail(RUNTIME, e)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
