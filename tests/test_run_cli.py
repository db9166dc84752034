"""run.py as a subprocess: exit statuses and one-line messages, the run folder's files,
--load, the MNIST-sample fallback, and Ctrl-C (SIGINT) with --resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from shared_data import mnist_root

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "run.py")]
TINY = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
        {"type": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.3},
        {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"}]


def _write_config(tmp_path, epochs=2, limit_train=384, **extra):
    root = mnist_root()
    data = ({"name": "mnist", "root": root, "download": False, "fallback": "none"} if root
            else {"name": "mnist_sample"})
    data.update(limit_train=limit_train, limit_test=300)
    cfg = {"name": "cli", "device": "cpu", "seed": 1, "model": TINY, "data": data,
           "train": {"epochs": epochs, "batch_size": 64, "eval_batch_size": 150}}
    cfg.update(extra)
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(RUN + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def _one_line_error(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["{cfg}", "train.epoch=2"], ["unknown key train.epoch", "epochs"]),
    (["{cfg}", "train.epochs=abc"], ["train.epochs='abc'", "integer >= 1"]),
    (["{cfg}", "algorithm=sgd"], ["algorithm='sgd'", "brainprop, ebp"]),
    (["{cfg}", "epochs"], ["'epochs'", "key=value"]),
    (["{tmp}/missing.yaml"], ["missing.yaml", "cannot be read"]),
    ([], ["no config given"]),
    (["--resume", "{tmp}", "{cfg}"], ["not allowed with --resume"]),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path, args, words):
    cfg = _write_config(tmp_path)
    proc = _run(*[a.format(cfg=cfg, tmp=tmp_path) for a in args])
    line = _one_line_error(proc, 2)
    for w in words:
        assert w in line, (w, line)


def test_bad_model_for_the_data_exits_2(tmp_path):
    cfg = _write_config(tmp_path)
    proc = _run(cfg, "model=[{type: conv2d, filters: 2, kernel: 41, padding: valid}]")
    line = _one_line_error(proc, 2)
    assert "model" in line and "41x41" in line and "model: model" not in line, line
    proc = _run(cfg, "model=[{type: conv2d, filters: 2, kernel: 40, padding: valid}]")
    line = _one_line_error(proc, 2)
    assert line.startswith("error: model layer 0 (conv2d): kernel=40 is not allowed"), line


def test_missing_data_without_fallback_exits_1(tmp_path):
    cfg = _write_config(tmp_path)
    proc = _run(cfg, "data.name=mnist", f"data.root={tmp_path / 'empty'}", "data.download=false",
                "data.fallback=none")
    line = _one_line_error(proc, 1)
    assert "train-images-idx3-ubyte.gz" in line and str(tmp_path / "empty") in line


def test_diverging_run_prints_one_line_and_no_numpy_warnings(tmp_path):
    cfg = _write_config(tmp_path, epochs=2, limit_train=512)
    proc = _run(cfg, "train.lr=1e8", "train.batch_size=128", "--no-progress", "--out", tmp_path / "nan")
    line = _one_line_error(proc, 1)
    assert "training loss became nan in epoch 1" in line
    from brainprop_np.run.warmup import COMPILING               # said on a cold kernel cache
    said = [l for l in proc.stderr.splitlines() if l.strip() and l != COMPILING]
    assert said == [line], proc.stderr                          # no RuntimeWarning before it
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["stop_reason"] == "non_finite_loss"


def test_resume_of_a_finished_run_says_so_and_refuses_fewer_epochs(tmp_path):
    cfg = _write_config(tmp_path, epochs=2, limit_train=128)
    out = tmp_path / "fin"
    assert _run(cfg, "--out", out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = _run("--resume", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip() == (f"{out}: run already finished after 2 epochs (max_epochs); give "
                                   "train.epochs=M with M > 2 to extend it"), proc.stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before     # nothing rewritten
    proc = _run("--resume", out, "-q")
    assert proc.returncode == 0 and "(max_epochs)" in proc.stdout, proc.stderr
    line = _one_line_error(_run("--resume", out, "train.epochs=1"), 2)
    assert "train.epochs=1 is not allowed" in line and "2 epochs already" in line, line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_gpu_without_gpu_exits_1(tmp_path):
    from brainprop_np.backend import BackendError, get_backend
    try:
        get_backend("gpu")
        pytest.skip("a GPU is available here")
    except BackendError:
        pass
    proc = _run(_write_config(tmp_path), "device=gpu")
    assert "device=gpu" in _one_line_error(proc, 1)


def test_fallback_to_the_mnist_sample_is_loud_and_recorded(tmp_path, monkeypatch):
    cfg = _write_config(tmp_path, epochs=1, limit_train=128)
    out = tmp_path / "fb"
    monkeypatch.delenv("BRAINPROP_DATA", raising=False)      # no folder named: the sample may stand in
    monkeypatch.setenv("HOME", str(tmp_path / "home"))       # an empty default data folder
    proc = _run(cfg, "data.name=mnist", "data.root=null", "data.download=false",
                "data.fallback=mnist_sample", "--out", out)
    assert proc.returncode == 0, proc.stderr
    loud = [l for l in proc.stderr.splitlines() if "MNIST SAMPLE" in l]
    assert len(loud) == 1 and len(loud[0]) <= 120
    s = json.loads((out / "summary.json").read_text())
    assert s["dataset"]["used"] == "mnist_sample" and s["dataset"]["fallback"] is True
    assert s["dataset"]["requested"] == "mnist"


def test_end_to_end_run_writes_a_consistent_run_folder_and_load_reproduces_it(tmp_path):
    cfg = _write_config(tmp_path, epochs=2)
    out = tmp_path / "run"
    proc = _run(cfg, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sum(1 for l in proc.stdout.splitlines() if l.startswith("epoch ")) == 2
    for name in ("config.yaml", "history.csv", "summary.json", "weights_best.npz", "checkpoint.npz",
                 "accuracy.png"):
        assert (out / name).is_file(), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 2 and resolved["train"]["lr"] == 0.1
    assert resolved["train"]["patience"] == 45 and resolved["model"] == TINY

    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "train_acc", "val_acc", "epoch_seconds",
                             "mean_delta", "mean_abs_delta", "explore_rate"]
    s = json.loads((out / "summary.json").read_text())
    val = [float(r["val_acc"]) for r in rows]
    assert len(rows) == s["epochs_run"] == 2
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert s["best_val_acc"] == max(val) and val[s["best_epoch"] - 1] == max(val)
    assert s["stop_reason"] == "max_epochs"
    assert s["mean_epoch_seconds"] == pytest.approx(np.mean([float(r["epoch_seconds"]) for r in rows]))
    assert all(0.0 <= float(r["train_acc"]) <= 1.0 and float(r["train_loss"]) > 0 for r in rows)
    assert s["backend"] == "numpy" and s["seed"] == 1 and s["device"] == "cpu" and s["device_name"]
    assert {"python", "numpy", "brainprop_np"} <= set(s["versions"])
    assert s["dataset"]["used"] in ("mnist", "mnist_sample") and s["dataset"]["n_train"] == 384
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with np.load(out / "checkpoint.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert "weights/batch_normalization/moving_mean" in z.files
    assert meta["epoch"] == 2 and meta["batch"] == 0 and len(meta["history"]) == 2
    assert meta["rng"] == {"host": meta["rng"]["host"]} and meta["rng"]["host"]["bit_generator"] == "PCG64"
    assert meta["draws_step"] == 2 * 6       # counter-based draws: only the trial counter (2 epochs of 6 batches)

    proc = _run(cfg, "--load", out / "weights_best.npz")
    assert proc.returncode == 0, proc.stderr
    assert f"test accuracy {s['best_val_acc']:.4f} ({round(s['best_val_acc'] * 300)}/300" in proc.stdout
    proc = _run("--load", out / "weights_best.npz")        # config.yaml beside the weights
    assert proc.returncode == 0 and f"{s['best_val_acc']:.4f}" in proc.stdout, proc.stderr

    proc = _run(cfg, "--out", out)                          # the folder holds a run already
    assert "--resume" in _one_line_error(proc, 2)
    assert "done (max_epochs) after 2 epochs:" in _run(cfg, "--out", tmp_path / "e2").stdout
    proc = _run(cfg, "train.epochs=1", "--out", tmp_path / "e1")
    assert "done (max_epochs) after 1 epoch:" in proc.stdout, proc.stdout
    assert "wait " not in proc.stdout
    assert "  best " in proc.stdout and " @ 1  es 0/45" in proc.stdout
    proc = _run(cfg, "--load", tmp_path / "nope.npz")
    assert "nope.npz" in _one_line_error(proc, 1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_writes_a_resumable_checkpoint(tmp_path, signum):
    """Ctrl-C, or a batch scheduler's SIGTERM: exit 130 with the resume command, then --resume."""
    cfg = _write_config(tmp_path, epochs=200, limit_train=256)
    out = tmp_path / "sig"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(RUN + [str(cfg), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 90
        for line in proc.stdout:
            if line.startswith("epoch ") or time.time() > deadline:
                break
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"python run.py --resume {out}" in stderr
    assert ("Ctrl-C: finishing" if signum == signal.SIGINT else "SIGTERM: finishing") in stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["stop_reason"] == "interrupted"
    done = s["epochs_run"]
    assert 1 <= done < 200
    proc = _run("--resume", out, f"train.epochs={done + 1}")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["stop_reason"] == "max_epochs" and s["epochs_run"] == done + 1
    with open(out / "history.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, done + 2))


@pytest.mark.parametrize("args, words", [
    (["{cfg}", "--bogus"], ["unrecognized arguments: --bogus", "--help"]),
    (["{cfg}", "--explain", "--image", "abc"], ["--image", "'abc'"]),
    (["{cfg}", "--out"], ["--out", "expected one argument"]),
])
def test_bad_options_exit_2_with_one_line_and_no_usage_block(tmp_path, args, words):
    proc = _run(*[a.format(cfg=_write_config(tmp_path)) for a in args])
    line = _one_line_error(proc, 2)
    assert proc.stderr.strip() == line and proc.stdout == ""
    for w in words:
        assert w in line, (w, line)


# ---- run.main in-process: which failure gives which exit status

def _main(monkeypatch, capsys, argv, patches=()):
    """run.main(argv) with patches [(module, attribute, value)]; (exit status, the error line)."""
    import importlib
    import importlib.util
    for module, name, fn in patches:
        monkeypatch.setattr(importlib.import_module(module), name, fn)
    spec = importlib.util.spec_from_file_location("run_cli_under_test", ROOT / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    code = run.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return code, lines[0]


def _raise(exc):
    def fn(*a, **k):
        raise exc
    return fn


def test_value_error_from_training_exits_1(monkeypatch, capsys, tmp_path):
    code, line = _main(monkeypatch, capsys, [_write_config(tmp_path)],
                       [("brainprop_np.run.train", "train", _raise(ValueError("sgd_update: w must be C-contiguous")))])
    assert code == 1 and "sgd_update" in line


@pytest.mark.parametrize("argv", [["{cfg}"], ["{cfg}", "--load", "{tmp}/w.npz"]])
def test_out_of_memory_exits_1_suggesting_smaller_batches(monkeypatch, capsys, tmp_path, argv):
    oom = _raise(MemoryError("Out of memory allocating 1,073,741,824 bytes\n(allocated so far: 0 bytes)."))
    code, line = _main(monkeypatch, capsys, [a.format(cfg=_write_config(tmp_path), tmp=tmp_path) for a in argv],
                       [("brainprop_np.run.train", "train", oom), ("brainprop_np.run.evaluation", "evaluate_weights", oom)])
    assert code == 1
    assert "out of memory" in line and "1,073,741,824 bytes" in line
    assert "train.batch_size" in line and "train.eval_batch_size" in line


def test_explain_image_is_checked_before_explaining(monkeypatch, capsys, tmp_path):
    called = []
    code, line = _main(monkeypatch, capsys, [_write_config(tmp_path), "--explain", "--image", "-1"],
                       [("brainprop_np.teach.explain", "explain_config", lambda *a, **k: called.append(1))])
    assert code == 2 and "--image -1" in line and ">= 0" in line and not called


def test_value_error_from_explain_exits_2(monkeypatch, capsys, tmp_path):
    code, line = _main(monkeypatch, capsys, [_write_config(tmp_path), "--explain", "--image", "99999"],
                       [("brainprop_np.teach.explain", "explain_config",
                         _raise(ValueError("--image 99999 is not allowed; use 0..299")))])
    assert code == 2 and "--image 99999" in line
