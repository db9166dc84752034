"""A sweep's tables and figure: results.csv, results.md, curves.png (each written atomically);
the per-class aggregate is classes.py's.

One row per config × grid cell: the mean and standard deviation over its finished
seeds of best_val_acc, best_epoch and mean_epoch_seconds (as summary.json holds them),
how many runs failed, and which data the runs trained on — a run that fell back to the
bundled MNIST sample is said to have done so, in the table itself — and where the cell's
runs ran: the nodes of all their attempts (space-separated, each once) and the number of
attempts (more than n when a run was retried or resumed; placement.py reads them from
the runs' train.log).
"""
import csv
import io
import statistics

from ..figures import epoch_axes, new_figure, save_png
from ..history import read_history
from ...files import write_text

CSV_COLUMNS = ("config", "cell", "n", "best_val_acc_mean", "best_val_acc_std", "best_epoch_mean",
               "best_epoch_std", "epoch_seconds_mean", "failed", "data", "nodes", "attempts")

# The paper's BrainProp figures (top-1 test accuracy %, mean (std) over 10 seeds; epochs),
# as the paper (Pozzi, Bohté & Roelfsema 2020) and its official code's README publish them,
# by config name; each config's header cites the same figure. EBP cells get none.
PAPER = {
    "mnist_dense": ("98.68 (0.07)", None),
    "mnist_conv": ("99.31 (0.04)", "63 (18)"),
    "cifar10_deep": ("88.88 (0.27)", "105 (4)"),
    "cifar100_deep": ("59.58 (0.46)", "218 (22)"),
    "tinyimagenet_deep": ("47.50 (1.30)", "328 (75)"),
}


def _mean_std(xs):
    xs = [float(x) for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def _data_of(summary):
    d = (summary or {}).get("dataset") or {}
    used = d.get("used") or "?"
    return f"{used} (fallback)" if d.get("fallback") else used


def _data_text(datas):
    """One word for a cell's runs: 'mnist', 'mnist_sample (fallback)', or the mix with counts."""
    if not datas:
        return ""
    kinds = sorted(set(datas), key=datas.index)
    if len(kinds) == 1:
        return kinds[0]
    return "; ".join(f"{k} in {datas.count(k)} of {len(datas)}" for k in kinds)


def aggregate(runs):
    """Rows (dicts) per config × cell in the runs' order."""
    rows, index = [], {}
    for r in runs:
        key = (r.config, r.cell)
        if key not in index:
            index[key] = len(rows)
            rows.append({"config": r.config, "cell": r.cell, "runs": [], "failures": [],
                         "algorithm": r.cfg["algorithm"], "holdout": r.cfg["data"]["holdout"]})
        row = rows[index[key]]
        if r.state == "done":
            row["runs"].append(r)
        else:
            row["failures"].append(r)
    for row in rows:
        s = [r.summary for r in row["runs"]]
        row["n"] = len(s)
        row["best_val_acc_mean"], row["best_val_acc_std"] = _mean_std([x.get("best_val_acc") for x in s])
        row["best_epoch_mean"], row["best_epoch_std"] = _mean_std([x.get("best_epoch") for x in s])
        row["epoch_seconds_mean"], _ = _mean_std([x.get("mean_epoch_seconds") for x in s])
        row["failed"] = sum(1 for r in row["failures"] if r.state == "failed")
        row["unfinished"] = len(row["failures"]) - row["failed"]
        row["data"] = _data_text([_data_of(x) for x in s])
        row["fallback"] = any(((x.get("dataset") or {}).get("fallback")) for x in s)
        every = row["runs"] + row["failures"]
        row["nodes"] = " ".join(dict.fromkeys(n for r in every for n in r.nodes))
        row["attempts"] = sum(len(r.nodes) for r in every)
    return rows


def _num(x):
    return "" if x is None else repr(float(x))


def write_csv(path, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([r["config"], r["cell"], r["n"], _num(r["best_val_acc_mean"]), _num(r["best_val_acc_std"]),
                    _num(r["best_epoch_mean"]), _num(r["best_epoch_std"]), _num(r["epoch_seconds_mean"]),
                    r["failed"], r["data"], r["nodes"], r["attempts"]])
    write_text(path, buf.getvalue())


def paper_text(config, algorithm):
    """The paper's figure for a config's BrainProp runs ('99.31 (0.04) after 63 (18) epochs');
    '' for EBP and for configs the paper gives no figure for."""
    paper = PAPER.get(config) if algorithm == "brainprop" else None
    return "" if paper is None else paper[0] + (f" after {paper[1]} epochs" if paper[1] else "")


def _paper(x, sd, digits):
    """The paper's format: '99.31 (0.04)'; std '-' for a single seed."""
    if x is None:
        return "-"
    return f"{x:.{digits}f} ({sd:.{digits}f})" if sd is not None else f"{x:.{digits}f} (-)"


def cell_text(r):
    acc = _paper(None if r["best_val_acc_mean"] is None else 100 * r["best_val_acc_mean"],
                 None if r["best_val_acc_std"] is None else 100 * r["best_val_acc_std"], 2)
    ep = _paper(r["best_epoch_mean"], r["best_epoch_std"], 0)
    sec = "-" if r["epoch_seconds_mean"] is None else f"{r['epoch_seconds_mean']:.1f}"
    ptext = paper_text(r["config"], r["algorithm"])
    data = r["data"] or "-"
    if r["fallback"]:
        data = data.upper() + " — NOT full MNIST, not comparable with the paper"
    return {"config": r["config"], "cell": r["cell"], "n": str(r["n"]), "acc": acc, "epoch": ep, "sec": sec,
            "failed": str(r["failed"]) + (f" (+{r['unfinished']} unfinished)" if r["unfinished"] else ""),
            "data": data, "paper": ptext}


HEAD = {"config": "config", "cell": "cell", "n": "n", "acc": "best val_acc %", "epoch": "best epoch",
        "sec": "s/epoch", "failed": "failed", "data": "data", "paper": "paper (BrainProp test acc %)"}
ORDER = ("config", "cell", "n", "acc", "epoch", "sec", "failed", "data", "paper")


def table_text(rows):
    """The table as aligned plain text (what the sweep prints at the end)."""
    cells = [HEAD] + [cell_text(r) for r in rows]
    width = {k: max(len(c[k]) for c in cells) for k in ORDER}
    return "\n".join("  ".join(c[k].ljust(width[k]) for k in ORDER).rstrip() for c in cells)


def failure_lines(runs):
    out = []
    for r in runs:
        if r.state == "failed":
            out.append(f"{r.label}: {r.error_kind or 'runtime'} error, not retried: {r.error}")
        elif r.state != "done":
            state = {"fresh": "not started", "resume": "not resumed"}.get(r.state, r.state)
            out.append(f"{r.label}: unfinished ({state}); rerun the sweep to continue it")
    return out


def write_md(path, rows, runs, command, engine_line, more=()):
    """results.md: the table, what it means, the runs without a result, then `more` (lines)."""
    lines = ["# Sweep results", "", f"Command: `{command}`", "", engine_line, "",
             "| " + " | ".join(HEAD[k] for k in ORDER) + " |",
             "|" + "---|" * len(ORDER)]
    for r in rows:
        c = cell_text(r)
        lines.append("| " + " | ".join(c[k].replace("|", "\\|") for k in ORDER) + " |")
    holdout = any(r["holdout"] for r in rows)
    lines += ["", "Mean (standard deviation, n − 1) over the finished seeds of each cell; best val_acc is "
              "the highest validation accuracy of a run and best epoch its epoch (summary.json), "
              "s/epoch the mean wall time of a training pass. With `data.holdout: 0` (the paper's "
              "protocol) the validation set is the test set, so best val_acc is the paper's top-1 "
              "test accuracy." + (" Some cells hold out training images for validation: their "
                                  "best val_acc is not a test accuracy." if holdout else ""),
              "The paper's column holds its BrainProp figure for the configs it reports, "
              "whatever the cell's settings: compare only cells that follow the paper's protocol."]
    if any(r["fallback"] for r in rows):
        lines += ["", "**Cells marked MNIST_SAMPLE (FALLBACK) trained on the 5,000-image MNIST sample bundled "
                  "with the package because full MNIST was neither found nor downloadable; their figures "
                  "are not MNIST results.**"]
    fails = failure_lines(runs)
    if fails:
        lines += ["", "## Runs without a result", ""] + [f"- {f}" for f in fails]
    if more:
        lines += [""] + list(more)
    write_text(path, "\n".join(lines) + "\n")


def _val_curve(run_dir):
    """val_acc per epoch of a run folder ([] when it has no history.csv yet)."""
    try:
        return [h["val_acc"] for h in read_history(run_dir)]
    except FileNotFoundError:
        return []


def _mean_sd(curves):
    """(epochs 1..n, mean, std) of val_acc over the curves that reached each epoch (std 0 for one)."""
    import numpy as np
    n = max(len(c) for c in curves)
    mean = np.array([np.mean([c[e] for c in curves if len(c) > e]) for e in range(n)])
    sd = np.array([np.std([c[e] for c in curves if len(c) > e], ddof=1) if sum(len(c) > e for c in curves) > 1
                   else 0.0 for e in range(n)])
    return np.arange(1, n + 1), mean, sd


def write_curves(path, rows):
    """curves.png: mean ± std of val_acc per cell over epochs. False (nothing written) without matplotlib.

    Early stopping ends runs at different epochs: at each epoch the mean and std are over
    the runs that reached it.
    """
    try:
        fig = new_figure((7.2, 4.5))
    except RuntimeError:
        return False
    ax = fig.add_subplot(1, 1, 1)
    for i, row in enumerate(rows):
        curves = [c for c in (_val_curve(r.run_dir) for r in row["runs"]) if c]
        if not curves:
            continue
        ep, mean, sd = _mean_sd(curves)
        color = f"C{i % 10}"
        label = f"{row['config']} {row['cell']} (n={len(curves)})"
        if row["fallback"]:
            label += " [MNIST sample]"
        ax.plot(ep, mean, color=color, label=label, marker="o" if len(ep) == 1 else None)
        ax.fill_between(ep, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)
    epoch_axes(ax, "validation accuracy")
    ax.set_title("mean ± std of val_acc over seeds", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    return True
