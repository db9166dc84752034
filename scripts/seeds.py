"""Train one config over several seeds and report mean (std) of the best validation
accuracy and of the best epoch, as the paper's tables do (seeds 1..10).

    python scripts/seeds.py configs/mnist_conv.yaml --seeds 1-10 [key=value ...] [--out runs/seeds]

Each seed runs through run.py into OUT/<config name>/seed<k>. A finished seed (its
summary.json has a final stop_reason) is read, not rerun; an interrupted one is resumed;
so the script can be stopped and restarted. A seed folder made with other settings (a
different config or overrides) is refused rather than mixed into the table: choose
another --out.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FINAL = {"early_stopping", "max_epochs"}


class SeedsError(ValueError):
    """A bad argument or a seed folder that does not fit the request (one-line message)."""


def parse_seeds(text):
    """'1-10' or '1,3,5' → [ints] (one-line SeedsError otherwise)."""
    out = []
    try:
        for part in text.split(","):
            a, dash, b = part.partition("-")
            out += list(range(int(a), int(b) + 1)) if dash else [int(a)]
    except ValueError:
        raise SeedsError(f"--seeds {text!r} is not allowed; use a range such as 1-10 or a list such as 1,3,5") from None
    if not out:
        raise SeedsError(f"--seeds {text!r} names no seed; use a range such as 1-10 (first <= last)")
    return out


def summary(run_dir):
    p = run_dir / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None


def resolved(config, overrides):
    """The fully resolved config run.py would use (ConfigError on bad input)."""
    from brainprop_np.config import load_config
    return load_config(config, overrides)


def check_same(run_dir, wanted):
    """Refuse a seed folder whose config.yaml differs from `wanted` (device and data.root aside)."""
    import yaml
    p = run_dir / "config.yaml"
    if not p.is_file():
        return
    have = yaml.safe_load(p.read_text())
    ignore = {"device", "init_from"}
    diff = [k for k in sorted(set(have) | set(wanted)) if k not in ignore and
            (have.get(k) != wanted.get(k) if k != "data" else
             {a: b for a, b in (have.get(k) or {}).items() if a != "root"} !=
             {a: b for a, b in (wanted.get(k) or {}).items() if a != "root"})]
    if diff:
        raise SeedsError(f"{run_dir} was made with other settings ({', '.join(diff)} differ); "
                         "use another --out, or the same config and overrides as before")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train a config over several seeds; print mean (std) as the paper does.")
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*", help="dotted overrides passed to run.py (not seed=)")
    ap.add_argument("--seeds", default="1-10", help="e.g. 1-10 or 1,2,3 (default 1-10)")
    ap.add_argument("--out", default="runs/seeds", help="parent folder of the runs (default runs/seeds)")
    args = ap.parse_intermixed_args(argv)
    from brainprop_np.config import ConfigError
    try:
        seeds = parse_seeds(args.seeds)
        if any(o.split("=", 1)[0] == "seed" for o in args.overrides):
            raise SeedsError("seed= is not allowed here: --seeds chooses the seeds")
        name = Path(args.config).stem
        rows = []
        for seed in seeds:
            run_dir = Path(args.out) / name / f"seed{seed}"
            wanted = resolved(args.config, [*args.overrides, f"seed={seed}"])
            check_same(run_dir, wanted)
            s = summary(run_dir)
            if s is None or s.get("stop_reason") not in FINAL:
                cmd = [sys.executable, str(ROOT / "run.py")]
                cmd += (["--resume", str(run_dir)] if (run_dir / "checkpoint.npz").is_file()
                        else [args.config, *args.overrides, f"seed={seed}", "--out", str(run_dir)])
                print("$", " ".join(cmd), flush=True)
                rc = subprocess.call(cmd)
                if rc == 130:
                    print(f"seed {seed} interrupted; rerun this command to resume it", file=sys.stderr)
                    return rc
                if rc != 0:
                    print(f"seed {seed}: run.py exited {rc} (see its message above); stopping", file=sys.stderr)
                    return rc
                s = summary(run_dir)
            rows.append((seed, s["best_val_acc"], s["best_epoch"], s["mean_epoch_seconds"],
                         (s.get("dataset") or {}).get("used", "?"), bool((s.get("dataset") or {}).get("fallback"))))
    except (SeedsError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun this command to resume (finished seeds are kept)", file=sys.stderr)
        return 130
    print(f"\n{'seed':>5}{'best val_acc':>14}{'best epoch':>12}{'s/epoch':>10}  data")
    for seed, acc, ep, sec, used, _ in rows:
        print(f"{seed:>5}{acc:>14.4f}{ep:>12}{sec:>10.1f}  {used}")
    accs = [r[1] * 100 for r in rows]
    eps = [r[2] for r in rows]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    sde = statistics.stdev(eps) if len(eps) > 1 else 0.0
    used = sorted({r[4] for r in rows} - {"?"})
    on = f" on {', '.join(used)}" if used else ""
    if any(r[5] for r in rows):
        on += " (FELL BACK TO THE MNIST SAMPLE: not full MNIST)"
    print(f"{name}: {statistics.mean(accs):.2f} ({sd:.2f}) % over {len(rows)} seeds{on}; "
          f"best epoch {statistics.mean(eps):.0f} ({sde:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
