"""How long a row of the paper takes through the sweep: docs/gpu_and_speed.md's `sweep-time`
section, from a sweep's folder.

    python scripts/sweep_time_page.py SWEEP_DIR [--write docs/gpu_and_speed.md]

SWEEP_DIR is the --out folder of `python -m brainprop_np.sweep ...`. Its sweep.json gives
the command, the resources (nodes, CPUs, CPUs and GPUs per run, --max-concurrent: how many
runs ran at a time, the run slots) and the wall time summed over the sweep's invocations (a
sweep stopped and continued is one measurement: brainprop_np/run/sweep/invocations.py).
Each run's summary.json and history.csv give its epochs, why it stopped, its best val_acc
and epoch, its median epoch_seconds (training only) and its own wall_seconds (training,
validation and records, as long as it ran). The section gives a line per run, and for the
sweep: the epochs trained, the wall seconds per epoch per slot (wall time × slots ÷
epochs: everything the sweep spent, start-up and restarts included) and the best val_acc
mean (std) beside the paper's figure (the sweep report's PAPER). With --write it replaces
the text between the page's `sweep-time` marker lines; it is printed in any case.
"""
import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from brainprop_np.run.console import plural  # noqa: E402
from brainprop_np.run.history import read_history  # noqa: E402
from brainprop_np.run.stop_reasons import FINAL  # noqa: E402
from brainprop_np.run.sweep.invocations import duration_text, total  # noqa: E402
from brainprop_np.run.sweep.report import PAPER  # noqa: E402
from pages import mean_std, print_and_write  # noqa: E402

MARKER = "sweep-time"


def read_sweep(folder):
    """sweep.json of folder; SystemExit naming the folder when it has none."""
    path = Path(folder) / "sweep.json"
    if not path.is_file():
        sys.exit(f"error: {folder}: no sweep.json here; pass the --out folder of python -m brainprop_np.sweep")
    return json.loads(path.read_text(encoding="utf-8"))


def slots(doc):
    """How many runs the sweep ran at a time: its resources ÷ each run's share, capped by
    --max-concurrent and by the number of runs."""
    res, fits = doc["resources"], []
    for key, per in (("CPU", doc["cpus_per_run"]), ("GPU", doc["gpus_per_run"])):
        if per:
            fits.append(int(res.get(key, 0) // per))
    n = min(fits) if fits else doc["runs"]["total"]
    if doc.get("max_concurrent"):
        n = min(n, doc["max_concurrent"])
    return max(1, min(n, doc["runs"]["total"]))


def run_rows(folder, doc):
    """[dict] per run of sweep.json's placement, in its order: name, epochs, stop, finished,
    best (val_acc), best_epoch, median epoch_seconds, wall_seconds, summary (or {})."""
    rows = []
    for p in doc.get("placement", []):
        d = Path(folder) / p["run"]
        path = d / "summary.json"
        s = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        hist = read_history(d) if (d / "history.csv").is_file() else []
        secs = [h["epoch_seconds"] for h in hist if "epoch_seconds" in h]
        rows.append({"name": p["run"], "epochs": len(hist), "stop": s.get("stop_reason") or p["state"],
                     "finished": s.get("stop_reason") in FINAL, "best": s.get("best_val_acc"),
                     "best_epoch": s.get("best_epoch"), "epoch_s": statistics.median(secs) if secs else None,
                     "wall": s.get("wall_seconds"), "summary": s})
    return rows


def _f(v, fmt):
    return "–" if v is None else format(v, fmt)


def run_table(rows):
    out = ["| run | epochs | stopped | best val_acc % | best epoch | median epoch_seconds | its wall_seconds |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        best = None if r["best"] is None else 100 * r["best"]
        out.append(f"| {r['name']} | {r['epochs']} | {r['stop']} | {_f(best, '.2f')} | {_f(r['best_epoch'], 'd')} | "
                   f"{_f(r['epoch_s'], '.1f')} | {_f(r['wall'], '.0f')} |")
    return out


def machine(rows, doc):
    """'1 node, 2 CPUs, 1 CPU per run: 2 runs at a time; x86_64, fast kernels, 1 thread per run'."""
    n = slots(doc)
    kinds = sorted({f"{s['device_name']}, {s['kernels']} kernels, {plural(s['threads'], 'thread')} per run"
                    for s in (r["summary"] for r in rows) if s})
    head = (f"{plural(doc['nodes'], 'node')}, {plural(int(doc['resources'].get('CPU', 0)), 'CPU')}, "
            f"{plural(doc['cpus_per_run'], 'CPU')} per run: {plural(n, 'run')} at a time")
    return "; ".join([head] + kinds)


def totals(rows, doc):
    """The sweep's lines: wall time, epochs, wall seconds per epoch per slot, the best val_acc."""
    wall, ended = total(doc.get("invocations", []))
    epochs, done = sum(r["epochs"] for r in rows), [r for r in rows if r["finished"]]
    out = [f"- Runs that stopped for good: {len(done)} of {len(rows)}"
           + ("." if len(done) == len(rows) else "; the figures below are the sweep's so far."),
           f"- Epochs trained: {epochs}"
           + (f"; per finished run {mean_std([r['epochs'] for r in done], 1)}." if done else ".")]
    if doc.get("status") == "running":
        out.append(f"- Wall time: the sweep was running when this was written; its {plural(ended, 'ended invocation')} "
                   f"took {duration_text(wall)}, and the running one is not counted (its epochs are): rerun this "
                   "script once the sweep has ended.")
    else:
        out.insert(1, f"- Wall time: **{duration_text(wall)}** ({wall:.0f} s) over {plural(ended, 'invocation')} "
                      "of the sweep.")
    if epochs and doc.get("status") != "running":
        out.append(f"- Wall seconds per epoch per run slot: {wall:.0f} s × {slots(doc)} ÷ {epochs} = "
                   f"**{wall * slots(doc) / epochs:.1f} s** (the runs' median epoch_seconds, training alone: "
                   f"{_f(statistics.median([r['epoch_s'] for r in rows if r['epoch_s']]), '.1f')} s).")
    for config in sorted({r["summary"]["name"] for r in done}):
        mine = [r for r in done if r["summary"]["name"] == config]
        paper = PAPER.get(config) if all(r["summary"]["algorithm"] == "brainprop" for r in mine) else None
        out.append(f"- {config}, best val_acc over its {plural(len(mine), 'finished run')}: "
                   f"{mean_std([r['best'] for r in mine], 2, 100)} %, best epoch "
                   f"{mean_std([r['best_epoch'] for r in mine], 0)}"
                   + ("." if paper is None else f"; the paper's {paper[0]} %"
                      + (f" after {paper[1]} epochs." if paper[1] else ".")))
    return out


def section(folder, doc, argv):
    rows = run_rows(folder, doc)
    head = [f"Generated by `python scripts/sweep_time_page.py {' '.join(argv)}` "
            f"({datetime.date.today().isoformat()}) from the sweep run by", "", "```", doc["command"], "```", "",
            f"on {machine(rows, doc)}.", ""]
    return head + totals(rows, doc) + [""] + run_table(rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", help="the sweep's --out folder")
    ap.add_argument("--write", help="the page whose sweep-time section to replace")
    a = ap.parse_args(argv)
    print_and_write("\n".join(section(a.sweep, read_sweep(a.sweep), argv)) + "\n", a.write, MARKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
