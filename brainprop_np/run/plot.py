"""Learning curves of several runs on one figure, best epochs marked.

    brainprop plot RUN_DIR [RUN_DIR ...] [--out curves.png] [--train]
    brainprop plot RUN_DIR [RUN_DIR ...] --alignment [--out alignment.png]

Each RUN_DIR is a run folder written by run.py (history.csv, summary.json, config.yaml);
a run is labelled by its config name and algorithm (e.g. "mnist_conv brainprop"), so
BrainProp and EBP runs of the same network can be compared at a glance.
"""
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
    summary = {}
    if (run_dir / "summary.json").is_file():
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    label = run_dir.name
    cfg = run_dir / "config.yaml"
    if cfg.is_file():
        import yaml
        c = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        label = f"{c.get('name', run_dir.name)} {c.get('algorithm', '')}".strip()
    if (summary.get("dataset") or {}).get("fallback"):
        label += " [MNIST SAMPLE]"
    best = summary.get("best_epoch")
    if best is None and rows:
        best = max(rows, key=lambda r: r["val_acc"])["epoch"]
    return label, rows, best


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




def main(argv=None, prog="brainprop plot"):
    ap = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders written by run.py")
    ap.add_argument("--out", default="curves.png", help="PNG to write (default curves.png)")
    ap.add_argument("--train", action="store_true", help="also draw training accuracy (dashed)")
    ap.add_argument("--alignment", action="store_true",
                    help="draw the runs' alignment.csv instead (untied feedback: angles W-B and update-gradient)")
    args = ap.parse_args(argv)
    try:
        if args.alignment:
            plot_alignment(args.runs, args.out if args.out != "curves.png" else "alignment.png")
        else:
            plot_runs(args.runs, args.out, show_train=args.train)
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        return fail(RUNTIME, e)
    print(f"wrote {args.out if not args.alignment or args.out != 'curves.png' else 'alignment.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
