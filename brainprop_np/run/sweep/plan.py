"""What a sweep runs: seeds, grid cells, one resolved config per run, and each run's state.

Everything here is checked before Ray is touched or a file is written, so bad input
(an unknown key in --grid or an override, a bad seed range, a run folder made with
other settings) ends the sweep with one line and exit 2, leaving nothing behind.
"""
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RESUMABLE_KEYS, ConfigError, flat_keys, get_key, load_config, parse_override
from ..stop_reasons import FINAL, NON_FINITE_LOSS

# Resumable keys whose change a sweep carries into a finished or interrupted run by
# resuming it (train.epochs=600 extends every run); the others only say where to run.
EXTEND_KEYS = ("train.epochs", "train.patience", "train.min_delta")
PASS_KEYS = ("train.eval_batch_size", "device", "kernels", "data.root", "data.download")
IGNORED_KEYS = set(RESUMABLE_KEYS)              # not compared with a run folder's config.yaml


class SweepError(ValueError):
    """Bad sweep input (one line); the command exits 2."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


def parse_seeds(text):
    """'1-10', '1,3,5' or '1-3,7' → [1, 2, ...] (sorted as given, no repeats)."""
    out = []
    try:
        for part in str(text).split(","):
            a, dash, b = part.strip().partition("-")
            lo = int(a)
            hi = int(b) if dash else lo
            if hi < lo:
                raise ValueError
            out += range(lo, hi + 1)
    except ValueError:
        raise SweepError(f"--seeds {text!r} is not allowed; use a range such as 1-10 (first <= last), "
                         "a list such as 1,3,5, or both (1-3,7)") from None
    if len(set(out)) != len(out):
        raise SweepError(f"--seeds {text!r} names a seed twice; name each seed once")
    if any(s < 0 or s >= 2 ** 32 for s in out):
        raise SweepError(f"--seeds {text!r} is not allowed; seeds are integers from 0 to 4294967295")
    return out


def parse_grid(texts):
    """['algorithm=brainprop,ebp', 'brainprop.epsilon=0.02,0.05'] → [(key, [value texts])]."""
    grid, seen = [], set()
    for text in texts:
        key, eq, values = str(text).partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",")]
        if not eq or not key or not values.strip() or any(v == "" for v in vals):
            raise SweepError(f"--grid {text!r} is not allowed; write KEY=V1,V2,... e.g. --grid algorithm=brainprop,ebp")
        if key == "seed":
            raise SweepError("--grid seed=... is not allowed: --seeds chooses the seeds")
        if key in seen:
            raise SweepError(f"--grid {key} is given twice; give each key once with all its values")
        if len(set(vals)) != len(vals):
            raise SweepError(f"--grid {text!r} names a value twice")
        seen.add(key)
        grid.append((key, vals))
    return grid


def cells(grid):
    """[(cell name, [override texts])] of the grid's Cartesian product; ('default', []) without a grid."""
    if not grid:
        return [("default", [])]
    keys = [k for k, _ in grid]
    out = []
    for combo in itertools.product(*[v for _, v in grid]):
        name = ",".join(f"{k}={v}" for k, v in zip(keys, combo))
        out.append((name.replace("/", "_").replace("\\", "_"), [f"{k}={v}" for k, v in zip(keys, combo)]))
    return out


@dataclass
class Run:
    """One training run of the sweep: a config × grid cell × seed."""
    config: str                 # the config's name (its file stem)
    config_path: str
    cell: str
    seed: int
    overrides: list             # what run.py would get: overrides, cell values, seed=k
    cfg: dict                   # the resolved config
    run_dir: Path
    state: str = "fresh"        # fresh | resume | done | failed
    resume_overrides: list = field(default_factory=list)
    summary: dict = None        # summary.json (done or failed runs)
    error: str = None           # one line, for failed runs
    error_kind: str = None      # config | data | runtime | worker
    attempts: int = 0           # worker attempts this invocation reported
    resumed_from: int = None    # the epoch the last attempt resumed after
    attempts0: int = None       # attempts in train.log when this invocation submitted the run
    nodes: list = field(default_factory=list)   # the node of every attempt (placement.read)

    @property
    def label(self):
        return f"{self.config}/{self.cell}/seed{self.seed}"


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _value_text(v):
    return json.dumps(v)        # JSON scalars are YAML scalars: 600, null, true, "x"


def _classify(run):
    """Set run.state from its folder: done (read it), resume (from checkpoint.npz), fresh, failed."""
    d = run.run_dir
    have_cfg = d / "config.yaml"
    if not have_cfg.is_file():
        return
    import yaml
    try:
        have = yaml.safe_load(have_cfg.read_text(encoding="utf-8")) or {}
        keys = [k for k in flat_keys(run.cfg) if k not in IGNORED_KEYS]
        diff = [k for k in keys if _get(have, k) != get_key(run.cfg, k)]
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        raise SweepError(f"{have_cfg} cannot be read; move the folder away or choose another --out") from None
    if diff:
        shown = ", ".join(f"{k}: {_get(have, k)!r} there, {get_key(run.cfg, k)!r} now" for k in diff[:3])
        raise SweepError(f"{d} was made with other settings ({shown}); use the same configs and overrides "
                         "as before, or another --out")
    changed = [k for k in EXTEND_KEYS + PASS_KEYS if _get(have, k) != get_key(run.cfg, k)]
    run.resume_overrides = [f"{k}={_value_text(get_key(run.cfg, k))}" for k in changed]
    summary = _read_json(d / "summary.json")
    ckpt = (d / "checkpoint.npz").is_file()
    if summary and summary.get("stop_reason") == NON_FINITE_LOSS:
        run.state, run.summary, run.error_kind = "failed", summary, "runtime"
        run.error = (summary.get("message") or "the training loss became non-finite") + \
            f" (remove {d} to train it again)"
    elif summary and summary.get("stop_reason") in FINAL and not any(k in EXTEND_KEYS for k in changed):
        run.state, run.summary = "done", summary
    elif ckpt:
        run.state = "resume"


def _get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def build(config_paths, seeds, grid, overrides, out):
    """The runs of a sweep, in order config, cell, seed, each resolved and classified."""
    for text in overrides:
        key = parse_override(text)[0]
        if key == "seed":
            raise SweepError("seed= is not allowed here: --seeds chooses the seeds")
        if key in {k for k, _ in grid}:
            raise SweepError(f"{key} is given both as an override and in --grid; give it once")
    names = {}
    for path in config_paths:
        stem = Path(path).stem
        if stem in names:
            raise SweepError(f"configs {names[stem]} and {path} have the same name {stem!r}; "
                             "the sweep names run folders by the config's file name")
        names[stem] = path
    # each grid value alone first, so that a bad --grid key is reported as such
    for path in config_paths:
        for key, values in grid:
            for v in values:
                try:
                    load_config(path, [*overrides, f"{key}={v}"])
                except ConfigError as e:
                    raise SweepError(f"--grid {key}={v}: {e}") from None
    out = Path(out)
    runs = []
    for path in config_paths:
        for cell, cell_ov in cells(grid):
            for seed in seeds:
                ov = [*overrides, *cell_ov, f"seed={seed}"]
                cfg = load_config(path, ov)           # ConfigError: exit 2
                run = Run(config=Path(path).stem, config_path=str(path), cell=cell, seed=seed,
                          overrides=ov, cfg=cfg, run_dir=out / Path(path).stem / cell / f"seed{seed}")
                _classify(run)
                runs.append(run)
    return runs
