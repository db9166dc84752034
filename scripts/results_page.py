"""The MNIST table of docs/results.md, from a sweep's folder: per network and
rule the mean (std) over seeds of the best val_acc, its epoch and the epochs run, the median
seconds per epoch and the machine, beside the paper's figure; the learning curves; the rows that
are not measured yet.

    python scripts/results_page.py runs/mnist_sweep [--variant RUN_DIR ...] [--write docs/results.md]

DIR is the folder of `python -m brainprop_np.sweep configs/mnist_dense.yaml
configs/mnist_conv.yaml configs/mnist_loccon.yaml --grid algorithm=brainprop,ebp ...
--out DIR`: its results.csv names the cells, and each run folder DIR/<config>/<cell>/seed<k>/
holds summary.json and history.csv. Only runs that stopped for good (early stopping or
train.epochs) count. The paper's BrainProp figures are the sweep report's (PAPER). With
--write FILE the section replaces the text between `<!-- mnist-table:begin -->` and
`:end -->` in FILE and the curves go beside it (results_mnist_curves.png); the section is
printed in any case. Each --variant folder is a run of one of the sweep's configs with some
settings changed (train.patience=500 to train past early stopping, another model, ...),
finished or still running: a line names the changes (its config.yaml against that of the
sweep's run of the same config, rule and seed), gives its best beside that run's, and its
best per learning-rate period.
"""
import argparse
import csv
import datetime
import json
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from brainprop_np.run.console import plural  # noqa: E402
from brainprop_np.run.history import read_history  # noqa: E402
from brainprop_np.run.stop_reasons import FINAL  # noqa: E402
from brainprop_np.run.sweep import report  # noqa: E402
from brainprop_np.run.sweep.report import PAPER  # noqa: E402
from pages import mean_std, write_between_markers  # noqa: E402

MARKER = "mnist-table"
FIGURE = "results_mnist_curves.png"
NETWORKS = ("mnist_dense", "mnist_conv", "mnist_loccon")
RULES = ("brainprop", "ebp")


def finished_runs(sweep):
    """{(config, algorithm): [(run folder, summary)]} of the runs that stopped for good,
    from the cells results.csv names, in its order; the nodes of each cell beside them."""
    rows, nodes = {}, {}
    with open(Path(sweep) / "results.csv", newline="", encoding="utf-8") as f:
        cells = [(r["config"], r["cell"], r["nodes"]) for r in csv.DictReader(f)]
    for config, cell, where in cells:
        for run in sorted((Path(sweep) / config / cell).glob("seed*"), key=lambda p: int(p.name[4:])):
            path = run / "summary.json"
            s = json.loads(path.read_text()) if path.is_file() else {}
            if s.get("stop_reason") in FINAL:
                rows.setdefault((config, s["algorithm"]), []).append((run, s))
                nodes.setdefault((config, s["algorithm"]), set()).update(where.split())
    return rows, nodes


def machine(summaries, nodes):
    """Where a row's runs ran: the device, kernels and threads (summary.json) and the nodes."""
    kinds = sorted({f"{s['device_name']}, {s['kernels']} kernels, {plural(s['threads'], 'thread')}"
                    for s in summaries})
    return "; ".join(kinds) + (f" ({', '.join(sorted(nodes))})" if nodes else "")


def data_text(summaries):
    """The data of a row's runs: 'mnist 60,000 / 10,000' (train / validation images)."""
    kinds = sorted({f"{'MNIST SAMPLE' if s['dataset']['fallback'] else s['dataset']['used']} "
                    f"{s['dataset']['n_train']:,} / {s['dataset']['n_val']:,}" for s in summaries})
    return "; ".join(kinds)


def paper_text(config, rule):
    """The paper's figure for a BrainProp row ('99.31 (0.04) after 63 (18) epochs'), else '–'."""
    return report.paper_text(config, rule) or "–"


def epoch_seconds(run):
    """The median of a run's epoch_seconds (history.csv): an epoch slowed by other work on
    the machine, or by a pause while something else was timed, moves it little."""
    return statistics.median(r["epoch_seconds"] for r in read_history(run))


def row(config, rule, runs, nodes):
    s = [x[1] for x in runs]
    return (f"| {config.removeprefix('mnist_')} | {rule} | {len(s)} | "
            f"{mean_std([x['best_val_acc'] for x in s], 2, 100)} | {mean_std([x['best_epoch'] for x in s], 0)} | "
            f"{mean_std([x['epochs_run'] for x in s], 0)} | "
            f"{statistics.mean(epoch_seconds(run) for run, _ in runs):.1f} | {machine(s, nodes)} | "
            f"{data_text(s)} | {paper_text(config, rule)} |")


def differences(rows):
    """One line per row with a paper figure: the measured mean minus the paper's, in paper stds."""
    out = []
    for (config, rule), runs in rows.items():
        fig = PAPER.get(config) if rule == "brainprop" else None
        if fig is None:
            continue
        paper, sd = (float(v) for v in fig[0].replace("(", "").replace(")", "").split())
        mine = round(100 * statistics.mean(x[1]["best_val_acc"] for x in runs), 2)    # as the table shows it
        gap = round(mine - paper, 2) + 0.0                                            # + 0.0: no "-0.00"
        out.append(f"- {config.removeprefix('mnist_')} BrainProp: {mine:.2f} % against the paper's {paper:.2f} %, "
                   f"{gap:+.2f} points ({round(gap / sd, 1) + 0.0:+.1f} paper standard deviations).")
    return out


def missing(rows):
    """The sentence naming the network × rule rows this sweep has no finished run for."""
    absent = [f"{c.removeprefix('mnist_')} {r if r == 'ebp' else 'BrainProp'}".replace("ebp", "EBP")
              for c in NETWORKS for r in RULES if (c, r) not in rows]
    if not absent:
        return "Every MNIST network × rule row has at least one finished run."
    return f"No finished run yet for: {', '.join(absent)}."


FOUND = 0.5          # a class counts as found once its validation accuracy reaches this


def class_curves(run):
    """[(epoch, [accuracy of class 0, 1, ...])] of a run folder's per_class.csv ([] without one)."""
    path = Path(run) / "per_class.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k.startswith("acc_")] if rows else []
    return [(int(r["epoch"]), [float(r[k]) for k in keys]) for r in rows]


def discovery(run, summary):
    """(epoch at which each class first reached FOUND, or None; the last of them; val_acc gained
    from that epoch to the best; the lowest class accuracy and the training accuracy at the
    last epoch) of one run."""
    curves = class_curves(run)
    if not curves:
        return None
    firsts = [next((e for e, accs in curves if accs[c] >= FOUND), None) for c in range(len(curves[0][1]))]
    last = None if None in firsts else max(firsts)
    history = read_history(run)
    hist = {int(h["epoch"]): h["val_acc"] for h in history}
    gained = None if last is None else summary["best_val_acc"] - hist[last]
    return firsts, last, gained, min(curves[-1][1]), history[-1].get("train_acc")


def class_panels(rows):
    """{network: run folders}: its BrainProp runs and its first EBP run, those with per_class.csv,
    for a per-class figure per network (BrainProp's seeds one by one, EBP beside them)."""
    out = {}
    for config in NETWORKS:
        runs = _with_classes(rows, config, "brainprop") + _with_classes(rows, config, "ebp")[:1]
        if runs:
            out[config] = runs
    return out


def _with_classes(rows, config, rule):
    """The run folders of a row whose per_class.csv has at least one epoch."""
    return [r for r, _ in rows.get((config, rule), []) if class_curves(r)]


def class_figure_name(config):
    return f"results_{config}_classes.png"


def discovery_lines(rows):
    """Per BrainProp and EBP row with per-class curves: when each class was found, seed by seed."""
    lines = []
    for (config, rule), runs in rows.items():
        for run, s in runs:
            d = discovery(run, s)
            if d is None:
                continue
            firsts, last, gained, low, train = d
            found = ", ".join(f"{c}: {'–' if e is None else e}" for c, e in enumerate(firsts))
            tail = ("" if last is None else f"; all found by epoch {last}, after which val_acc rose "
                    f"{100 * gained:.2f} points to its best at epoch {s['best_epoch']}")
            lines.append(f"- {config.removeprefix('mnist_')} {rule}, seed {s['seed']}: first epoch at "
                         f"≥ {FOUND:.0%} per class ({found}){tail}; lowest class at the last epoch "
                         f"(epoch {s['epochs_run']}): {100 * low:.1f} %"
                         + ("." if train is None else f"; training accuracy then: {100 * train:.2f} %."))
    return lines


def lr_periods(history):
    """[(lr, [rows])]: the history split where the learning rate changes."""
    import itertools
    if any("lr" not in h for h in history):
        raise ValueError("history.csv has no lr for some epoch")
    return [(lr, list(g)) for lr, g in itertools.groupby(history, key=lambda h: h["lr"])]


IGNORED = ("data.root", "data.download", "data.fallback", "log.")   # where data and logs live, not what is trained


def flat_config(path):
    """config.yaml as {dotted key: value}."""
    out, todo = {}, [("", yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})]
    while todo:
        prefix, d = todo.pop()
        for k, v in d.items():
            if isinstance(v, dict):
                todo.append((f"{prefix}{k}.", v))
            else:
                out[prefix + k] = v
    return out


def value_text(v):
    """A config value in a line: a layer list as `dense(units=1500), relu, …`."""
    if isinstance(v, list) and all(isinstance(x, dict) and "type" in x for x in v):
        return ", ".join(x["type"] + (f"({', '.join(f'{k}={a}' for k, a in x.items() if k != 'type')})"
                                      if len(x) > 1 else "") for x in v)
    return "null" if v is None else str(v)


def changes(run, same):
    """The settings in which RUN's config.yaml differs from SAME's (seed and IGNORED aside)."""
    if not (Path(same) / "config.yaml").is_file():
        return [f"the sweep's run {same} has no config.yaml to compare with"]
    a, b = flat_config(Path(same) / "config.yaml"), flat_config(Path(run) / "config.yaml")
    keys = [k for k in sorted(set(a) | set(b)) if k != "seed" and not k.startswith(IGNORED)]
    return [f"{k} {value_text(a.get(k))} → {value_text(b.get(k))}" for k in keys if a.get(k) != b.get(k)]


def variant_line(run, rows):
    """A run of one of the sweep's configs with settings changed: what changed against the sweep's
    run of the same config, rule and seed, its best, that run's beside it, its best val_acc per
    learning-rate period."""
    s = json.loads((Path(run) / "summary.json").read_text(encoding="utf-8"))
    history = read_history(run)
    if not history:
        raise ValueError("no epoch finished yet")
    best = "; ".join(f"epochs {int(p[0]['epoch'])}–{int(p[-1]['epoch'])} (lr {lr:g}) "
                     f"{100 * max(h['val_acc'] for h in p):.2f} %" for lr, p in lr_periods(history))
    state = {"running": "still running", "interrupted": "interrupted; `--resume` continues it"}.get(
        s["stop_reason"], f"stopped: {s['stop_reason']}")
    same = next(((r, x) for r, x in rows.get((s["name"], s["algorithm"]), []) if x["seed"] == s["seed"]), None)
    if same is None:
        what, beside = "no finished run of this config, rule and seed in the sweep to compare with", ""
    else:
        what = "; ".join(changes(run, same[0])) or "no setting changed"
        beside = (f"; the sweep's run stopped after {same[1]['epochs_run']} epochs, "
                  f"best {100 * same[1]['best_val_acc']:.2f} % at epoch {same[1]['best_epoch']}")
    return (f"- {s['name'].removeprefix('mnist_')} {s['algorithm']}, seed {s['seed']} ({what}): "
            f"{s['epochs_run']} epochs run ({state}), best val_acc {100 * s['best_val_acc']:.2f} % at epoch "
            f"{s['best_epoch']}{beside}. Best per learning-rate period: {best}.")


def check_variant(run):
    """None when RUN_DIR can be read as a --variant, else the one-line reason it cannot."""
    for name in ("summary.json", "history.csv", "config.yaml"):
        if not (Path(run) / name).is_file():
            return f"no {name} here; give a run folder"
    try:
        flat_config(Path(run) / "config.yaml")
        variant_line(run, {})
    except (ValueError, KeyError, AttributeError, yaml.YAMLError) as e:
        return f"cannot be read: {' '.join(str(e).split())}"
    return None


def section(sweep, rows, nodes, command, variants=()):
    n = sum(len(v) for v in rows.values())
    lines = [f"Generated by `{command}` ({datetime.date.today().isoformat()}, "
             f"{plural(n, 'finished run')} in `{sweep}`).", "",
             "| network | rule | seeds | best val_acc % | best epoch | epochs run | median s/epoch | machine | "
             "data (train / val) | paper (test acc %) |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(c, r, runs, nodes[(c, r)]) for (c, r), runs in rows.items()]
    lines += ["", "Mean (sample standard deviation) over the seeds; with the paper's protocol the "
              "validation set is the test set, so best val_acc is the top-1 test accuracy."]
    lines += [""] + differences(rows) if differences(rows) else []
    if discovery_lines(rows):
        lines += ["", "When each class was found (per_class.csv of each run, validation accuracy of the class; "
                  "BrainProp's training accuracy counts the rewarded actions it chose, its exploration "
                  "included):", ""] + discovery_lines(rows)
        lines += [l for c in class_panels(rows) for l in
                  ["", f"![{c.removeprefix('mnist_')}: validation accuracy of each class per epoch, run by run, "
                   f"and how many classes have reached {FOUND:.0%}]({class_figure_name(c)})"]]
    if variants:
        lines += ["", "Runs of the sweep's configs with settings changed (in brackets: the change, against the "
                  "sweep's run of the same config, rule and seed):", ""]
        lines += [f"{variant_line(run, rows)} (`{run}`)" for run in variants]
    lines += ["", missing(rows), "The paper's CIFAR-10, CIFAR-100 and Tiny ImageNet rows are not on this "
              "page: they need a GPU.", "", f"![mean ± std of val_acc per network and rule]({FIGURE})"]
    return "\n".join(lines)


def figure(rows, path):
    """Mean ± std of val_acc per epoch, one panel per network, BrainProp beside EBP (over the
    runs that reached each epoch)."""
    import numpy as np
    from brainprop_np.run.figures import epoch_axes, new_figure, save_png
    nets = [c for c in NETWORKS if any(k[0] == c for k in rows)]
    fig = new_figure((3.6 * max(1, len(nets)), 3.4))
    for i, net in enumerate(nets):
        ax = fig.add_subplot(1, len(nets), i + 1)
        for j, rule in enumerate(RULES):
            curves = [[h["val_acc"] for h in read_history(run)] for run, _ in rows.get((net, rule), [])]
            if not curves:
                continue
            at = [[c[e] for c in curves if len(c) > e] for e in range(max(map(len, curves)))]
            mean = np.array([np.mean(a) for a in at])
            sd = np.array([np.std(a, ddof=1) if len(a) > 1 else 0.0 for a in at])
            ep = np.arange(1, len(at) + 1)
            ax.plot(ep, mean, color=f"C{j}", label=f"{rule} (n={len(curves)})")
            ax.fill_between(ep, mean - sd, mean + sd, color=f"C{j}", alpha=0.2, linewidth=0)
        epoch_axes(ax, "validation accuracy" if i == 0 else "")
        ax.set_title(net.removeprefix("mnist_"), fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="the sweep's folder (--out of the sweep)")
    p.add_argument("--variant", action="append", default=[], metavar="RUN_DIR",
                   help="a run of one of the sweep's configs with settings changed, e.g. trained past early "
                        "stopping (repeatable)")
    p.add_argument("--write", metavar="FILE", help="replace the section between the marker lines of FILE")
    args = p.parse_args(argv)
    for run in args.variant:
        why = check_variant(run)
        if why:
            sys.exit(f"error: --variant {run}: {why}")
    if not (Path(args.sweep) / "results.csv").is_file():
        sys.exit(f"error: {args.sweep}: no results.csv here; give the --out folder of a finished sweep")
    rows, nodes = finished_runs(args.sweep)
    command = " ".join([f"python scripts/results_page.py {args.sweep}"] + [f"--variant {r}" for r in args.variant]
                       + ([f"--write {args.write}"] if args.write else []))
    text = section(args.sweep, rows, nodes, command, args.variant)
    print(text)
    if args.write:
        if rows:
            figure(rows, Path(args.write).parent / FIGURE)
        from brainprop_np.run.class_plot import plot_classes
        for config, runs in class_panels(rows).items():
            plot_classes(runs, Path(args.write).parent / class_figure_name(config), threshold=FOUND)
        write_between_markers(args.write, MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
