"""The sweep on a real local Ray instance (no mocks): a 2-cell × 2-seed sweep of tiny runs,
bit-for-bit equality with a plain run.py (at the same thread count), a rerun that trains nothing, a worker killed
mid-run that ends resumed from its checkpoint with the uninterrupted result, a driver
interrupted by Ctrl-C whose run stops at a checkpoint and ends with the same result,
a data error reported and not retried, and an unreachable cluster. Skipped without Ray."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[sweep]); the sweep's Ray tests skip")

from brainprop_np.run import sweep  # noqa: E402
from brainprop_np.run.sweep import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DENSE = str(ROOT / "configs" / "mnist_dense.yaml")


def _tiny(empty, units=32, limit_train=500, epochs=1):
    """Overrides for a tiny run on the bundled MNIST sample, reached through the fallback (no
    data folder is named and the cache of the local Ray instance's HOME is empty, no download),
    so that the table must say so."""
    return [f"model=[{{type: flatten}}, {{type: dense, units: {units}}}, {{type: relu}}]",
            "data.download=false", f"data.limit_train={limit_train}",
            "data.limit_test=200", f"train.epochs={epochs}", "device=cpu"]


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def _the_workers_home(own_home, ray_home, monkeypatch):
    """Plain runs compared with the sweep's see the workers' HOME (the fallback note names its cache)."""
    monkeypatch.setenv("HOME", str(ray_home))


@pytest.fixture(scope="module")
def local_ray(ray_home):
    """A local Ray instance whose workers see an empty HOME and no $BRAINPROP_DATA (they inherit
    the environment it starts with), so MNIST cannot be found and the sample fallback applies."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HOME", str(ray_home))
    mp.delenv("BRAINPROP_DATA", raising=False)
    mp.delenv("BRAINPROP_CACHE", raising=False)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
    mp.undo()


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    return tmp_path_factory.mktemp("no_mnist_here")


def _plain_run(overrides, out):
    """A plain run.py of the same config, with the thread counts of a sweep run (--cpus-per-run 1):
    OpenBLAS's results depend on its thread count, so equality is at equal thread counts."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", BRAINPROP_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), DENSE, *overrides, "--out", str(out), "-q"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads((Path(out) / "summary.json").read_text())


def _history(run_dir):
    rows = report.read_history(run_dir)
    for r in rows:
        r.pop("epoch_seconds")
        for k, v in r.items():              # EBP's delta columns are NaN: compare them as text
            if isinstance(v, float) and v != v:
                r[k] = "nan"
    return rows


def _weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _same_run(a, b):
    """Two run folders hold the same result, bit for bit (epoch_seconds aside)."""
    assert _history(a) == _history(b)
    wa, wb = _weights(Path(a) / "weights_best.npz"), _weights(Path(b) / "weights_best.npz")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k
    sa, sb = (json.loads((Path(d) / "summary.json").read_text()) for d in (a, b))
    for k in ("best_val_acc", "best_epoch", "epochs_run", "stop_reason", "dataset"):
        assert sa[k] == sb[k], k


def test_grid_sweep_table_equality_and_rerun(local_ray, tmp_path, empty, capsys):
    out = tmp_path / "sweep"
    argv = [DENSE, "--seeds", "1-2", "--grid", "algorithm=brainprop,ebp", *_tiny(empty), "--out", str(out)]
    assert sweep.main(argv) == 0
    printed = capsys.readouterr().out
    dirs = sorted(p.parent for p in out.glob("mnist_dense/*/seed*/summary.json"))
    assert [str(d.relative_to(out)) for d in dirs] == [
        "mnist_dense/algorithm=brainprop/seed1", "mnist_dense/algorithm=brainprop/seed2",
        "mnist_dense/algorithm=ebp/seed1", "mnist_dense/algorithm=ebp/seed2"]
    summaries = {str(d.relative_to(out)): json.loads((d / "summary.json").read_text()) for d in dirs}
    assert all(s["stop_reason"] == "max_epochs" and s["dataset"]["fallback"] for s in summaries.values())

    rows = list(csv.DictReader(open(out / "results.csv")))
    assert list(rows[0]) == list(report.CSV_COLUMNS) and len(rows) == 2
    for row in rows:
        accs = [summaries[f"mnist_dense/{row['cell']}/seed{k}"]["best_val_acc"] for k in (1, 2)]
        assert row["config"] == "mnist_dense" and row["n"] == "2" and row["failed"] == "0"
        assert float(row["best_val_acc_mean"]) == pytest.approx(np.mean(accs), abs=1e-12)
        assert float(row["best_val_acc_std"]) == pytest.approx(np.std(accs, ddof=1), abs=1e-12)
        assert row["best_epoch_mean"] == "1.0" and row["data"] == "mnist_sample (fallback)"
    md = (out / "results.md").read_text()
    assert "| mnist_dense | algorithm=ebp | 2 |" in md and "NOT full MNIST" in md
    per_class = list(csv.DictReader(open(out / "per_class.csv")))     # the runs' per_class.csv, across seeds
    assert {(r["cell"], r["n"]) for r in per_class} == {("algorithm=brainprop", "2"), ("algorithm=ebp", "2")}
    assert "## When each class is learned" in md
    assert "mnist_dense" in printed and "algorithm=ebp" in printed and "[4/4 done" in printed
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["engine"] == "ray" and doc["ray_version"] == ray.__version__
    assert doc["resources"]["CPU"] == 2 and doc["grid"] == {"algorithm": ["brainprop", "ebp"]}
    assert doc["command"].startswith("python -m brainprop_np.sweep ")
    try:
        import matplotlib  # noqa: F401
        assert (out / "curves.png").stat().st_size > 0
    except ImportError:
        assert not (out / "curves.png").exists()
    assert not list(out.rglob("*.tmp"))

    # one run equals a direct bp.train of the same config, overrides and seed, bit for bit
    direct = _plain_run([*_tiny(empty), "algorithm=ebp", "seed=2"], tmp_path / "direct")
    assert direct["stop_reason"] == "max_epochs"
    _same_run(out / "mnist_dense/algorithm=ebp/seed2", tmp_path / "direct")

    # a rerun trains nothing
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("seed*/*")}
    assert sweep.main(argv) == 0
    assert "all 4 runs are finished (read, not trained)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("seed*/*")} == mtimes


def _kill_mid_run(run_dir, driver, timeout=300):
    """SIGKILL the run's worker process once the run has a checkpoint and still goes on: the
    worker is stopped first and summary.json read, so that a run that has already ended fails
    the test instead of being killed after the fact."""
    deadline, log = time.monotonic() + timeout, run_dir / "train.log"
    while time.monotonic() < deadline and driver.is_alive():
        found = log.is_file() and re.search(r"attempt 1: pid (\d+)", log.read_text())
        if found and (run_dir / "checkpoint.npz").is_file():
            pid = int(found.group(1))
            os.kill(pid, signal.SIGSTOP)
            summary = run_dir / "summary.json"       # written after the first checkpoint
            state = json.loads(summary.read_text())["stop_reason"] if summary.is_file() else "running"
            if state != "running":
                os.kill(pid, signal.SIGCONT)
                pytest.fail(f"the run ended ({state}) before its worker could be killed")
            os.kill(pid, signal.SIGKILL)              # the worker process dies in the middle of the run
            return pid
        time.sleep(0.005)
    pytest.fail(f"no checkpoint of a running run within {timeout} s, or the sweep ended first")


def test_killed_worker_resumes_from_its_checkpoint(local_ray, tmp_path, empty, capsys):
    out = tmp_path / "sweep"
    ov = _tiny(empty, units=64, limit_train=2000, epochs=20)
    argv = [DENSE, "--seeds", "3", *ov, "--out", str(out), "--max-retries", "2"]
    rc = []
    driver = threading.Thread(target=lambda: rc.append(sweep.main(argv)), daemon=True)
    driver.start()
    run_dir = out / "mnist_dense" / "default" / "seed3"
    _kill_mid_run(run_dir, driver)
    driver.join(300)
    assert rc == [0], capsys.readouterr()
    log = (run_dir / "train.log").read_text()
    assert "--- sweep attempt 2:" in log and "resuming from checkpoint.npz after epoch" in log, log
    assert "attempt 2" in capsys.readouterr().out
    direct = _plain_run([*ov, "seed=3"], tmp_path / "direct")
    assert direct["epochs_run"] == 20
    _same_run(run_dir, tmp_path / "direct")


def test_interrupted_sweep_stops_its_run_gracefully_and_resumes(local_ray, tmp_path, empty, capsys):
    """Ctrl-C to the driver (here interrupt_main from a watcher thread) reaches the running run's
    stop flag: it finishes its batch and writes its checkpoint (inside an epoch or at its end,
    as the interrupt falls), the driver exits 130, and the same command ends the run with the
    uninterrupted result."""
    import _thread
    out = tmp_path / "sweep"
    ov = _tiny(empty, units=256, limit_train=5000, epochs=60) + ["train.batch_size=16"]
    argv = [DENSE, "--seeds", "4", *ov, "--out", str(out)]
    run_dir = out / "mnist_dense" / "default" / "seed4"

    returned = threading.Event()

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not returned.is_set():
            if (run_dir / "checkpoint.npz").is_file():
                _thread.interrupt_main()              # epoch 1 is written: 59 epochs to go
                return
            time.sleep(0.005)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        rc = sweep.main(argv)
    finally:
        returned.set()                                # no Ctrl-C after the sweep has returned
    watcher.join()
    assert rc == 130
    assert "interrupted: stopping the runs" in capsys.readouterr().err
    assert json.loads((run_dir / "summary.json").read_text())["stop_reason"] == "interrupted"
    log = (run_dir / "train.log").read_text()
    assert "Ctrl-C: finishing the current batch, then writing the checkpoint" in log, log
    assert sweep.main(argv) == 0
    assert re.search(r"attempt 2: .* resuming from checkpoint.npz after epoch \d+", (run_dir / "train.log").read_text())
    assert _plain_run([*ov, "seed=4"], tmp_path / "direct")["epochs_run"] == 60
    _same_run(run_dir, tmp_path / "direct")

def test_data_error_is_reported_not_retried(local_ray, tmp_path, empty, capsys):
    out = tmp_path / "sweep"
    argv = [DENSE, "--seeds", "1", *_tiny(empty), f"data.root={empty}", "data.name=fashion_mnist", "data.fallback=none",
            "--out", str(out)]
    assert sweep.main(argv) == 1
    cap = capsys.readouterr()
    assert "FAILED (data error, not retried)" in cap.out
    assert cap.err.strip().splitlines()[-1].startswith("error: 1 of 1 runs have no result")
    row = next(csv.DictReader(open(out / "results.csv")))
    assert row["n"] == "0" and row["failed"] == "1" and row["best_val_acc_mean"] == ""
    assert "fashion_mnist" in (out / "results.md").read_text()
    log = (out / "mnist_dense/default/seed1/train.log").read_text()
    assert log.count("--- sweep attempt ") == 1


def test_unreachable_cluster_exits_1(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert sweep.main([DENSE, "--seeds", "1", "--address", "127.0.0.1:1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach the Ray cluster at 127.0.0.1:1")
    assert not out.exists()
