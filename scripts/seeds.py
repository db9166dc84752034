"""Train one config over several seeds and report mean (std) of the best validation accuracy,
as the paper's tables do (seeds 1..10).

    python scripts/seeds.py configs/mnist_conv.yaml --seeds 1-10 [key=value ...] [--out runs/seeds]

Each seed runs through run.py into OUT/<config name>/seed<k>; a finished seed (its
summary.json has a final stop_reason) is skipped, an interrupted one is resumed, so the
script can be stopped and restarted. The table at the end reads the summaries.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINAL = {"early_stopping", "max_epochs"}


def parse_seeds(text):
    """'1-10' or '1,3,5' → [ints]."""
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def summary(run_dir):
    p = run_dir / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*", help="dotted overrides passed to run.py")
    ap.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,2,3 (default 1-10)")
    ap.add_argument("--out", default="runs/seeds", help="parent folder of the runs")
    args = ap.parse_intermixed_args(argv)
    name = Path(args.config).stem
    rows = []
    for seed in parse_seeds(args.seeds):
        run_dir = Path(args.out) / name / f"seed{seed}"
        s = summary(run_dir)
        if s is None or s.get("stop_reason") not in FINAL:
            cmd = [sys.executable, str(ROOT / "run.py")]
            cmd += (["--resume", str(run_dir)] if (run_dir / "checkpoint.npz").is_file()
                    else [args.config, f"seed={seed}", *args.overrides, "--out", str(run_dir)])
            print("$", " ".join(cmd), flush=True)
            rc = subprocess.call(cmd)
            if rc != 0:
                print(f"seed {seed}: run.py exited {rc}; stopping here (rerun this script to resume)")
                return rc
            s = summary(run_dir)
        rows.append((seed, s["best_val_acc"], s["best_epoch"], s["mean_epoch_seconds"]))
    print(f"\n{'seed':>5}{'best val_acc':>14}{'best epoch':>12}{'s/epoch':>10}")
    for seed, acc, ep, sec in rows:
        print(f"{seed:>5}{acc:>14.4f}{ep:>12}{sec:>10.1f}")
    accs = [r[1] * 100 for r in rows]
    eps = [r[2] for r in rows]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    sde = statistics.stdev(eps) if len(eps) > 1 else 0.0
    print(f"{name}: {statistics.mean(accs):.2f} ({sd:.2f}) % over {len(rows)} seeds; "
          f"best epoch {statistics.mean(eps):.0f} ({sde:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
