"""Sweeps on Ray: every config × grid cell × seed as one `bp.train` run, and the paper's
mean (std) table per cell.

    python -m brainprop_np.sweep CONFIG [CONFIG ...] --seeds 1-10 [--grid KEY=V1,V2 ...]
        [KEY=VALUE ...] --out DIR [--address ADDR] [--cpus-per-run N] [--gpus-per-run F]
        [--max-concurrent K] [--max-retries R]

Each run is a Ray *task* (`task.run_one`) that calls the same `train` as run.py with the
config, the overrides, the cell's values and `seed=k`, writing its normal run folder at
DIR/<config>/<cell>/seed<k>/. Tasks, not Ray Tune: a run is a fixed grid point that
already owns its checkpoint, resume and early stopping; Tune's trial folders,
experiment state and result reporting would duplicate the run folder, its schedulers
would stop runs off the paper's protocol, and its search algorithms have nothing to
search in a grid × seeds product. Tasks give what a sweep needs from an engine:
placement by resources (--cpus-per-run, --gpus-per-run 0.25 to share a GPU), a local
instance or a cluster, and retry of a task whose worker died (max_retries) — which
resumes from the run's last checkpoint because the task resumes whenever one is there.

Restartable: finished runs (summary.json with a final stop_reason) are read, not
trained; runs with a checkpoint.npz resume; missing ones start. A config or data error
inside a run is reported in the table, not retried. Bad input exits 2 with one line and
writes nothing; an unreachable cluster, or one that asks for a token that is missing or
wrong (auth.py), exits 1 with one line. Each run's train.log names the node of every
attempt; results.csv and sweep.json say where the runs ran (placement.py), and the
progress line names lost nodes and retried runs. DIR/results.csv, results.md,
curves.png and sweep.json are written at the end (each to a temporary name, then
renamed). From Python, with Ray already initialised, the sweep uses that instance.
DIR must be visible to every node (a shared file system) when the runs go to a cluster.
"""
from .cli import main
from .plan import SweepError, parse_grid, parse_seeds

__all__ = ["main", "SweepError", "parse_grid", "parse_seeds"]
