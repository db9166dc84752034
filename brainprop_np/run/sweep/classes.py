"""A sweep's per-class curves across seeds: per_class.csv, staircase.csv, classes.png and
the lines results.md ends with (each file written atomically).

    cells = classes.aggregate(rows)           # rows: report.aggregate's
    classes.write_csvs(out, cells); classes.write_figure(out / "classes.png", cells)

per_class.csv, one row per config × cell × class × epoch: the mean and std (n − 1) of the
class's validation accuracy over the cell's runs that reached the epoch (n of them).
staircase.csv, one row per config × cell × class: the mean (std) epoch at which the
class's accuracy first reaches THRESHOLD, over the runs in which it did (passed of n).
Runs without a per_class.csv (made before it existed) are left out.
"""
import csv
import io
import statistics
import warnings

import numpy as np

from ..class_plot import class_grid, draw_figure
from ..per_class import first_passes, read_per_class
from ...files import write_text

THRESHOLD = 0.5           # a class counts as learned once its validation accuracy reaches this
PER_CLASS_COLUMNS = ("config", "cell", "class", "epoch", "n", "acc_mean", "acc_std")
STAIRCASE_COLUMNS = ("config", "cell", "class", "threshold", "n", "passed", "first_epoch_mean",
                     "first_epoch_std")


def _runs_classes(runs, threshold):
    """([(C, E) grid], [first epochs per class]) of the runs that have a per_class.csv with epochs."""
    grids, firsts = [], []
    for r in runs:
        try:
            epochs, acc = read_per_class(r.run_dir)
        except (FileNotFoundError, ValueError):
            continue
        if len(epochs):
            grids.append(class_grid(epochs, acc))
            firsts.append(first_passes(epochs, acc, threshold))
    return grids, firsts


def cell_classes(row, threshold=THRESHOLD):
    """A cell's per-class statistics (dict: n, mean, std, count (C, E); first: [(mean, std, passed)]
    per class), or None when none of its finished runs has a per_class.csv."""
    grids, firsts = _runs_classes(row["runs"], threshold)
    if not grids:
        return None
    n_classes = max(g.shape[0] for g in grids)
    stack = np.full((len(grids), n_classes, max(g.shape[1] for g in grids)), np.nan)
    for i, g in enumerate(grids):
        stack[i, :g.shape[0], :g.shape[1]] = g
    count = np.isfinite(stack).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # epochs no run (or one) reached: nan
        mean = np.nanmean(stack, axis=0)
        std = np.where(count > 1, np.nanstd(stack, axis=0, ddof=1), 0.0)
    first = []
    for c in range(n_classes):
        hit = [f[c] for f in firsts if c < len(f) and f[c] is not None]
        first.append((statistics.mean(hit) if hit else None,
                      statistics.stdev(hit) if len(hit) > 1 else None, len(hit)))
    return {"n": len(grids), "mean": mean, "std": std, "count": count, "first": first, "threshold": threshold}


def aggregate(rows, threshold=THRESHOLD):
    """[(row, cell_classes(row))] for the cells with per-class data, in the rows' order."""
    cells = [(row, cell_classes(row, threshold)) for row in rows]
    return [(row, s) for row, s in cells if s is not None]


def _num(x):
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else repr(float(x))


def write_csvs(out, cells):
    """out/per_class.csv and out/staircase.csv (headers only when no run has per-class data)."""
    curves, stairs = io.StringIO(), io.StringIO()
    wc, ws = csv.writer(curves, lineterminator="\n"), csv.writer(stairs, lineterminator="\n")
    wc.writerow(PER_CLASS_COLUMNS)
    ws.writerow(STAIRCASE_COLUMNS)
    for row, s in cells:
        key = [row["config"], row["cell"]]
        for c in range(s["mean"].shape[0]):
            for e in np.flatnonzero(s["count"][c]):
                wc.writerow(key + [c, int(e) + 1, int(s["count"][c, e]), _num(s["mean"][c, e]),
                                   _num(s["std"][c, e])])
            mean, sd, passed = s["first"][c]
            ws.writerow(key + [c, repr(s["threshold"]), s["n"], passed, _num(mean), _num(sd)])
    write_text(out / "per_class.csv", curves.getvalue())
    write_text(out / "staircase.csv", stairs.getvalue())


def write_figure(path, cells):
    """classes.png: each cell's mean class × epoch heat map, rings at the mean first epochs, and
    the staircases. False (nothing written) without matplotlib or per-class data."""
    if not cells:
        return False
    panels = [(f"{row['config']} {row['cell']} (n={s['n']})" + (" [MNIST sample]" if row["fallback"] else ""),
               s["mean"], [f[0] for f in s["first"]]) for row, s in cells]
    try:
        draw_figure(panels, cells[0][1]["threshold"], path, what="mean per-class validation accuracy")
    except RuntimeError:
        return False
    return True


MAX_TABLE_CLASSES = 20    # results.md tables the staircase up to this many classes; staircase.csv always


def md_lines(cells):
    """results.md's closing section: the epoch each class first reaches the threshold, per cell."""
    if not cells:
        return []
    threshold = cells[0][1]["threshold"]
    n_classes = max(s["mean"].shape[0] for _, s in cells)
    lines = ["## When each class is learned", "",
             f"The epoch at which a class's validation accuracy first reaches {threshold:g}: mean (std) over "
             "the cell's runs in which it did, with (passed/n) when not all did, – when none did. "
             "`per_class.csv` holds the mean per-class curves, `staircase.csv` these figures, "
             "`classes.png` both."]
    if n_classes > MAX_TABLE_CLASSES:
        return lines + ["", f"{n_classes} classes: see `staircase.csv`."]
    lines += ["", "| config | cell | n | " + " | ".join(f"class {c}" for c in range(n_classes)) + " |",
              "|" + "---|" * (3 + n_classes)]
    for row, s in cells:
        marks = [_first_text(mean, sd, passed, s["n"]) for mean, sd, passed in s["first"]]
        marks += [""] * (n_classes - len(marks))
        lines.append(f"| {row['config']} | {row['cell'].replace('|', chr(92) + '|')} | {s['n']} | "
                     + " | ".join(marks) + " |")
    return lines


def _first_text(mean, sd, passed, n):
    """'12 (3)', '12 (-)' for one run, '12 (3) (2/3)' when not every run passed, '–' when none did."""
    if mean is None:
        return "–"
    text = f"{mean:.0f} ({sd:.0f})" if sd is not None else f"{mean:.0f} (-)"
    return text + (f" ({passed}/{n})" if passed < n else "")
