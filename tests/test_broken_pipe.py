"""`brainprop train ... | head -1`: standard output closed while the run trains.

The run stops at the end of the epoch whose line could not be written, as after Ctrl-C:
the checkpoint and a summary.json with stop_reason 'interrupted' (never 'running') are
written, one line on stderr says that standard output was closed and how to resume, the
exit status is 1, Python prints no "Exception ignored ... BrokenPipeError" at exit, and
`--resume` finishes the run as if it had not stopped.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from shared_data import mnist_root

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "brainprop_np", "train"]
TINY = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
        {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "relu"}]


def _config(tmp_path, epochs):
    root = mnist_root()
    data = ({"name": "mnist", "root": root, "download": False, "fallback": "none"} if root
            else {"name": "mnist_sample"})
    data.update(limit_train=256, limit_test=128)
    cfg = {"name": "pipe", "device": "cpu", "kernels": "numpy", "seed": 1, "model": TINY, "data": data,
           "train": {"epochs": epochs, "batch_size": 64, "eval_batch_size": 128}}
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env():
    env = dict(os.environ, BRAINPROP_THREADS="1")
    env.pop("PYTHONUNBUFFERED", None)       # as in a shell: stdout to a pipe is block-buffered
    return env


def _train_into_closed_pipe(tmp_path, *args, read=True):
    """Run `brainprop train ARGS --no-progress`, read the first stdout line (unless not `read`),
    close the pipe (what `| head -1` does); returns (first line, exit status, stderr)."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(CLI + [str(a) for a in args] + ["--no-progress"], stdout=subprocess.PIPE,
                                stderr=err, env=_env(), cwd=ROOT)
        try:
            first = proc.stdout.readline().decode() if read else ""
            proc.stdout.close()
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return first, code, err_path.read_text()


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _epochs(out):
    with open(out / "history.csv", newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _same_as_uninterrupted(tmp_path, cfg, out):
    """history.csv of the resumed run equals that of a run never stopped (timings aside)."""
    straight = tmp_path / "straight"
    proc = subprocess.run(CLI + [str(cfg), "--out", str(straight), "--no-progress"], capture_output=True,
                          text=True, env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr

    def rows(folder):
        with open(folder / "history.csv", newline="") as f:
            return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in csv.DictReader(f)]
    assert rows(out) == rows(straight)


def test_closed_stdout_stops_the_run_resumably_with_one_line(tmp_path):
    cfg, out = _config(tmp_path, epochs=3), tmp_path / "run"
    first, code, stderr = _train_into_closed_pipe(tmp_path, cfg, "--out", out)
    assert first.startswith("pipe: training;"), first
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "BrokenPipeError" not in stderr and "cannot read or write" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: standard output was closed (Broken pipe) after epoch 1 of 3; the run stopped; "
                      f"checkpoint written; resume with: brainprop train --resume {out}"], stderr
    s = _summary(out)
    assert s["stop_reason"] == "interrupted" and s["epochs_run"] == 1, s
    assert s["message"].startswith("standard output was closed (Broken pipe) after epoch 1 of 3"), s
    assert (out / "checkpoint.npz").is_file() and (out / "accuracy.png").is_file() and _epochs(out) == [1]

    proc = subprocess.run(CLI + ["--resume", str(out), "--no-progress"], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "resuming at epoch 2" in proc.stdout and "done (max_epochs) after 3 epochs" in proc.stdout
    s = _summary(out)
    assert s["stop_reason"] == "max_epochs" and s["epochs_run"] == 3 and _epochs(out) == [1, 2, 3]
    assert "message" not in s, s
    _same_as_uninterrupted(tmp_path, cfg, out)


def test_closed_stdout_after_the_last_epoch_finishes_the_run(tmp_path):
    """Nothing left to stop: the run ends as usual (its files complete, exit 0), silently."""
    cfg, out = _config(tmp_path, epochs=1), tmp_path / "run"
    first, code, stderr = _train_into_closed_pipe(tmp_path, cfg, "--out", out)
    assert first.startswith("pipe: training;"), first
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "error:" not in stderr, stderr
    assert _summary(out)["stop_reason"] == "max_epochs" and _epochs(out) == [1]


def test_stdout_closed_before_the_first_epoch_leaves_a_resumable_run(tmp_path):
    """The start line cannot be written (`| true`): no epoch is trained, the checkpoint of
    epoch 0 is written, and --resume trains the run from its first epoch."""
    cfg, out = _config(tmp_path, epochs=2), tmp_path / "run"
    _, code, stderr = _train_into_closed_pipe(tmp_path, cfg, "--out", out, read=False)
    assert code == 1, stderr
    assert "Exception ignored" not in stderr and "Traceback" not in stderr, stderr
    assert "error: standard output was closed (Broken pipe) before the first epoch of 2;" in stderr, stderr
    s = _summary(out)
    assert s["stop_reason"] == "interrupted" and s["epochs_run"] == 0, s
    proc = subprocess.run(CLI + ["--resume", str(out), "--no-progress"], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "resuming at epoch 1" in proc.stdout
    assert _summary(out)["stop_reason"] == "max_epochs" and _epochs(out) == [1, 2]
    _same_as_uninterrupted(tmp_path, cfg, out)


def test_closed_stdout_under_another_command_is_one_line(tmp_path):
    """eval (and any command printing outside a training run) with its standard output closed:
    exit status 1, one line on stderr, no "Exception ignored" at exit."""
    cfg, out = _config(tmp_path, epochs=1), tmp_path / "run"
    assert subprocess.run(CLI + [str(cfg), "--out", str(out), "--no-progress", "-q"], capture_output=True,
                          env=_env(), cwd=ROOT, timeout=120).returncode == 0
    err_path = tmp_path / "eval_stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "brainprop_np", "eval", str(cfg), "--load",
                                 str(out / "weights_best.npz"), "--no-progress"],
                                stdout=subprocess.PIPE, stderr=err, env=_env(), cwd=ROOT)
        proc.stdout.close()                  # closed before eval prints its line
        code = proc.wait(timeout=120)
    stderr = err_path.read_text()
    assert code == 1, stderr
    assert [l for l in stderr.splitlines() if l.strip()] == ["error: standard output was closed (Broken pipe)"], stderr


def test_a_quiet_run_finishes_and_exits_0_with_its_output_closed(tmp_path):
    """-q writes no line while training, so the run trains to its end: a success, whether its
    last line is read or not."""
    cfg, out = _config(tmp_path, epochs=2), tmp_path / "run"
    _, code, stderr = _train_into_closed_pipe(tmp_path, cfg, "--out", out, "-q", read=False)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "error:" not in stderr, stderr
    assert _summary(out)["stop_reason"] == "max_epochs" and _epochs(out) == [1, 2]


def test_a_command_started_with_stdout_closed_says_nothing_wrong(tmp_path):
    """Started with file descriptor 1 closed (`>&-`: sys.stdout is None), --version exits 0 as before."""
    proc = subprocess.run([sys.executable, "-m", "brainprop_np", "--version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT, timeout=60,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
