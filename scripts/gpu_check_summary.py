"""gpu_check.sh's closing table: every stage (budget, seconds, status) and the benchmark.

    python scripts/gpu_check_summary.py STAGES.tsv [BENCH.csv]

STAGES.tsv: one line per stage, tab-separated: name, budget s, seconds, exit status (or
'skipped'), note. BENCH.csv: bench/gpu_epoch.py --csv (absent when the benchmark failed).
"""
import csv
import os
import sys


def status(rc):
    return {"0": "ok", "124": "TIMED OUT", "137": "TIMED OUT", "skipped": "skipped"}.get(rc, f"FAILED ({rc})")


def stages(path):
    print(f"{'stage':<11}{'budget':>7}{'took':>6}  {'status':<11}note")
    for line in open(path, encoding="utf-8"):
        name, budget, took, rc, note = (line.rstrip("\n").split("\t") + [""] * 5)[:5]
        print(f"{name:<11}{budget + ' s':>7}{took + ' s':>6}  {status(rc):<11}{note}")


def bench(path):
    if not os.path.exists(path):
        print("benchmark: no results")
        return
    print(f"\n{'network':<8}{'batch':>6}{'s/epoch':>9}{'torch s':>9}{'ratio':>7}{'target':>8}{'submit':>8}  met")
    for r in csv.DictReader(open(path)):
        ours, target = float(r["s_per_epoch"]), float(r["target"])
        torch = float(r["torch_s_per_epoch"]) if r.get("torch_s_per_epoch") else None
        ratio = ours / torch if torch else None
        met = ours <= target and (ratio is None or ratio <= 1.0)
        print(f"{r['network']:<8}{r['batch']:>6}{ours:>9.3f}{(f'{torch:.3f}' if torch else '-'):>9}"
              f"{(f'{ratio:.2f}' if ratio else '-'):>7}{target:>8.2f}{float(r['submit_share']):>8.0%}"
              f"  {'yes' if met else 'no'}")
    print("s/epoch: 60,000 MNIST / 50,000 CIFAR images, extrapolated; torch s: the same network in PyTorch;")
    print("ratio: ours / PyTorch's (target <= 1); submit: share of our time the host spent enqueueing")
    print("(~100%: launch-bound); met: within the target and <= PyTorch")


if __name__ == "__main__":
    stages(sys.argv[1])
    bench(sys.argv[2] if len(sys.argv) > 2 else "")
