"""brainprop_np.sweep without Ray: argument checks, bad input (exit 2, nothing written), the
table's arithmetic, and scripts/seeds.py forwarding to the sweep. The sweep on a real Ray
instance is tests/test_sweep_ray.py."""
import csv
import time
import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainprop_np.run import sweep
from brainprop_np.run.sweep import plan, report

ROOT = Path(__file__).resolve().parents[1]
DENSE = str(ROOT / "configs" / "mnist_dense.yaml")


def test_parse_seeds():
    assert sweep.parse_seeds("1-3") == [1, 2, 3]
    assert sweep.parse_seeds("1,4,7-8") == [1, 4, 7, 8]
    for bad in ("x", "2-1", "1-", "", "1,1", "-1"):
        with pytest.raises(sweep.SweepError, match="--seeds"):
            sweep.parse_seeds(bad)


def test_grid_cells():
    grid = sweep.parse_grid(["algorithm=brainprop,ebp", "brainprop.epsilon=0.02,0.05"])
    names = [c for c, _ in plan.cells(grid)]
    assert names == ["algorithm=brainprop,brainprop.epsilon=0.02", "algorithm=brainprop,brainprop.epsilon=0.05",
                     "algorithm=ebp,brainprop.epsilon=0.02", "algorithm=ebp,brainprop.epsilon=0.05"]
    assert plan.cells([]) == [("default", [])]
    for bad in (["algorithm"], ["algorithm="], ["algorithm=a,,b"], ["seed=1,2"], ["a=1", "a=2"], ["a=1,1"]):
        with pytest.raises(sweep.SweepError, match="--grid"):
            sweep.parse_grid(bad)


@pytest.mark.parametrize("args, words", [
    ([DENSE, "--grid", "algorithmz=brainprop,ebp"], ["--grid algorithmz=brainprop", "unknown key algorithmz"]),
    ([DENSE, "--grid", "train.epochz=1,2"], ["unknown key train.epochz"]),
    ([DENSE, "--grid", "algorithm=brainprop,sgd"], ["algorithm='sgd'", "brainprop, ebp"]),
    ([DENSE, "train.epochz=1"], ["unknown key train.epochz"]),
    ([DENSE, "seed=3"], ["--seeds chooses"]),
    ([DENSE, "--grid", "algorithm=ebp,brainprop", "algorithm=ebp"], ["both as an override and in --grid"]),
    ([DENSE, "--seeds", "3-1"], ["--seeds '3-1'"]),
    ([DENSE, "--cpus-per-run", "0"], ["--cpus-per-run 0"]),
    ([DENSE, "--gpus-per-run", "1.5"], ["--gpus-per-run 1.5"]),
    ([DENSE, "--bogus"], ["unrecognized arguments: --bogus"]),
    (["train.epochs=1"], ["no config given"]),
    (["missing.yaml"], ["missing.yaml", "cannot be read"]),
    ([DENSE, DENSE], ["same name 'mnist_dense'"]),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "sweep"
    assert sweep.main([*args, "--seeds", "1-2", "--out", str(out)] if "--seeds" not in args
                      else [*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for w in words:
        assert w in err[0]
    assert not out.exists()


def test_ray_not_installed_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)        # import ray → ImportError
    out = tmp_path / "sweep"
    assert sweep.main([DENSE, "--seeds", "1", "train.epochs=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Ray is not installed" in err[0] and "[sweep]" in err[0]
    assert not out.exists()


def test_a_run_folder_made_with_other_settings_is_refused(tmp_path, capsys):
    from brainprop_np.run.config import dump, load_config
    d = tmp_path / "mnist_dense" / "default" / "seed1"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(dump(load_config(DENSE, ["train.lr=0.05", "seed=1"])))
    assert sweep.main([DENSE, "--seeds", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "other settings (train.lr: 0.05 there, 0.1 now)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_dense"]


def _finished(tmp_path, cell, seed, acc, epoch, fallback=False, epochs=500):
    from brainprop_np.run.config import dump, load_config
    d = tmp_path / "mnist_dense" / cell / f"seed{seed}"
    d.mkdir(parents=True)
    ov = ([] if cell == "default" else [cell]) + [f"seed={seed}", f"train.epochs={epochs}"]
    (d / "config.yaml").write_text(dump(load_config(DENSE, ov)))
    (d / "summary.json").write_text(json.dumps({
        "best_val_acc": acc, "best_epoch": epoch, "mean_epoch_seconds": 3.0, "stop_reason": "early_stopping",
        "epochs_run": epoch + 45,
        "dataset": {"used": "mnist_sample" if fallback else "mnist", "fallback": fallback}}))
    (d / "history.csv").write_text("epoch,lr,train_loss,train_acc,val_acc,epoch_seconds\n1,0.1,1.0,0.5,0.9,3.0\n")


def test_finished_runs_are_read_without_ray_and_tabled(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)      # nothing to train: Ray is not needed
    _finished(tmp_path, "default", 1, 0.99, 60)
    _finished(tmp_path, "default", 2, 0.98, 70)
    assert sweep.main([DENSE, "--seeds", "1-2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all 2 runs are finished" in out and "98.50 (0.71)" in out and "65 (7)" in out
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert list(rows[0]) == list(report.CSV_COLUMNS)
    assert rows[0]["config"] == "mnist_dense" and rows[0]["cell"] == "default" and rows[0]["n"] == "2"
    assert float(rows[0]["best_val_acc_mean"]) == pytest.approx(0.985)
    assert float(rows[0]["best_val_acc_std"]) == pytest.approx(0.0070710678)
    assert float(rows[0]["best_epoch_mean"]) == 65.0 and rows[0]["failed"] == "0" and rows[0]["data"] == "mnist"
    md = (tmp_path / "results.md").read_text()
    assert "| mnist_dense | default | 2 | 98.50 (0.71) | 65 (7) | 3.0 | 0 | mnist | 98.68 (0.07) |" in md
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["engine"] == "ray" and doc["runs"]["finished"] == 2 and doc["seeds"] == [1, 2]
    assert [e["status"] for e in doc["invocations"]] == ["finished"] and doc["timed_invocations"] == 1
    assert doc["total_wall_seconds"] == doc["wall_seconds"] == doc["invocations"][0]["wall_seconds"] >= 0
    assert "wall time " in out and "invocations of this sweep" not in out
    assert sweep.main([DENSE, "--seeds", "1-2", "--out", str(tmp_path)]) == 0      # a second invocation
    doc = json.loads((tmp_path / "sweep.json").read_text())
    walls = [e["wall_seconds"] for e in doc["invocations"]]
    assert [e["status"] for e in doc["invocations"]] == ["finished"] * 2 and doc["timed_invocations"] == 2
    assert doc["total_wall_seconds"] == pytest.approx(sum(walls))
    assert "over 2 invocations of this sweep" in capsys.readouterr().out


def test_the_progress_line_counts_runs_and_gives_the_invocations_time(tmp_path):
    from types import SimpleNamespace
    from brainprop_np.run.sweep.cli import _Progress
    runs = [SimpleNamespace(state=s, run_dir=tmp_path / str(i), attempts0=None) for i, s in
            enumerate(["done", "failed", "fresh", "fresh"])]
    line = _Progress(runs, time.time() - 3725).line([], queued=2)
    assert line == "[1/4 done, 0 running, 2 waiting, 1 failed; 1 h 02 min]", line


def test_invocations_one_entry_each_and_the_wall_time_summed_over_them():
    from brainprop_np.run.sweep import invocations as inv
    legacy = {"started": "2026-12-07 08:16:43", "finished": "2026-12-07 08:20:52", "status": "interrupted"}
    running = {"started": "2026-12-07 08:21:06", "status": "running"}
    entries = inv.record([legacy], running)
    assert entries == [legacy, running]
    ended = dict(running, finished="2026-12-07 10:40:00", wall_seconds=8334.0, status="interrupted")
    entries = inv.record(entries, ended)
    assert entries == [legacy, ended]                       # replaced its own running entry
    other = {"started": "2026-12-07 11:00:00", "status": "running"}
    assert inv.record(entries, other)[-1] is other and len(inv.record(entries, other)) == 3
    assert inv.wall_seconds(legacy) == 249.0 and inv.wall_seconds(running) is None
    assert inv.total(entries + [other]) == (249.0 + 8334.0, 2, 1)
    seen = dict(other, seen_seconds=600.0)                  # its last progress line; then killed
    assert inv.record(entries + [seen], dict(seen, seen_seconds=630.0))[-1]["seen_seconds"] == 630.0
    later = {"started": "2026-12-07 12:00:00", "finished": "2026-12-07 12:10:00", "wall_seconds": 600.0}
    assert inv.record(entries + [seen], later)[-2:] == [seen, later]     # a killed driver's entry stays
    assert inv.total(entries + [seen, later]) == (249.0 + 8334.0 + 600.0 + 600.0, 4, 0)
    start = {"started": legacy["started"], "status": "running"}     # older sweeps appended the end after it
    assert inv.total([start, legacy]) == (249.0, 1, 0)
    assert inv.duration_text(59.97) == "1 min 00 s"
    assert len(inv.record([{"started": str(i), "status": "finished"} for i in range(60)], other)) == inv.KEEP
    assert [inv.duration_text(x) for x in (12.34, 425, 13955)] == ["12.3 s", "7 min 05 s", "3 h 52 min"]


def test_each_progress_line_records_the_invocations_time_so_far(tmp_path, monkeypatch, capsys):
    """While runs are in flight, sweep.json's entry of the invocation holds its time so far
    (seen_seconds), so a driver killed outright still leaves its time; its end replaces it."""
    import types
    from brainprop_np.run.sweep import cli
    seen = []

    def execute(ray, runs, todo, ns, t0, beat):
        beat()
        seen.append(json.loads((tmp_path / "sweep.json").read_text()))
        return types.SimpleNamespace(lost=[], retried=lambda inflight: [])
    monkeypatch.setattr(cli, "connect", lambda address: (types.SimpleNamespace(__version__="2.x"), False))
    monkeypatch.setattr(cli, "_resources", lambda ray: ({"CPU": 2.0}, 1))
    monkeypatch.setattr(cli, "execute", execute)
    assert sweep.main([DENSE, "--seeds", "1", "--out", str(tmp_path)]) == 1        # the run never trained
    (entry,) = seen[0]["invocations"]
    assert entry["status"] == "running" and "finished" not in entry and entry["seen_seconds"] >= 0
    assert seen[0]["total_wall_seconds"] == entry["seen_seconds"] and seen[0]["timed_invocations"] == 1
    (end,) = json.loads((tmp_path / "sweep.json").read_text())["invocations"]
    assert end["status"] == "finished" and end["wall_seconds"] >= entry["seen_seconds"] and "seen_seconds" not in end
    assert "1 of 1 runs have no result" in capsys.readouterr().err
    def full_disk(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cli, "write_json", full_disk)
    sw = types.SimpleNamespace(todo=["a run"], ray=None, runs=[], ns=None, t0=0.0, started=False, out=tmp_path,
                               sweep_json=lambda extra: {})
    monkeypatch.setattr(cli, "execute", lambda *a: a[-1]() or types.SimpleNamespace(lost=[]))
    assert cli._train(sw, {}) is False              # the progress record failed; the runs went on
    assert "warning: cannot write" in capsys.readouterr().err


def test_the_table_says_when_runs_fell_back_to_the_mnist_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    _finished(tmp_path, "default", 1, 0.95, 10, fallback=True)
    _finished(tmp_path, "default", 2, 0.96, 12, fallback=False)
    assert sweep.main([DENSE, "--seeds", "1-2", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert rows[0]["data"] == "mnist_sample (fallback) in 1 of 2; mnist in 1 of 2"
    md = (tmp_path / "results.md").read_text()
    assert "NOT full MNIST" in md and "MNIST_SAMPLE (FALLBACK)" in md
    assert "NOT full MNIST" in capsys.readouterr().out


def _per_class(run_dir, rows):
    """A per_class.csv of two classes: rows of (acc_0, acc_1) per epoch."""
    (run_dir / "per_class.csv").write_text("epoch,acc_0,acc_1\n" + "".join(
        f"{e + 1},{a!r},{b!r}\n" for e, (a, b) in enumerate(rows)))


def test_the_sweep_aggregates_per_class_curves_and_the_staircase(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    _finished(tmp_path, "default", 1, 0.99, 60)
    _finished(tmp_path, "default", 2, 0.98, 70)
    cell = tmp_path / "mnist_dense" / "default"
    _per_class(cell / "seed1", [(0.6, 0.1), (0.7, 0.3), (0.8, 0.55)])
    _per_class(cell / "seed2", [(0.2, 0.1), (0.7, 0.2)])          # stopped earlier; class 1 never at 0.5
    assert sweep.main([DENSE, "--seeds", "1-2", "--out", str(tmp_path)]) == 0
    assert "per_class.csv" in capsys.readouterr().out
    curves = list(csv.DictReader(open(tmp_path / "per_class.csv")))
    assert [(r["class"], r["epoch"], r["n"]) for r in curves] == [
        ("0", "1", "2"), ("0", "2", "2"), ("0", "3", "1"), ("1", "1", "2"), ("1", "2", "2"), ("1", "3", "1")]
    assert float(curves[0]["acc_mean"]) == pytest.approx(0.4)
    assert float(curves[0]["acc_std"]) == pytest.approx(0.2828427)
    assert float(curves[2]["acc_mean"]) == 0.8 and float(curves[2]["acc_std"]) == 0.0
    stairs = list(csv.DictReader(open(tmp_path / "staircase.csv")))
    assert [(r["class"], r["n"], r["passed"], r["threshold"]) for r in stairs] == [
        ("0", "2", "2", "0.5"), ("1", "2", "1", "0.5")]
    assert float(stairs[0]["first_epoch_mean"]) == 1.5
    assert float(stairs[0]["first_epoch_std"]) == pytest.approx(0.7071068)
    assert stairs[1]["first_epoch_mean"] == "3.0" and stairs[1]["first_epoch_std"] == ""
    md = (tmp_path / "results.md").read_text()
    assert "| mnist_dense | default | 2 | 98.50 (0.71) | 65 (7) | 3.0 | 0 | mnist | 98.68 (0.07) |" in md
    assert md.index("## When each class is learned") > md.index("| mnist_dense | default |")
    assert "| mnist_dense | default | 2 | 2 (1) | 3 (-) (1/2) |" in md
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "classes.png").stat().st_size > 0
    except ImportError:
        assert not (tmp_path / "classes.png").exists()


def test_a_larger_train_epochs_resumes_finished_runs(tmp_path):
    _finished(tmp_path, "default", 1, 0.99, 60)
    runs = plan.build([DENSE], [1], [], ["train.epochs=600"], tmp_path)
    assert runs[0].state == "fresh"           # no checkpoint.npz here: started again
    (runs[0].run_dir / "checkpoint.npz").write_bytes(b"")
    runs = plan.build([DENSE], [1], [], ["train.epochs=600"], tmp_path)
    assert runs[0].state == "resume" and runs[0].resume_overrides == ["train.epochs=600"]
    assert plan.build([DENSE], [1], [], ["device=cpu"], tmp_path)[0].state == "done"


def test_an_interrupted_run_resumes_with_the_sweeps_device_and_kernels(tmp_path):
    """A run folder that a node without numba cannot resume on the kernels it ran on: the
    sweep's kernels=numpy (the setting the resume's error names) reaches that resume."""
    _finished(tmp_path, "default", 1, 0.99, 60)
    d = tmp_path / "mnist_dense" / "default" / "seed1"
    (d / "summary.json").write_text(json.dumps({"stop_reason": "interrupted", "epochs_run": 3}))
    (d / "checkpoint.npz").write_bytes(b"")
    runs = plan.build([DENSE], [1], [], ["train.epochs=500", "kernels=numpy", "device=cpu"], tmp_path)
    assert runs[0].state == "resume" and runs[0].resume_overrides == ['device="cpu"', 'kernels="numpy"']


def test_seeds_script_is_a_thin_wrapper_of_the_sweep():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "seeds.py"), DENSE, "--seeds", "2-1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --seeds '2-1'")


def test_sigterm_stops_the_driver_as_ctrl_c_does(monkeypatch):
    """A batch scheduler's SIGTERM to the driver takes Ctrl-C's path (runs stopped, tables
    written, exit 130): _train reports it interrupted, and SIGTERM's handler is restored."""
    import os
    import signal
    import types
    from brainprop_np.run.sweep import cli

    def execute(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)                                  # the signal interrupts this
        raise AssertionError("SIGTERM did not interrupt the driver")
    monkeypatch.setattr(cli, "execute", execute)
    before = signal.getsignal(signal.SIGTERM)
    sw = types.SimpleNamespace(todo=["a run"], ray=None, runs=[], ns=None, t0=0.0, started=False)
    assert cli._train(sw, {}) is True
    assert signal.getsignal(signal.SIGTERM) == before


class _RayLosingANodeLate:
    """Enough of Ray for cli.execute: one task that finishes at once; ray.nodes() reports the
    second node dead only from its third call on (after the check that follows the result)."""
    exceptions = type("exceptions", (), {"RayError": RuntimeError})

    def __init__(self):
        self.calls = 0

    def remote(self, fn):
        return self

    def options(self, **kw):
        return self

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return {"status": "done", "attempt": 1, "summary": {"best_val_acc": 0.5, "best_epoch": 1,
                                                            "stop_reason": "max_epochs", "epochs_run": 1}}

    def nodes(self):
        self.calls += 1
        return [{"NodeID": "a" * 16, "NodeManagerAddress": "10.0.0.1", "Alive": True},
                {"NodeID": "b" * 16, "NodeManagerAddress": "10.0.0.2", "Alive": self.calls < 3}]


def test_a_node_marked_dead_after_the_last_result_is_still_reported(tmp_path, capsys):
    """Ray can mark a node dead only after the runs it lost were retried and finished elsewhere:
    the driver checks the nodes once more when the last run is in and prints the loss."""
    import types
    from brainprop_np.run.sweep import cli
    runs = plan.build([DENSE], [1], [], ["device=cpu"], tmp_path)
    ns = types.SimpleNamespace(cpus_per_run=1, gpus_per_run=0, max_retries=3, max_concurrent=None)
    beats = []
    progress = cli.execute(_RayLosingANodeLate(), runs, list(runs), ns, time.time(), lambda: beats.append(1))
    printed = capsys.readouterr().out.strip().splitlines()
    assert runs[0].state == "done" and progress.lost == ["10.0.0.2"] and beats == [1]    # with the result's line
    assert "lost node" not in printed[0] and "lost node(s) 10.0.0.2" in printed[-1], printed
