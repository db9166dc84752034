"""The training loop in-process: exact resume (epoch boundary and mid-epoch), crash-safe
checkpoints, early stopping, non-finite loss, holdout and init_from; per_class.csv from the
validation pass, changing no other result.

Runs use a tiny network on a few hundred images of real MNIST (../shared/datasets or
$BRAINPROP_DATA) when present, else on the bundled MNIST sample.
"""
import csv
import importlib
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from brainprop_np.backend import to_host
from brainprop_np.data import BatchIterator
from brainprop_np.run.checkpoint import load_checkpoint, save_checkpoint
from brainprop_np.run.per_class import class_columns
from brainprop_np.weights import read_weights
from brainprop_np.run.config import ConfigError
from shared_data import mnist_root

T = importlib.import_module("brainprop_np.run.train")   # the module; bp.train is its function
L = importlib.import_module("brainprop_np.run.loop")    # evaluate, reg_loss
S = importlib.import_module("brainprop_np.run.setup")   # load_data
R = importlib.import_module("brainprop_np.run.records")  # plot_accuracy
E = importlib.import_module("brainprop_np.run.evaluation")   # evaluate_weights

TINY = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
        {"type": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.3},
        {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"},
        {"type": "dropout", "rate": 0.3}]


def _config(**train):
    root = mnist_root()
    data = ({"name": "mnist", "root": root, "download": False, "fallback": "none"} if root
            else {"name": "mnist_sample"})
    data.update(limit_train=300, limit_test=200)
    t = {"epochs": 2, "batch_size": 64, "eval_batch_size": 100}
    t.update(train)
    return {"name": "tiny", "device": "cpu", "seed": 3, "model": TINY, "data": data, "train": t}


def _run(tmp_path, name, cfg=None, **kw):
    return T.train(cfg or _config(), out=tmp_path / name, verbose=False, progress=False, **kw)


def _history(run_dir):
    with open(Path(run_dir) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _same_arrays(a, b):
    assert list(a) == list(b)
    for layer in a:
        assert list(a[layer]) == list(b[layer])
        for name in a[layer]:
            np.testing.assert_array_equal(a[layer][name], b[layer][name], err_msg=f"{layer}/{name}")


def _same_run(dir_a, dir_b, per_class=True):
    sa = json.loads((dir_a / "summary.json").read_text())
    sb = json.loads((dir_b / "summary.json").read_text())
    assert sa["threads"] == sb["threads"], ("the runs used different thread counts", sa["threads"], sb["threads"])
    ha, hb = _history(dir_a), _history(dir_b)
    assert len(ha) == len(hb)
    for ra, rb in zip(ha, hb):
        for col in ("epoch", "lr", "train_loss", "train_acc", "val_acc", "mean_delta", "mean_abs_delta",
                    "explore_rate"):
            assert ra[col] == rb[col], (col, ra, rb)
    _same_arrays(read_weights(dir_a / "weights_best.npz"), read_weights(dir_b / "weights_best.npz"))
    wa, ma, _ = load_checkpoint(dir_a / "checkpoint.npz")
    wb, mb, _ = load_checkpoint(dir_b / "checkpoint.npz")
    _same_arrays(wa, wb)
    assert ma["rng"] == mb["rng"] and ma["draws_step"] == mb["draws_step"]
    assert (ma["epoch"], ma["batch"], ma["es_best"], ma["es_wait"]) == (mb["epoch"], mb["batch"], mb["es_best"], mb["es_wait"])
    for k in ("best_val_acc", "best_epoch", "epochs_run", "stop_reason"):
        assert sa[k] == sb[k], k
    if per_class:
        assert (dir_a / "per_class.csv").read_text() == (dir_b / "per_class.csv").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-epoch run."""
    d = tmp_path_factory.mktemp("ref")
    res = T.train(_config(), out=d / "run", verbose=False, progress=False)
    assert res.stop_reason == "max_epochs" and len(res.history) == 2
    return d / "run"


def test_resume_at_epoch_boundary_equals_uninterrupted(tmp_path, reference):
    first = _run(tmp_path, "a", _config(epochs=1))
    assert first.summary["epochs_run"] == 1
    res = T.train(resume=tmp_path / "a", overrides=["train.epochs=2"], verbose=False, progress=False)
    assert res.stop_reason == "max_epochs" and res.summary["epochs_run"] == 2
    _same_run(reference, tmp_path / "a")


class _KillAfter:
    """A rule that sends this process SIGINT (or `signum`) after its n-th trial (the loop then stops)."""

    def __init__(self, rule, n, signum=signal.SIGINT):
        self.rule, self.n, self.calls, self.signum = rule, n, 0, signum

    def trial(self, *a, **kw):
        out = self.rule.trial(*a, **kw)
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), self.signum)
        return out


@pytest.mark.parametrize("after, signum", [(3, signal.SIGINT), (5, signal.SIGINT), (3, signal.SIGTERM)])
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, reference, monkeypatch, after, signum):
    """Ctrl-C or SIGTERM inside epoch 1 (5 batches per epoch) or at its end: the checkpoint,
    then a resume that ends as the uninterrupted run; the handlers are restored after."""
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _KillAfter(real(*a, **k), after, signum))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    t0 = time.perf_counter()
    res = _run(tmp_path, "b")
    first = time.perf_counter() - t0
    assert res.interrupted
    _, meta, arrays = load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    if after == 3:
        assert (meta["epoch"], meta["batch"]) == (0, 3)
        assert set(arrays) == {"perm", "loss_sum", "correct", "delta_sum", "abs_delta_sum", "explored", "seconds"}
        assert not (tmp_path / "b" / "history.csv").exists() or not _history(tmp_path / "b")
    else:
        assert (meta["epoch"], meta["batch"]) == (1, 0)
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["stop_reason"] == "interrupted"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    counted = meta["wall_seconds"]
    assert counted >= float(arrays["seconds"] if after == 3 else meta["history"][0]["epoch_seconds"]) > 0
    assert counted <= first                         # this process's time, counted once
    monkeypatch.setattr(T, "make_rule", real)
    t0 = time.perf_counter()
    res = T.train(resume=tmp_path / "b", verbose=False, progress=False)
    second = time.perf_counter() - t0
    assert res.stop_reason == "max_epochs"
    _same_run(reference, tmp_path / "b")
    trained = sum(float(r["epoch_seconds"]) for r in _history(tmp_path / "b"))
    wall = json.loads((tmp_path / "b" / "summary.json").read_text())["wall_seconds"]
    assert wall >= trained and wall >= counted + float(_history(tmp_path / "b")[-1]["epoch_seconds"])
    assert wall - counted <= second                 # the resume adds its own time, not the first's again


def test_an_ignored_sigint_stays_ignored():
    """A background job of a script ignores SIGINT: the stop flag leaves it so, and takes SIGTERM."""
    from brainprop_np.run.console import StopFlag
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopFlag() as flag:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            assert flag.set
            with pytest.raises(KeyboardInterrupt):          # a second signal aborts
                os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_resume_keeps_the_thread_count_of_the_run(tmp_path, reference, monkeypatch):
    """Sums round by the thread count; a resume on a machine that is busier or idler than
    when the run started uses the run's count (unless $BRAINPROP_THREADS says otherwise)."""
    threads = importlib.import_module("brainprop_np.kernels.threads")
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _KillAfter(real(*a, **k), 3))
    assert _run(tmp_path, "b").interrupted                              # started with 2 threads
    assert load_checkpoint(tmp_path / "b" / "checkpoint.npz")[1]["threads"] == 2
    monkeypatch.setattr(T, "make_rule", real)
    monkeypatch.delenv("BRAINPROP_THREADS")
    monkeypatch.setattr(threads, "free_cores", lambda: 1)              # the machine is busy now
    res = T.train(resume=tmp_path / "b", verbose=False, progress=False)
    assert res.summary["threads"] == 2
    _same_run(reference, tmp_path / "b")


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, reference, monkeypatch):
    _run(tmp_path, "c", _config(epochs=1))
    ckpt = tmp_path / "c" / "checkpoint.npz"
    before = ckpt.read_bytes()

    import brainprop_np.run.checkpoint as C
    from brainprop_np.files import atomic_open

    def crashing_write(path, data):
        with atomic_open(path, "wb") as f:
            f.write(data[:len(data) // 2])
            raise OSError("simulated crash in the middle of a checkpoint write")

    monkeypatch.setattr(C, "write_bytes", crashing_write)
    with pytest.raises(OSError, match="simulated crash"):
        T.train(resume=tmp_path / "c", overrides=["train.epochs=2"], verbose=False, progress=False)
    assert ckpt.read_bytes() == before
    assert not [p for p in ckpt.parent.iterdir() if p.name.endswith(".tmp")]
    _, meta, _ = load_checkpoint(ckpt)
    assert meta["epoch"] == 1
    monkeypatch.undo()
    T.train(resume=tmp_path / "c", overrides=["train.epochs=2"], verbose=False, progress=False)
    _same_run(reference, tmp_path / "c")


def test_resume_refuses_a_checkpoint_of_format_1_in_one_line(tmp_path, reference):
    """Format 1 kept PCG64 states: its run drew other numbers; resuming it is refused, naming
    the format and what to do."""
    import shutil
    from brainprop_np.weights import npz_bytes, read_npz
    shutil.copytree(reference, tmp_path / "old")
    raw = dict(read_npz(tmp_path / "old" / "checkpoint.npz"))
    meta = json.loads(str(raw["meta"]))
    meta["format"] = "brainprop_np-checkpoint-1"
    raw["meta"] = np.array(json.dumps(meta))
    (tmp_path / "old" / "checkpoint.npz").write_bytes(npz_bytes(raw))
    with pytest.raises(T.TrainingError) as err:
        T.train(resume=tmp_path / "old", overrides=["train.epochs=3"], verbose=False)
    msg = str(err.value)
    assert "\n" not in msg and "'brainprop_np-checkpoint-1'" in msg and "init_from=" in msg, msg


def test_resume_rejects_changing_the_experiment(tmp_path, reference):
    with pytest.raises(ConfigError, match="train.lr=0.5 is not allowed when resuming"):
        T.train(resume=reference, overrides=["train.lr=0.5"], verbose=False)
    with pytest.raises(ConfigError, match="is not a run folder: no checkpoint.npz or config.yaml"):
        T.train(resume=tmp_path, verbose=False)
    with pytest.raises(ConfigError, match="no such folder"):
        T.train(resume=tmp_path / "missing", verbose=False)


def test_resume_of_a_finished_run_does_nothing(reference, monkeypatch, capsys):
    before = {p.name: p.read_bytes() for p in reference.iterdir()}
    monkeypatch.setattr(S, "load_data", lambda *a, **k: pytest.fail("a finished run loads no data"))
    res = T.train(resume=reference, progress=False)
    assert res.stop_reason == "max_epochs" and res.summary["epochs_run"] == 2 and len(res.history) == 2
    assert res.summary["device"] == "cpu" and res.summary["device_name"]
    assert {p.name: p.read_bytes() for p in reference.iterdir()} == before
    out = capsys.readouterr().out
    assert out == (f"{reference}: run already finished after 2 epochs (max_epochs); "
                   "give train.epochs=M with M > 2 to extend it\n")
    with pytest.raises(ConfigError, match=r"train.epochs=1 is not allowed .* it has run 2 epochs already"):
        T.train(resume=reference, overrides=["train.epochs=1"], verbose=False)


def test_resume_of_an_early_stopped_run_names_patience(tmp_path, monkeypatch, capsys):
    accs = iter([0.5, 0.5, 0.5, 0.6, 0.7])
    monkeypatch.setattr(L, "evaluate", lambda *a, **k: next(accs))
    cfg = _config(epochs=5, patience=1, min_delta=0.001)
    cfg["data"]["limit_train"] = 64
    assert _run(tmp_path, "es", cfg).stop_reason == "early_stopping"
    capsys.readouterr()
    res = T.train(resume=tmp_path / "es", progress=False)
    assert res.stop_reason == "early_stopping" and res.summary["epochs_run"] == 2
    line = capsys.readouterr().out.strip()
    assert line.endswith("run already finished after 2 epochs (early_stopping); "
                         "give train.patience=P with P > 1 (or null) to extend it"), line
    res = T.train(resume=tmp_path / "es", overrides=["train.patience=null"], verbose=False, progress=False)
    assert res.stop_reason == "max_epochs" and res.summary["epochs_run"] == 5


def test_resume_inside_an_epoch_needs_that_epoch(tmp_path, monkeypatch):
    real = T.make_rule
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: _KillAfter(real(*a, **k), 8))   # epoch 2, batch 3
    assert _run(tmp_path, "mid", _config(epochs=3)).interrupted
    monkeypatch.setattr(T, "make_rule", real)
    with pytest.raises(ConfigError, match=r"train.epochs=1 is not allowed .* inside epoch 2 after 1 epoch;"):
        T.train(resume=tmp_path / "mid", overrides=["train.epochs=1"], verbose=False)
    res = T.train(resume=tmp_path / "mid", overrides=["train.epochs=2"], verbose=False, progress=False)
    assert res.stop_reason == "max_epochs" and res.summary["epochs_run"] == 2


def test_epoch_line_separates_best_from_the_early_stopping_counter(tmp_path, monkeypatch, capsys):
    accs = iter([0.5, 0.5005, 0.5008])
    monkeypatch.setattr(L, "evaluate", lambda *a, **k: next(accs))
    cfg = _config(epochs=3, patience=45, min_delta=0.001)
    cfg["data"]["limit_train"] = 64
    T.train(cfg, out=tmp_path / "line", progress=False)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch ")]
    assert "val 0.5008 *" in lines[2]                 # a new maximum, but no gain > min_delta
    assert lines[2].endswith("best 0.5008 @ 3  es 2/45"), lines[2]
    assert all(len(l) <= 100 for l in lines), lines
    accs = iter([0.5])
    cfg = _config(epochs=1, patience=None)
    cfg["data"]["limit_train"] = 64
    T.train(cfg, out=tmp_path / "line2", progress=False)
    out = capsys.readouterr().out
    assert "best 0.5000 @ 1  es off" in out
    assert "done (max_epochs) after 1 epoch: best" in out


@pytest.mark.parametrize("accs, patience, stop_epoch, reason, best_epoch", [
    # Keras: an epoch improves iff acc − min_delta > best, best being the acc of the last
    # improving epoch (not the maximum); stop once `patience` epochs passed without one.
    ([0.5, 0.6, 0.6, 0.6, 0.6, 0.6], 2, 4, "early_stopping", 2),
    ([0.5, 0.5005, 0.5011, 0.4, 0.4, 0.4], 2, 5, "early_stopping", 3),
    ([0.5, 0.5008, 0.5012, 0.3, 0.3, 0.3], 2, 5, "early_stopping", 3),   # 0.5012 − 0.001 > 0.5
    ([0.5, 0.6, 0.6], 2, 3, "max_epochs", 2),
    ([0.5, 0.7, 0.6, 0.8], 0, 3, "early_stopping", 2),       # patience 0: first non-improvement stops
    ([0.5, 0.4, 0.3, 0.2], None, 4, "max_epochs", 1),        # null: no early stopping
    # Keras compares float32 accuracies: 0.9010 − 0.001 > 0.9000 holds in float32 (a gain of
    # exactly min_delta, 10 of 10,000 images, counts here) but 0.5010 − 0.001 > 0.5000 does not.
    ([0.9, 0.901, 0.5, 0.5], 1, 3, "early_stopping", 2),
    ([0.5, 0.501, 0.5, 0.5], 1, 2, "early_stopping", 2),
])
def test_early_stopping_follows_keras(tmp_path, monkeypatch, accs, patience, stop_epoch, reason, best_epoch):
    seq = iter(accs)
    monkeypatch.setattr(L, "evaluate", lambda *a, **k: next(seq))
    cfg = _config(epochs=len(accs), patience=patience, min_delta=0.001)
    cfg["data"]["limit_train"] = 64
    res = _run(tmp_path, "es", cfg)
    assert res.summary["epochs_run"] == stop_epoch
    assert res.stop_reason == reason
    assert res.summary["best_epoch"] == best_epoch
    assert res.summary["best_val_acc"] == max(accs[:stop_epoch])


def test_early_stopping_best_is_the_float32_value_and_resumes_exactly(tmp_path, monkeypatch):
    accs = iter([0.9, 0.901, 0.5])
    monkeypatch.setattr(L, "evaluate", lambda *a, **k: next(accs))
    cfg = _config(epochs=2, patience=1, min_delta=0.001)
    cfg["data"]["limit_train"] = 64
    res = _run(tmp_path, "es32", cfg)
    assert res.summary["early_stopping"] == {"best": float(np.float32(0.901)), "wait": 0,
                                             "patience": 1, "min_delta": 0.001}
    assert res.summary["best_val_acc"] == 0.901                # the plain value, not rounded
    _, meta, _ = load_checkpoint(tmp_path / "es32" / "checkpoint.npz")
    assert meta["es_best"] == float(np.float32(0.901)) and meta["es_wait"] == 0
    res = T.train(resume=tmp_path / "es32", overrides=["train.epochs=5"], verbose=False, progress=False)
    assert res.summary["epochs_run"] == 3 and res.stop_reason == "early_stopping"
    assert res.summary["early_stopping"]["best"] == float(np.float32(0.901))


@pytest.mark.parametrize("case", ["max_epochs", "early_stopping", "interrupted"])
def test_accuracy_png_every_10_epochs_and_when_the_run_stops(tmp_path, monkeypatch, case):
    drawn = []
    monkeypatch.setattr(R, "plot_accuracy", lambda history, *a, **k: drawn.append(len(history)))
    monkeypatch.setattr(L, "evaluate", lambda *a, **k: 0.5)
    cfg = _config(epochs=23, patience=14 if case == "early_stopping" else None)
    cfg["data"]["limit_train"] = 64                             # one batch per epoch
    if case == "interrupted":
        real = T.make_rule
        monkeypatch.setattr(T, "make_rule", lambda *a, **k: _KillAfter(real(*a, **k), 12))
    res = _run(tmp_path, "png", cfg)
    assert res.stop_reason == case
    last = {"max_epochs": 23, "early_stopping": 15, "interrupted": 12}[case]
    assert res.summary["epochs_run"] == last
    assert drawn == [e for e in (10, 20) if e < last] + [last]


def test_value_errors_inside_training_are_training_errors(tmp_path, monkeypatch):
    real = T.make_rule

    class Failing:
        def __init__(self, rule):
            self.rule, self.calls = rule, 0

        def trial(self, *a, **kw):
            self.calls += 1
            if self.calls == 7:                       # epoch 2, batch 2
                raise ValueError("col2im: dcols of shape (1, 2) does not fit (3, 4)")
            return self.rule.trial(*a, **kw)

    monkeypatch.setattr(T, "make_rule", lambda *a, **k: Failing(real(*a, **k)))
    with pytest.raises(T.TrainingError, match=r"training stopped in epoch 2: col2im: dcols") as e:
        _run(tmp_path, "val", _config(epochs=3))
    assert isinstance(e.value.__cause__, ValueError) and not isinstance(e.value, ConfigError)
    assert (tmp_path / "val" / "accuracy.png").is_file()       # drawn for the epoch it finished

    def oom(*a, **k):
        raise MemoryError("Out of memory allocating 1,024 bytes")

    monkeypatch.setattr(T, "make_rule", lambda *a, **k: type("R", (), {"trial": staticmethod(oom)})())
    with pytest.raises(MemoryError):                  # passes through: run.py suggests a smaller batch
        _run(tmp_path, "oom", _config(epochs=1))

    def bad_kernel(*a, **k):
        raise ValueError("maxpool: bad")

    monkeypatch.setattr(E, "evaluate", bad_kernel)
    with pytest.raises(T.TrainingError, match="maxpool: bad"):
        E.evaluate_weights(_config(), tmp_path / "val" / "weights_best.npz", verbose=False)


def test_reg_loss_makes_no_kernel_sized_temporaries():
    import tracemalloc
    from brainprop_np.network import build_network
    net = build_network([{"type": "flatten"}, {"type": "dense", "units": 2000}], input_shape=(28, 28, 1),
                        n_classes=10, seed=1, device="cpu", dtype="float32")
    kernels = [w for _, p, w in net.trainable() if p == "kernel"]
    expect = 5e-4 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in kernels)
    L.reg_loss(net, 5e-4)                            # warm-up
    tracemalloc.start()
    try:
        got = L.reg_loss(net, 5e-4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(expect, rel=1e-5)
    assert peak < kernels[0].nbytes // 10, peak                # w*w would allocate the whole kernel again


def test_non_finite_loss_stops_and_keeps_best_weights(tmp_path, monkeypatch):
    cfg = _config(epochs=3)
    real = T.make_rule

    class Poisoned:
        def __init__(self, rule):
            self.rule, self.calls = rule, 0

        def trial(self, *a, **kw):
            out = self.rule.trial(*a, **kw)
            self.calls += 1
            if self.calls > 5:            # from epoch 2 on: a NaN in the epoch's loss sum
                loss_sum = kw["metrics"][0:1]
                loss_sum += np.float32("nan")
            return out

    monkeypatch.setattr(T, "make_rule", lambda *a, **k: Poisoned(real(*a, **k)))
    with pytest.raises(T.TrainingError, match="training loss became nan in epoch 2"):
        _run(tmp_path, "nan", cfg)
    d = tmp_path / "nan"
    s = json.loads((d / "summary.json").read_text())
    assert s["stop_reason"] == "non_finite_loss" and s["best_epoch"] == 1 and s["epochs_run"] == 1
    assert (d / "weights_best.npz").is_file()
    _, meta, _ = load_checkpoint(d / "checkpoint.npz")
    assert meta["epoch"] == 1


def test_holdout_records_test_accuracy(tmp_path):
    cfg = _config(epochs=1)
    cfg["data"]["holdout"] = 100
    res = _run(tmp_path, "h", cfg)
    s = res.summary
    assert s["dataset"]["n_val"] == 100 and s["dataset"]["n_test"] == 200
    assert 0.0 <= s["test_acc"] <= 1.0
    acc, n, _ = E.evaluate_weights(cfg, tmp_path / "h" / "weights_best.npz", verbose=False)
    assert n == 200 and acc == s["test_acc"]


def test_init_from_npz_starts_from_those_weights(tmp_path):
    model = [{"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "relu"}]
    cfg = _config(epochs=1)
    cfg["model"] = model
    _run(tmp_path, "src", cfg)
    src = tmp_path / "src" / "weights_best.npz"
    cfg2 = _config(epochs=1, lr=1e-30)          # updates too small to change float32 weights
    cfg2["model"], cfg2["seed"], cfg2["init_from"] = model, 99, str(src)
    _run(tmp_path, "dst", cfg2)
    _same_arrays(read_weights(src), read_weights(tmp_path / "dst" / "weights_best.npz"))
    cfg2["init_from"] = str(tmp_path / "src" / "checkpoint.npz")     # a checkpoint works as well
    _run(tmp_path, "dst2", cfg2)
    _same_arrays(read_weights(src), read_weights(tmp_path / "dst2" / "weights_best.npz"))
    cfg2["init_from"] = str(tmp_path / "missing.npz")
    with pytest.raises(T.TrainingError, match="missing.npz"):
        _run(tmp_path, "dst3", cfg2)


def test_train_accepts_a_yaml_path(tmp_path):
    import yaml
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(_config(epochs=1)))
    res = T.train(p, out=tmp_path / "y", overrides=["train.epochs=1", "algorithm=ebp"], verbose=False)
    assert res.summary["algorithm"] == "ebp" and res.summary["epochs_run"] == 1
    assert "brain_prop_layer" not in read_weights(tmp_path / "y" / "weights_best.npz")


def test_bp_train_is_callable_even_after_importing_the_module(tmp_path):
    import brainprop_np as bp
    import brainprop_np.run.train  # noqa: F401  (must not rebind bp.train to the module)
    res = bp.train(_config(epochs=1), out=tmp_path / "api", verbose=False, progress=False)
    assert res.summary["epochs_run"] == 1 and (tmp_path / "api" / "summary.json").is_file()


def test_plots_have_whole_epoch_ticks(tmp_path, reference, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from brainprop_np.run.plot import plot_runs
    from brainprop_np.run.figures import plot_accuracy
    figs, real = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figs.append(self), real(self, *a, **k))[1])
    history = [{"epoch": e, "train_acc": 0.5, "val_acc": 0.5 + e / 100} for e in (1, 2)]
    assert plot_accuracy(history, 2, tmp_path / "a.png")
    plot_runs([reference], tmp_path / "c.png")               # brainprop plot
    assert len(figs) == 2
    for fig in figs:
        ticks = fig.axes[0].xaxis.get_major_locator()()
        assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks


def test_a_resumed_fallback_run_keeps_saying_it_trained_on_the_mnist_sample(tmp_path, monkeypatch):
    from brainprop_np.run.train import train
    tiny = [{"type": "flatten"}, {"type": "dense", "units": 8}]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))          # no folder named, an empty cache
    monkeypatch.delenv("BRAINPROP_DATA", raising=False)
    monkeypatch.delenv("BRAINPROP_CACHE", raising=False)
    cfg = {"name": "fb", "device": "cpu", "model": tiny, "train": {"epochs": 1},
           "data": {"name": "mnist", "download": False, "fallback": "mnist_sample",
                    "limit_train": 256, "limit_test": 100}}
    first = train(cfg, out=tmp_path / "run", verbose=False)
    assert first.summary["dataset"]["fallback"] is True
    resumed = train(resume=tmp_path / "run", overrides=["train.epochs=2"], verbose=False)
    d = resumed.summary["dataset"]
    assert resumed.summary["epochs_run"] == 2
    assert d["used"] == "mnist_sample" and d["requested"] == "mnist" and d["fallback"] is True
    assert d["fallback_reason"] == first.summary["dataset"]["fallback_reason"]


@pytest.mark.parametrize("kernels", ["fast", "numpy"])
def test_summary_records_the_kernel_set_and_threads(tmp_path, kernels):
    if kernels == "fast":
        pytest.importorskip("numba", reason="the fast CPU kernel set needs numba")
    cfg = _config(epochs=1)
    cfg["kernels"] = kernels
    s = _run(tmp_path, kernels, cfg).summary
    assert s["kernels"] == kernels and s["threads"] >= 1
    assert (s["kernel_compile_seconds"] is not None) == (kernels == "fast")
    # TINY's 1-channel conv2d → relu → batchnorm → dropout and its dense: blocks of the fast set, none in the reference
    assert s["fused_blocks"] == ([] if kernels == "numpy" else
                                 ["DirectConvReluBatchNorm conv2d+activation+batch_normalization+dropout",
                                  "FoldedTags dense"])
    assert json.loads((tmp_path / kernels / "summary.json").read_text())["kernels"] == kernels


def test_bad_thread_count_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINPROP_THREADS", "two")
    with pytest.raises(ConfigError, match="BRAINPROP_THREADS='two' is not allowed; use an integer >= 1"):
        _run(tmp_path, "x")
    assert not (tmp_path / "x").exists()


def test_brainprop_kernels_applies_unless_the_config_names_a_set(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINPROP_KERNELS", "numpy")
    assert _run(tmp_path, "env").summary["kernels"] == "numpy"              # config kernels: auto
    cfg = _config(epochs=1)
    cfg["kernels"] = "fast"
    pytest.importorskip("numba", reason="the fast CPU kernel set needs numba")
    assert _run(tmp_path, "named", cfg).summary["kernels"] == "fast"        # the config wins
    monkeypatch.setenv("BRAINPROP_KERNELS", "turbo")
    with pytest.raises(ConfigError, match=r"^BRAINPROP_KERNELS='turbo' is not allowed; use one of auto, fast, numpy$"):
        _run(tmp_path, "bad")
    assert not (tmp_path / "bad").exists()


def test_per_class_csv_is_each_class_accuracy_of_the_validation_pass(reference):
    rows = list(csv.DictReader(open(reference / "per_class.csv", newline="")))
    assert list(rows[0]) == class_columns(10) and [r["epoch"] for r in rows] == ["1", "2"]
    cfg = S.as_config(_config(), ())
    split, _ = S.prepare_data(cfg)
    net = S.build(cfg, split.input_shape, split.n_classes)
    net.set_weights(load_checkpoint(reference / "checkpoint.npz")[0])       # the weights after epoch 2
    it = BatchIterator(split.x_val, split.y_val, net.backend, cfg["dtype"])
    pred = np.concatenate([to_host(net.forward(x, train=False)).argmax(axis=1) for x, _ in it.epoch(100)])
    y = np.asarray(split.y_val)
    for c in range(10):                            # by hand: a mask per class
        want = float(np.mean(pred[y == c] == c)) if np.any(y == c) else float("nan")
        np.testing.assert_equal(float(rows[1][f"acc_{c}"]), want)
    n = np.bincount(y, minlength=10)
    for h, r in zip(_history(reference), rows):   # val_acc: the images-weighted mean of the classes
        acc = np.array([float(r[f"acc_{c}"]) for c in range(10)])
        assert float(h["val_acc"]) == pytest.approx(float(np.nansum(acc * n)) / len(y), abs=1e-12)


def _validate_before_per_class(run):
    """loop.validate as it was before per_class.csv: a sum of argmax q == label, no bincount."""
    correct = 0
    for x, y in run.val_it.epoch(run.cfg["train"]["eval_batch_size"]):
        correct += int(to_host((run.net.forward(x, train=False).argmax(axis=1) == y).sum()))
    return correct / len(run.val_it), None


@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
def test_per_class_changes_no_other_result_bit_for_bit(tmp_path, reference, monkeypatch, algorithm):
    cfg = dict(_config(), algorithm=algorithm)
    with_it = reference if algorithm == "brainprop" else _run(tmp_path, "with", cfg).out_dir
    monkeypatch.setattr(T, "validate", _validate_before_per_class)
    without = _run(tmp_path, "without", cfg).out_dir
    assert not (without / "per_class.csv").exists()
    _same_run(with_it, without, per_class=False)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (with_it, without))
    assert sa["early_stopping"] == sb["early_stopping"]


def test_a_resume_of_a_checkpoint_without_per_class_writes_the_epochs_it_measures(tmp_path):
    """Checkpoints written before per_class.csv existed: its rows start at the resumed epoch."""
    _run(tmp_path, "old", _config(epochs=1))
    weights, meta, arrays = load_checkpoint(tmp_path / "old" / "checkpoint.npz")
    del meta["per_class"], meta["format"], meta["wall_seconds"]
    save_checkpoint(tmp_path / "old" / "checkpoint.npz", weights, meta, arrays)
    (tmp_path / "old" / "per_class.csv").unlink()
    T.train(resume=tmp_path / "old", overrides=["train.epochs=2"], verbose=False, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "old" / "per_class.csv", newline="")))
    assert [r["epoch"] for r in rows] == ["2"]
    assert json.loads((tmp_path / "old" / "summary.json").read_text())["wall_seconds"] is None   # not counted


def test_a_stop_during_the_last_epochs_evaluation_lets_the_run_finish_and_says_so(tmp_path, monkeypatch, capsys):
    """SIGTERM after the last epoch's training (in its evaluation): nothing is left to stop, so the
    run ends as usual, and a line says that the signal came too late to stop it."""
    real, calls = T.validate, []

    def validate(run):
        calls.append(run.epoch)
        if len(calls) == 2:                              # the second (last) epoch's evaluation
            os.kill(os.getpid(), signal.SIGTERM)
        return real(run)
    monkeypatch.setattr(T, "validate", validate)
    result = T.train(_config(), out=tmp_path / "r", verbose=True, progress=False)
    assert result.summary["stop_reason"] == "max_epochs" and not result.interrupted
    assert "SIGTERM came in the last epoch, after its training: the run finished" in capsys.readouterr().err
