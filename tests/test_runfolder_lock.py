"""The run-folder lock: while a process trains in a folder, a second writer (a new run
with the same --out, or --resume of that folder) gets one line naming the folder and the
other process, exit status 2, and writes nothing; the lock goes with the process however
it ends (an exception, a kill)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainprop_np.run.runfolder import LOCK_NAME, FolderInUse, RunLock

ROOT = Path(__file__).resolve().parents[1]
TINY = [{"type": "flatten"}, {"type": "dense", "units": 8}]
HOLD = ("import sys; from brainprop_np.run.runfolder import RunLock; "
        "lock = RunLock(sys.argv[1]).__enter__(); lock.claim(); print('held', flush=True); sys.stdin.read()")


def _cfg(epochs=1):
    return {"name": "lk", "device": "cpu", "seed": 1, "model": TINY,
            "data": {"name": "mnist_sample", "limit_train": 128, "limit_test": 64},
            "train": {"epochs": epochs, "batch_size": 64, "eval_batch_size": 64}}


def _env(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path / "home"),
               BRAINPROP_CACHE=str(tmp_path / "cache"))
    env.pop("BRAINPROP_DATA", None)
    return env


def _cli(tmp_path, *args):
    return subprocess.Popen([sys.executable, "-m", "brainprop_np", *map(str, args)], cwd=tmp_path,
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _holder(tmp_path, folder):
    """A second process that takes the folder's lock and keeps it until its stdin closes."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=tmp_path, env=_env(tmp_path),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _refused(proc, folder, holder):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert str(folder) in lines[0] and f"pid {holder.pid}" in lines[0] and "is in use" in lines[0], lines[0]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_second_writer_is_refused_and_writes_nothing(tmp_path):
    cfg = tmp_path / "lk.yaml"
    cfg.write_text(yaml.safe_dump(_cfg()))
    out = tmp_path / "run"
    holder = _holder(tmp_path, out)
    try:
        _refused(_cli(tmp_path, "train", cfg, "--out", out), out, holder)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]       # no config.yaml, nothing
    finally:
        holder.kill()                                # killed: the kernel drops its lock
        holder.wait()
    from brainprop_np.run.train import train
    res = train(str(cfg), out=out, verbose=False, progress=False)
    assert res.stop_reason == "max_epochs"
    assert (out / LOCK_NAME).read_text() == ""                           # let go: no stale name left


def test_resume_of_a_folder_still_training_is_refused(tmp_path):
    from brainprop_np.run.train import train
    out = tmp_path / "run"
    train(_cfg(), out=out, verbose=False, progress=False)
    before = _files(out)
    holder = _holder(tmp_path, out)
    try:
        _refused(_cli(tmp_path, "train", "--resume", out, "train.epochs=2"), out, holder)
        assert {k: v for k, v in _files(out).items() if k != LOCK_NAME} == \
            {k: v for k, v in before.items() if k != LOCK_NAME}
    finally:
        holder.stdin.close()
        holder.wait()
    res = train(resume=out, overrides=["train.epochs=2"], verbose=False, progress=False)
    assert res.summary["epochs_run"] == 2


def test_two_runs_started_together_on_one_folder(tmp_path):
    cfg = tmp_path / "lk.yaml"
    cfg.write_text(yaml.safe_dump(_cfg()))
    out = tmp_path / "run"
    procs = [_cli(tmp_path, "train", cfg, "--out", out, "-q") for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert str(out) in err and ("is in use" in err or "already holds a run" in err), err


def test_the_lock_is_released_after_an_exception(tmp_path, monkeypatch):
    import brainprop_np.run.train as T
    from brainprop_np.run.failures import TrainingError

    class Failing:
        def trial(self, *a, **k):
            raise ValueError("a kernel failed")

    monkeypatch.setattr(T, "make_rule", lambda *a, **k: Failing())
    with pytest.raises(TrainingError, match="a kernel failed"):
        T.train(_cfg(), out=tmp_path / "run", verbose=False, progress=False)
    with RunLock(tmp_path / "run") as lock:          # free again, in this very process
        assert lock.folder == tmp_path / "run"
    with RunLock(tmp_path / "run"):
        with pytest.raises(FolderInUse, match="is in use: another process"):
            RunLock(tmp_path / "run").__enter__()   # unclaimed: no pid written yet


def test_resume_of_a_folder_still_before_its_first_checkpoint_names_the_trainer(tmp_path):
    """A run that has not yet written checkpoint.npz holds its lock: --resume of its folder
    says who trains there, not that the folder is no run folder; and writes nothing."""
    folder = tmp_path / "early"
    holder = _holder(tmp_path, folder)
    try:
        before = _files(folder)
        _refused(_cli(tmp_path, "train", "--resume", folder), folder, holder)
        assert _files(folder) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    proc = _cli(tmp_path, "train", "--resume", folder)       # the holder gone: not a run folder (yet)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "is not a run folder" in err, err
