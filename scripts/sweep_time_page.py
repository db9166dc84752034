"""How long a row of the paper takes through the sweep: docs/gpu_and_speed.md's `sweep-time`
section, from a sweep's folder.

    python scripts/sweep_time_page.py SWEEP_DIR [--write docs/gpu_and_speed.md]

SWEEP_DIR is the --out folder of `python -m brainprop_np.sweep ...`. Its sweep.json gives
the command, the resources (nodes, CPUs, CPUs and GPUs per run, --max-concurrent: how many
runs ran at a time, the run slots) and the wall time summed over the sweep's invocations (a
sweep stopped and continued is one measurement; an invocation without a recorded end counts
to its last progress line: brainprop_np/run/sweep/invocations.py). Each run's summary.json
and history.csv give its epochs, why it stopped, its best val_acc and epoch, its median
epoch_seconds (training alone) and its own wall_seconds (summary.json's). The section gives
the runs finished, the wall time, the epochs trained, the wall seconds per epoch per run
slot (wall time × slots ÷ epochs: everything the sweep spent, start-up and restarts
included; not given when an invocation's time is unknown), the best val_acc mean (std) per
config and cell beside the paper's figure (the sweep report's paper_text), and a line per
run. With --write it replaces the text between the page's `sweep-time` marker lines; it is
printed in any case.
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
from brainprop_np.run.sweep.cli import HEARTBEAT_S  # noqa: E402
from brainprop_np.run.sweep.invocations import duration_text, total  # noqa: E402
from brainprop_np.run.sweep.report import paper_text  # noqa: E402
from pages import mean_std, print_and_write  # noqa: E402

MARKER = "sweep-time"


def read_sweep(folder):
    """sweep.json of folder; SystemExit naming the folder when it has none."""
    path = Path(folder) / "sweep.json"
    if not path.is_file():
        sys.exit(f"error: {folder}: no sweep.json here; pass the --out folder of python -m brainprop_np.sweep")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not doc.get("resources"):
        sys.exit(f"error: {folder}: no invocation of this sweep trained a run (every run was read): nothing to time")
    return doc


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


def wall_lines(rows, doc):
    """The lines of the wall time and of the time per epoch per run slot; the latter left out when
    some invocation's time is not known (the sum would be too short for the epochs)."""
    entries = doc.get("invocations", [])
    wall, timed, untimed = total(entries)
    open_ = sum("finished" not in e and e.get("seen_seconds") is not None for e in entries)
    out = [f"- Wall time: **{duration_text(wall)}** ({wall:.0f} s) over {plural(timed, 'invocation')} of the sweep."]
    if open_:
        out.append(f"- {plural(open_, 'invocation')} without a recorded end (running when this was written, or "
                   f"its driver was killed): counted to its last progress line (at most {HEARTBEAT_S:.0f} s "
                   "before its end).")
    if untimed:
        out.append(f"- {plural(untimed, 'invocation')} with no time recorded (its driver kept none so far): "
                   "not counted, so no time per epoch is given.")
    epochs = sum(r["epochs"] for r in rows)
    if epochs and not untimed:
        n = slots(doc)
        out.append(f"- Wall seconds per epoch per run slot: {wall:.0f} s × {n} ÷ {epochs} = "
                   f"**{wall * n / epochs:.1f} s** (the runs' median epoch_seconds, training alone: "
                   f"{_f(statistics.median([r['epoch_s'] for r in rows if r['epoch_s']]), '.1f')} s).")
    return out


def accuracy_lines(done):
    """Per config and cell of the finished runs: best val_acc and best epoch, mean (std), beside
    the paper's figure where it applies (BrainProp on full MNIST)."""
    out = []
    for cell in sorted({r["name"].rsplit("/", 1)[0] for r in done}):
        mine = [r for r in done if r["name"].rsplit("/", 1)[0] == cell]
        config, algorithms = mine[0]["summary"]["name"], {r["summary"]["algorithm"] for r in mine}
        sample = any((r["summary"].get("dataset") or {}).get("fallback") for r in mine)
        paper = paper_text(config, algorithms.pop()) if len(algorithms) == 1 and not sample else ""
        out.append(f"- {cell}, best val_acc over its {plural(len(mine), 'finished run')}: "
                   f"{mean_std([r['best'] for r in mine], 2, 100)} %, best epoch "
                   f"{mean_std([r['best_epoch'] for r in mine], 0)}"
                   + (f"; the paper's {paper}." if paper else ".")
                   + (" Trained on the bundled MNIST sample: not comparable with the paper." if sample else ""))
    return out


def totals(rows, doc):
    """The sweep's lines: runs finished, wall time, epochs, time per epoch per slot, best val_acc."""
    done = [r for r in rows if r["finished"]]
    out = [f"- Runs that stopped for good: {len(done)} of {len(rows)}"
           + ("." if len(done) == len(rows) else "; the figures below are the sweep's so far."),
           f"- Epochs trained: {sum(r['epochs'] for r in rows)}"
           + (f"; per finished run {mean_std([r['epochs'] for r in done], 1)}." if done else ".")]
    return out + wall_lines(rows, doc) + accuracy_lines(done)


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
