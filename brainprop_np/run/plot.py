"""Learning curves of several runs on one figure, best epochs marked.

    brainprop plot RUN_DIR [RUN_DIR ...] [--out curves.png] [--train]
    brainprop plot RUN_DIR [RUN_DIR ...] --alignment [--out alignment.png]
    brainprop plot RUN_DIR [RUN_DIR ...] --classes [--threshold 0.5] [--out classes.png]

Each RUN_DIR is a run folder written by training (history.csv, summary.json, config.yaml);
a run is labelled by its config name, algorithm and seed (e.g. "mnist_conv brainprop seed 1"), so
BrainProp and EBP runs of the same network can be compared at a glance; runs that would share
a label get the settings in which their config.yaml differ added ("data.limit_train=2000"),
else their folders' names (run_labels). --classes draws their per_class.csv (class_plot.py).
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


def _config(run_dir):
    """The run's config.yaml as a dict ({} without one)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    import yaml
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def run_label(run_dir, summary=None):
    """A run's label: its config name, algorithm and seed (e.g. "mnist_conv brainprop seed 2"),
    else the folder's name; "[MNIST SAMPLE]" added when it trained on the bundled sample."""
    run_dir = Path(run_dir)
    summary = _summary(run_dir) if summary is None else summary
    label = run_dir.name
    if (run_dir / "config.yaml").is_file():
        c = _config(run_dir)
        label = f"{c.get('name', run_dir.name)} {c.get('algorithm', '')}".strip()
        if c.get("seed") is not None:
            label += f" seed {c['seed']}"
    if (summary.get("dataset") or {}).get("fallback"):
        label += " [MNIST SAMPLE]"
    return label


def run_labels(run_dirs):
    """The labels of several runs (the curves and the --classes plot): each its run_label, and
    runs that would share one get what sets them apart added: the config keys that differ
    between them ("data.limit_train=2000"), then, where that is not enough, their folders."""
    dirs = [Path(d) for d in run_dirs]
    bases, extras = [run_label(d) for d in dirs], [[] for _ in dirs]

    def labels():
        return [f"{b} ({', '.join(e)})" if e else b for b, e in zip(bases, extras)]
    for describe in (_differing_settings, _folder_names):
        for group in _clashes(labels()):
            for i, extra in zip(group, describe([dirs[i] for i in group])):
                extras[i] += [extra] if extra else []
    return labels()


def _clashes(labels):
    """Index lists of the labels that occur more than once, one list per label."""
    groups = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


MAX_KEYS = 4          # differing settings shown in a label; the rest are counted
_UNSET = object()


def _differing_settings(dirs):
    """Per run, "key=value, ..." of the dotted config keys whose values differ among `dirs`."""
    flat = [_flatten(_config(d)) for d in dirs]
    keys = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    keys = [k for k in keys if len({_show(f.get(k, _UNSET)) for f in flat}) > 1]
    more = f", +{len(keys) - MAX_KEYS} more" if len(keys) > MAX_KEYS else ""
    return [", ".join(f"{k}={_show(f.get(k, _UNSET))}" for k in keys[:MAX_KEYS]) + more if keys else ""
            for f in flat]


def _flatten(cfg, prefix=""):
    """{"data": {"limit_train": 2000}} -> {"data.limit_train": 2000}."""
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value, width=40):
    """A config value as YAML writes it (null, true, [0, 1]); a long one keeps its end (paths)."""
    if value is _UNSET:
        return "unset"
    text = json.dumps(value, default=str) if isinstance(value, (bool, type(None), list, dict)) else str(value)
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _folder_names(dirs):
    """Per run, the shortest end of its path that no other of `dirs` shares (e.g. its folder's name)."""
    parts = [d.resolve().parts for d in dirs]
    for n in range(1, max(len(p) for p in parts) + 1):
        tails = ["/".join(p[-n:]) for p in parts]
        if len(set(tails)) == len(tails):
            return tails
    return ["/".join(p) for p in parts]


def plot_runs(run_dirs, out, show_train=False, title="validation accuracy"):
    """Draw every run's val_acc (and train_acc with show_train) against epochs into `out` (PNG)."""
    fig = new_figure((7.2, 4.5))
    ax, notes = fig.add_subplot(1, 1, 1), []
    for i, (run_dir, label) in enumerate(zip(run_dirs, run_labels(run_dirs))):
        _, rows, best = read_run(run_dir)
        color = f"C{i % 10}"
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["val_acc"] for r in rows], color=color, label=label)
        if show_train:
            ax.plot(ep, [r["train_acc"] for r in rows], color=color, linestyle="--", alpha=0.6)
        hit = [r for r in rows if r["epoch"] == best]
        if hit:
            ax.plot([best], [hit[0]["val_acc"]], "o", color=color)
            notes.append((best, hit[0]["val_acc"], color))
    ax.margins(y=0.1)                                   # room for the notes below the lowest point
    epoch_axes(ax, "accuracy")
    _note_best(ax, notes)
    ax.set_title(title + (" (dashed: training, on the chosen actions)" if show_train else ""), fontsize=10)
    _legend_below(fig, ax)
    fig.tight_layout()
    return save_png(fig, out)


def _note_best(ax, notes):
    """Write "0.9123 @ 7" below and right of each (epoch, accuracy, colour); left at the right edge."""
    lo, hi = ax.get_xlim()
    for epoch, acc, color in notes:
        left = hi - epoch < 0.15 * (hi - lo)            # the text would run past the axes
        ax.annotate(f"{acc:.4f} @ {int(epoch)}", (epoch, acc), textcoords="offset points",
                    xytext=(-4 if left else 4, -12), ha="right" if left else "left", fontsize=8, color=color)


LEGEND_WRAP = 90       # characters per line of a legend entry (wrapped beyond)


def _legend_below(fig, ax):
    """The legend under the axes' epoch label, where it covers no curve or note: entries wrapped
    at LEGEND_WRAP characters, two columns for more than 4 short ones, and the figure taller by
    a line's height for every line beyond four, so that the axes keep their size."""
    import textwrap
    from matplotlib.transforms import ScaledTranslation
    handles, labels = ax.get_legend_handles_labels()
    labels = [textwrap.fill(label, LEGEND_WRAP) for label in labels]
    ncol = 2 if len(labels) > 4 and max(map(len, labels)) <= 45 else 1
    lines = sum(label.count("\n") + 1 for label in labels) / ncol
    if lines > 4:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, height + 0.16 * (lines - 4))
    under_xlabel = ax.transAxes + ScaledTranslation(0, -34 / 72, fig.dpi_scale_trans)    # 34 points down
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=under_xlabel,
              fontsize=8, frameon=False, ncol=ncol)


def read_alignment(run_dir, label=None):
    """(label, {layer: [(epoch, weight_angle, grad_angle)]}) from a run's alignment.csv;
    `label` (default: the run's own) gets the feedback mode added."""
    run_dir = Path(run_dir)
    path = run_dir / "alignment.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no alignment.csv here; it is written by runs with untied "
                                "feedback (feedback=random|sign|kolen_pollack|dfa) and alignment: true")
    if label is None:
        label = read_run(run_dir)[0] if (run_dir / "history.csv").is_file() else run_dir.name
    layers = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            layers.setdefault(r["layer"], []).append((int(r["epoch"]), float(r["weight_angle"] or "nan"),
                                                     float(r["grad_angle"] or "nan")))
            label_mode = r["mode"]
    named = not layers or f"feedback={label_mode}" in label       # run_labels may have named it already
    return label if named else f"{label} {label_mode}", layers


def plot_alignment(run_dirs, out):
    """Two panels against epochs: ∠(W, B) and ∠(update, gradient) of every layer of every run."""
    fig = new_figure((10, 4.5))
    ax_w, ax_g = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for i, (run_dir, label) in enumerate(zip(run_dirs, run_labels(run_dirs))):
        label, layers = read_alignment(run_dir, label)
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
    ap.add_argument("runs", nargs="+", help="run folders written by training (brainprop train, run.py or a sweep)")
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
