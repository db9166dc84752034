"""The sweep's command line and its driver loop on Ray (see the package docstring)."""
import argparse
import contextlib
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from ..console import sigterm_as_ctrl_c
from ...errors import fail
from ...files import write_json
from . import auth, classes, invocations, placement, plan, report
from .plan import SweepError

PROG = "python -m brainprop_np.sweep"     # the usage's name unless main is given another (brainprop sweep)
HEARTBEAT_S = 30.0          # a progress line at least this often while runs are in flight
WATCH_S = 5.0               # how often the cluster's nodes are checked (a lost node: a progress line)


class Unreachable(RuntimeError):
    """The Ray cluster at --address cannot be reached, or a local instance cannot start (exit 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SweepError(f"{message}; see {self.prog} --help")


def _parser(prog):
    p = _Parser(prog=prog, description="Train every config × grid cell × seed as one bp.train run on Ray "
                "and report mean (std) per cell, as the paper's tables do.",
                epilog=f"example: {prog} configs/mnist_dense.yaml configs/mnist_conv.yaml --seeds 1-3 "
                       "--grid algorithm=brainprop,ebp --out runs/sweep")
    p.add_argument("args", nargs="*", metavar="CONFIG | KEY=VALUE",
                   help="one or more YAML configs, and dotted overrides applied to every run (e.g. train.epochs=2)")
    p.add_argument("--seeds", default="1-10", help="seeds, e.g. 1-10, 1,3,5 or 1-3,7 (default 1-10)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key and its values; several --grid give their Cartesian product")
    p.add_argument("--out", default="runs/sweep", metavar="DIR",
                   help="the sweep's folder: DIR/<config>/<cell>/seed<k>/ and the tables (default runs/sweep)")
    p.add_argument("--address", metavar="ADDR",
                   help="join a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
                        "(default: start a local Ray instance sized to this machine)")
    p.add_argument("--cpus-per-run", type=int, default=1, metavar="N",
                   help="CPU cores per run; also its NumPy/BLAS thread count (default 1)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, metavar="F",
                   help="GPUs per run; 0.25 lets four runs share one GPU (default 0: CPU runs)")
    p.add_argument("--max-concurrent", type=int, default=None, metavar="K",
                   help="at most K runs at a time (default: as many as the cluster's resources allow)")
    p.add_argument("--max-retries", type=int, default=3, metavar="R",
                   help="retries of a run whose worker died, each from its last checkpoint (default 3)")
    return p


_fail = fail


def _parse(argv, prog):
    ns = _parser(prog).parse_intermixed_args(argv)
    configs = [a for a in ns.args if "=" not in a]
    overrides = [a for a in ns.args if "=" in a]
    if not configs:
        raise SweepError(f"no config given; usage: {prog} CONFIG [CONFIG ...] --seeds 1-10 [--grid KEY=V1,V2] "
                         "[KEY=VALUE ...] --out DIR")
    if ns.cpus_per_run < 1:
        raise SweepError(f"--cpus-per-run {ns.cpus_per_run} is not allowed; use an integer >= 1")
    g = ns.gpus_per_run
    if not (g >= 0) or (g > 1 and g != int(g)):
        raise SweepError(f"--gpus-per-run {g:g} is not allowed; use 0, a fraction up to 1 (0.25: four runs "
                         "share a GPU) or a whole number")
    if ns.max_concurrent is not None and ns.max_concurrent < 1:
        raise SweepError(f"--max-concurrent {ns.max_concurrent} is not allowed; use an integer >= 1")
    if ns.max_retries < 0:
        raise SweepError(f"--max-retries {ns.max_retries} is not allowed; use an integer >= 0")
    out = Path(ns.out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {ns.out} is not allowed: it is a file; give a folder")
    return ns, configs, overrides


# ---------------------------------------------------------------------------------------
# Ray

def _import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError("Ray is not installed; the sweep needs it: pip install 'brainprop_np[sweep]' "
                         "(or pip install ray)") from None
    return ray


def _host_port(address):
    a = address[len("ray://"):] if address.startswith("ray://") else address
    host, colon, port = a.rpartition(":")
    if not colon:
        return a, (10001 if address.startswith("ray://") else 6379)
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise SweepError(f"--address {address!r} is not allowed; use auto, HOST:PORT or ray://HOST:PORT") from None


def _reachable(address):
    """host:port of --address (a gRPC target) once a TCP connection to it opens; else Unreachable."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise Unreachable(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); start one with "
                          "`ray start --head` there, or leave out --address for a local instance") from None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(address):
    """(ray, started_here): join the cluster at `address`, else use an initialised Ray, else start one."""
    ray = _import_ray()
    target = _reachable(address) if address and address != "auto" else None
    if ray.is_initialized():
        return ray, False
    if target:
        try:
            auth.prepare(address, target)
        except auth.TokenError as e:
            raise Unreachable(str(e)) from None
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)     # a new instance, never a stale one
    except ImportError as e:      # ray:// needs Ray Client (grpcio)
        raise SweepError(f"--address {address}: {e}; install it with pip install 'brainprop_np[sweep]' "
                         "(or pip install 'ray[client]')") from None
    except (ConnectionError, TimeoutError, RuntimeError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if address:
            raise Unreachable(f"cannot reach the Ray cluster at {address}: {first}") from None
        raise Unreachable(f"cannot start a local Ray instance: {first}") from None
    return ray, not address


def _runtime_env(cpus, gpus):
    """Worker environment: thread counts for one run (a run's numbers depend on OpenBLAS's
    thread count, so it is fixed to --cpus-per-run), this package importable, and no GPU
    visible to a run that was given none (device=auto then trains on the CPU instead of
    crowding a GPU that Ray did not hand out)."""
    import brainprop_np
    n = str(cpus)
    root = str(Path(brainprop_np.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    env = {"BRAINPROP_THREADS": n, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
           "MKL_NUM_THREADS": n, **brainprop_np.BLAS_ENV,
           "PYTHONPATH": root + (os.pathsep + path if path else "")}
    if not gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return {"env_vars": env}


def _resources(ray):
    res = {k: v for k, v in ray.cluster_resources().items() if not k.startswith("node:")}
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return res, nodes


# ---------------------------------------------------------------------------------------
# the driver

class _Progress:
    """The progress line: runs done, running, waiting, failed; nodes lost and runs retried; the best."""

    def __init__(self, runs, t0, watch=None):
        self.runs, self.t0, self.watch = runs, t0, watch
        self.best = None
        self.lost = []

    def seen(self, run):
        acc = (run.summary or {}).get("best_val_acc")
        if run.state == "done" and acc is not None and (self.best is None or acc > self.best[0]):
            self.best = (acc, run.label)

    def check_nodes(self):
        """True when the cluster lost a node since the last check."""
        before = self.lost
        self.lost = self.watch.check() if self.watch else []
        return self.lost != before

    def retried(self, inflight):
        """Runs of this invocation that needed more than one attempt (in flight: read from train.log)."""
        live = {id(r) for r in inflight}

        def n_attempts(r):          # a finished run reported its attempt; the others are read
            return r.attempts if id(r) not in live and r.attempts else len(placement.attempt_nodes(r.run_dir))
        return [r for r in self.runs if r.attempts0 is not None and n_attempts(r) - r.attempts0 >= 2]

    def line(self, inflight, queued):
        inflight = list(inflight)
        done = sum(r.state == "done" for r in self.runs)
        failed = sum(r.state == "failed" for r in self.runs)
        running = sum(1 for r in inflight if _started_since(r, self.t0))
        lost = f"; lost node(s) {', '.join(self.lost)}" if self.lost else ""
        again = self.retried(inflight)
        shown = ", ".join(r.label for r in again[:3]) + (", ..." if len(again) > 3 else "")
        retried = f"; {len(again)} retried ({shown})" if again else ""
        best = f"; best so far {self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        return (f"[{done}/{len(self.runs)} done, {running} running, {len(inflight) - running + queued} waiting, "
                f"{failed} failed{lost}{retried}{best}; {invocations.duration_text(time.time() - self.t0)}]")


def _started_since(run, t0):
    try:
        return (run.run_dir / "train.log").stat().st_mtime >= t0 - 1
    except OSError:
        return False


def _apply(run, res):
    run.attempts = res.get("attempt", 0)
    run.resumed_from = res.get("resumed_from")
    if res["status"] == "done":
        run.state, run.summary = "done", res["summary"]
    elif res["status"] == "failed":
        run.state, run.error, run.error_kind = "failed", res["message"], res.get("kind")
    else:
        run.state, run.summary = "interrupted", res.get("summary")


def _result_line(run):
    if run.state == "done":
        s = run.summary
        how = f", resumed after epoch {run.resumed_from}" if run.resumed_from is not None else ""
        how += f", attempt {run.attempts}" if run.attempts > 1 else ""
        data = " ON THE MNIST SAMPLE (fallback)" if (s.get("dataset") or {}).get("fallback") else ""
        return (f"{run.label}: best val_acc {s['best_val_acc']:.4f} at epoch {s['best_epoch']} "
                f"({s['stop_reason']}, {s['epochs_run']} epochs{how}){data}")
    if run.state == "failed":
        return f"{run.label}: FAILED ({run.error_kind} error, not retried): {run.error}"
    return f"{run.label}: {run.state}"


def _options(ns):
    return dict(num_cpus=ns.cpus_per_run, num_gpus=ns.gpus_per_run, max_retries=ns.max_retries,
                retry_exceptions=False, runtime_env=_runtime_env(ns.cpus_per_run, ns.gpus_per_run))


def _submit(remote, opts, r):
    r.attempts0 = len(placement.attempt_nodes(r.run_dir))
    spec = {"config": r.cfg, "run_dir": str(r.run_dir.resolve()), "resume_overrides": r.resume_overrides}
    return remote.options(name=r.label, **opts).remote(spec)


def _collect(ray, r, ref, ns):
    try:
        _apply(r, ray.get(ref))
    except ray.exceptions.RayError as e:      # a worker died more than --max-retries times, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        r.state, r.error_kind = "failed", "worker"
        r.error = f"{type(e).__name__}: {first} (after up to {ns.max_retries} retries)"


def execute(ray, runs, todo, ns, t0, beat=None):
    """Submit the runs in `todo` (at most --max-concurrent at a time), wait for them; the _Progress.
    beat(): called with every progress line (sweep.json's time so far)."""
    from .task import run_one
    remote, opts = ray.remote(run_one), _options(ns)
    progress = _Progress(runs, t0, placement.NodeWatch(ray))
    for r in runs:
        progress.seen(r)
    pending, inflight = deque(todo), {}
    last = time.monotonic()
    try:
        while pending or inflight:
            while pending and (ns.max_concurrent is None or len(inflight) < ns.max_concurrent):
                r = pending.popleft()
                inflight[_submit(remote, opts, r)] = r
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=WATCH_S)
            for ref in ready:
                r = inflight.pop(ref)
                _collect(ray, r, ref, ns)
                progress.seen(r)
                progress.check_nodes()
                print(f"{progress.line(inflight.values(), len(pending))} {_result_line(r)}", flush=True)
                last = _beat(beat)
            if (not ready and progress.check_nodes()) or time.monotonic() - last >= HEARTBEAT_S:
                print(progress.line(inflight.values(), len(pending)), flush=True)
                last = _beat(beat)
    except KeyboardInterrupt:
        _stop(ray, inflight)
        raise
    if progress.check_nodes():                # a node Ray marked dead after the last result
        print(progress.line((), 0), flush=True)
    return progress


def _beat(beat):
    """beat() when given; the monotonic time after it."""
    if beat is not None:
        beat()
    return time.monotonic()


def _stop(ray, inflight):
    print("interrupted: stopping the runs (each writes its checkpoint) ...", file=sys.stderr, flush=True)
    for ref in inflight:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    deadline = time.monotonic() + 20
    for ref, r in inflight.items():
        with contextlib.suppress(Exception):
            _apply(r, ray.get(ref, timeout=max(0.1, deadline - time.monotonic())))


def _command(argv):
    return shlex.join(["python", "-m", "brainprop_np.sweep", *argv])


def _ray_version():
    try:
        from importlib.metadata import version
        return version("ray")
    except Exception:
        return None


def _sweep_json(ns, argv, configs, overrides, grid, seeds, runs, cluster, extra):
    out = Path(ns.out)
    old = {}
    with contextlib.suppress(OSError, ValueError):
        old = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    counts = {s: sum(r.state == s for r in runs) for s in ("done", "failed", "fresh", "resume", "interrupted")}
    doc = {"engine": "ray", "ray_version": cluster.get("ray_version") or old.get("ray_version") or _ray_version(),
           "command": _command(argv), "cwd": os.getcwd(), "configs": configs, "overrides": overrides,
           "grid": {k: v for k, v in grid}, "cells": [c for c, _ in plan.cells(grid)], "seeds": seeds,
           "address": ns.address or "local", "resources": cluster.get("resources", old.get("resources")),
           "nodes": cluster.get("nodes", old.get("nodes")),
           "cpus_per_run": ns.cpus_per_run, "gpus_per_run": ns.gpus_per_run,
           "max_concurrent": ns.max_concurrent, "max_retries": ns.max_retries,
           "runs": {"total": len(runs), "finished": counts["done"], "failed": counts["failed"],
                    "unfinished": len(runs) - counts["done"] - counts["failed"]}}
    doc.update(extra)
    if "resources" not in cluster:
        doc["cluster_note"] = "not contacted by the last invocation: every run was already finished"
    doc["invocations"] = invocations.record(old.get("invocations"), {
        "command": doc["command"], "time": time.strftime(invocations.STAMP), **extra})
    doc["total_wall_seconds"], doc["timed_invocations"], doc["untimed_invocations"] = invocations.total(
        doc["invocations"])
    return doc


@dataclass
class _Sweep:
    """One invocation: its command line, its planned runs and the Ray it talks to."""
    ns: argparse.Namespace
    argv: list
    configs: list
    overrides: list
    t0: float
    seeds: list = None
    grid: list = None
    runs: list = None
    todo: list = None
    ray: object = None
    started: bool = None
    cluster: dict = field(default_factory=dict)
    progress: object = None     # execute's _Progress: nodes lost, runs retried
    doc: dict = None            # the sweep.json written last

    @property
    def out(self):
        return Path(self.ns.out)

    def sweep_json(self, extra):
        doc = _sweep_json(self.ns, self.argv, self.configs, self.overrides, self.grid, self.seeds, self.runs,
                          self.cluster, extra)
        doc["placement"] = placement.per_run(self.runs)
        return doc


def _plan(sw):
    """Seeds, grid and runs of the sweep; Ray connected when a run is left to train."""
    sw.seeds = plan.parse_seeds(sw.ns.seeds)
    sw.grid = plan.parse_grid(sw.ns.grid)
    sw.runs = plan.build(sw.configs, sw.seeds, sw.grid, sw.overrides, sw.ns.out)
    sw.todo = [r for r in sw.runs if r.state in ("fresh", "resume")]
    if sw.todo:
        sw.ray, sw.started = connect(sw.ns.address)
        _check_fits(sw)


def fits(per_run, nodes):
    """Whether one of `nodes` [(CPU, GPU)] holds a run of per_run (CPU, GPU)."""
    return any(c >= per_run[0] and g >= per_run[1] for c, g in nodes)


def _check_fits(sw):
    """A run that no node can hold would wait forever: on a local instance (its resources are all
    there is) a SweepError, on a cluster (which may yet add nodes) a warning."""
    ns, ray = sw.ns, sw.ray
    try:
        nodes = [(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in ray.nodes() if n.get("Alive")]
    except Exception:            # Ray Client or GCS hiccup: no check
        return
    if not nodes or fits((ns.cpus_per_run, ns.gpus_per_run), nodes):
        return
    cpu, gpu = max(nodes)
    text = (f"--cpus-per-run {ns.cpus_per_run} --gpus-per-run {ns.gpus_per_run:g}: no node of the "
            f"{'local Ray instance' if sw.started else 'cluster'} holds a run (the largest has {cpu:g} CPU, "
            f"{gpu:g} GPU), so the runs would wait forever")
    if sw.started:
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise SweepError(f"{text}; ask for at most what a node has")
    print(f"warning: {text}, unless the cluster adds a node that fits", file=sys.stderr, flush=True)


def _announce(sw, n_read, n_resume):
    """The first line: how many runs, what is left to do, and the cluster (recorded in sw.cluster)."""
    ns, ray, runs, todo, out = sw.ns, sw.ray, sw.runs, sw.todo, sw.out
    if ray is None:
        print(f"sweep: all {len(runs)} runs are finished (read, not trained); folder {out}", flush=True)
        return
    res, nodes = _resources(ray)
    sw.cluster = {"ray_version": ray.__version__, "resources": res, "nodes": nodes}
    where = "local instance" if sw.started or not ns.address else f"cluster at {ns.address}"
    print(f"sweep: {len(runs)} run{'s' if len(runs) != 1 else ''} ({len(sw.configs)} config(s) × {len(plan.cells(sw.grid))} cell(s) × "
          f"{len(sw.seeds)} seed(s)): {n_read} finished (read), {n_resume} to resume, "
          f"{len(todo) - n_resume} to start; Ray {ray.__version__} {where}, {nodes} node(s), "
          f"{res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU; per run {ns.cpus_per_run} CPU, "
          f"{ns.gpus_per_run:g} GPU; folder {out}", flush=True)


def _train(sw, extra):
    """Run what is left on Ray, sweep.json's entry of this invocation rewritten with its time so
    far at every progress line; True when Ctrl-C or SIGTERM stopped it. A Ray started here is
    shut down."""
    def beat():                       # a record of progress: a failed write does not stop the runs
        so_far = dict(extra, status="running", seen_seconds=round(time.time() - sw.t0, 1))
        try:
            write_json(sw.out / "sweep.json", sw.sweep_json(so_far))
        except OSError as e:
            print(f"warning: cannot write {sw.out / 'sweep.json'} ({e.strerror or e}); the runs go on",
                  file=sys.stderr, flush=True)
    try:
        if sw.todo:
            with sigterm_as_ctrl_c():
                sw.progress = execute(sw.ray, sw.runs, sw.todo, sw.ns, sw.t0, beat)
    except KeyboardInterrupt:
        return True
    finally:
        if sw.started:
            with contextlib.suppress(Exception):
                sw.ray.shutdown()
    return False


def _drive(sw):
    """Announce, train and write the tables, figure and sweep.json; returns (rows, drew, interrupted)."""
    ns, out = sw.ns, sw.out
    n_read = len(sw.runs) - len(sw.todo)
    n_resume = sum(r.state == "resume" for r in sw.todo)
    out.mkdir(parents=True, exist_ok=True)
    placement.read(sw.runs)
    _announce(sw, n_read, n_resume)
    extra = {"started": time.strftime(invocations.STAMP, time.localtime(sw.t0)),
             "read": n_read, "resumed": n_resume, "started_fresh": len(sw.todo) - n_resume}
    write_json(out / "sweep.json", sw.sweep_json(dict(extra, status="running" if sw.todo else "finished")))
    interrupted = _train(sw, extra)
    placement.read(sw.runs)
    if sw.progress is not None:
        extra.update(lost_nodes=sw.progress.lost, retried=[r.label for r in sw.progress.retried([])])
    rows = report.aggregate(sw.runs)
    engine = (f"Engine: Ray {sw.cluster.get('ray_version') or _ray_version()}, "
              f"{'local instance' if not ns.address else 'cluster ' + ns.address}; "
              f"{ns.cpus_per_run} CPU and {ns.gpus_per_run:g} GPU per run; "
              f"{time.strftime('%Y-%m-%d %H:%M')}.")
    cells = classes.aggregate(rows)                       # per-class curves across seeds
    report.write_csv(out / "results.csv", rows)
    classes.write_csvs(out, cells)
    report.write_md(out / "results.md", rows, sw.runs, _command(sw.argv), engine, more=classes.md_lines(cells))
    drew = report.write_curves(out / "curves.png", rows)
    if drew:
        classes.write_figure(out / "classes.png", cells)  # when some run has per_class.csv
    extra.update(finished=time.strftime(invocations.STAMP), wall_seconds=round(time.time() - sw.t0, 1),
                 status="interrupted" if interrupted else "finished", curves=bool(drew))
    sw.doc = sw.sweep_json(extra)
    write_json(out / "sweep.json", sw.doc)
    return rows, drew, interrupted


def _conclude(sw, rows, drew, interrupted):
    """Print the table and the files written; return the exit status."""
    out, runs = sw.out, sw.runs
    print("\n" + report.table_text(rows), flush=True)
    for line in report.failure_lines(runs):
        print("  " + line, flush=True)
    figures = [f for f in ("curves.png", "classes.png") if drew and (out / f).is_file()]
    print(f"\nwrote {out / 'results.csv'}, {out / 'results.md'}, {out / 'per_class.csv'}, {out / 'staircase.csv'}"
          + ("".join(f", {out / f}" for f in figures) if drew
             else " (curves.png needs matplotlib: pip install matplotlib)")
          + f", {out / 'sweep.json'}", flush=True)
    print(_wall_line(sw.doc), flush=True)
    if interrupted:
        return _fail(130, "interrupted; rerun the same command to continue (finished runs are read, "
                          "the others resume from their checkpoints)")
    bad = [r for r in runs if r.state != "done"]
    if bad:
        return _fail(1, f"{len(bad)} of {len(runs)} runs have no result (see {out / 'results.md'}); "
                        "rerun the same command after fixing the cause")
    return 0


def _wall_line(doc):
    """wall time 2 h 25 min[, 3 h 58 min over 3 invocations of this sweep]"""
    line = f"wall time {invocations.duration_text(doc['wall_seconds'])}"
    if doc["timed_invocations"] > 1:
        line += (f" (this invocation); {invocations.duration_text(doc['total_wall_seconds'])} over "
                 f"{doc['timed_invocations']} invocations of this sweep")
    return line


def main(argv=None, prog=PROG):
    """The sweep command; returns the exit status (0 all runs finished, 1 a run failed or the
    cluster is unreachable, 2 bad input, 130 interrupted). prog: the command's name in its
    usage and error hints (sweep.json records the python -m form, which needs no PATH)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    try:
        try:
            ns, configs, overrides = _parse(argv, prog)
        except SystemExit as e:              # --help
            return e.code if isinstance(e.code, int) else 0
        sw = _Sweep(ns, argv, configs, overrides, t0)
        _plan(sw)
    except (SweepError, ConfigError) as e:
        return _fail(2, e)
    except Unreachable as e:
        return _fail(1, e)
    try:
        rows, drew, interrupted = _drive(sw)
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        return _fail(1, f"cannot read or write{where}: {e.strerror or e}")
    return _conclude(sw, rows, drew, interrupted)
