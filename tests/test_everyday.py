"""Everyday use: data provenance, the console command, progress and per-epoch
rule statistics, TensorBoard / MLflow logging, --explain's default weights, the rough
edges of bad input, and the project files (LICENSE, CITATION.cff, install lines)."""
import configparser
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import importlib

T = importlib.import_module("brainprop_np.run.train")
L = importlib.import_module("brainprop_np.run.loop")          # evaluate
S = importlib.import_module("brainprop_np.run.setup")         # load_data
R = importlib.import_module("brainprop_np.run.records")       # plot_accuracy
E = importlib.import_module("brainprop_np.run.evaluation")    # evaluate_weights
from brainprop_np.run.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = [{"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "relu"}]


def _cfg(**extra):
    cfg = {"name": "ev", "device": "cpu", "seed": 1, "model": TINY,
           "data": {"name": "mnist_sample", "limit_train": 256, "limit_test": 100},
           "train": {"epochs": 1, "batch_size": 64, "eval_batch_size": 100}}
    for k, v in extra.items():
        if isinstance(v, dict):
            cfg.setdefault(k, {}).update(v)
        else:
            cfg[k] = v
    return cfg


def _write(tmp_path, **extra):
    path = tmp_path / "ev.yaml"
    path.write_text(yaml.safe_dump(_cfg(**extra)))
    return path


def _env(tmp_path, **extra):
    """A clean environment: no $BRAINPROP_DATA, HOME (the default data folder) in tmp_path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", HOME=str(tmp_path / "home"),
               BRAINPROP_CACHE=str(tmp_path / "cache"))
    env.pop("BRAINPROP_DATA", None)
    env.update(extra)
    return env


def _cli(tmp_path, *args, env=None, module=True):
    cmd = [sys.executable, "-m", "brainprop_np"] if module else [sys.executable, str(ROOT / "run.py")]
    return subprocess.run(cmd + [str(a) for a in args], cwd=tmp_path, env=env or _env(tmp_path),
                          capture_output=True, text=True, timeout=300)


def _one_line_error(proc, code):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    from brainprop_np.run.warmup import COMPILING               # said on a cold kernel cache
    lines = [l for l in proc.stderr.splitlines() if l.strip() and l != COMPILING]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _nothing_written(tmp_path):
    assert not (tmp_path / "runs").exists()


# ---- provenance -------------------------------------------------------------------------

def test_a_named_data_root_without_the_files_is_an_error_not_the_sample(tmp_path):
    cfg = _write(tmp_path, data={"name": "mnist", "fallback": "mnist_sample"})
    proc = _cli(tmp_path, "train", cfg, "data.root=/nonexistent/dir", "-q")
    line = _one_line_error(proc, 1)
    assert "/nonexistent/dir" in line and "train-images-idx3-ubyte.gz" in line and "no such folder" in line
    assert "downloading" not in proc.stderr + proc.stdout
    _nothing_written(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli(tmp_path, "train", cfg, "data.download=false", "-q", env=_env(tmp_path, BRAINPROP_DATA=str(empty)))
    line = _one_line_error(proc, 1)
    assert str(empty) in line and "t10k-labels-idx1-ubyte.gz" in line and "$BRAINPROP_DATA" in line
    _nothing_written(tmp_path)


def test_the_sample_fallback_is_one_short_line_also_with_q_and_named_everywhere(tmp_path):
    cfg = _write(tmp_path, data={"name": "mnist", "fallback": "mnist_sample", "download": False})
    proc = _cli(tmp_path, "train", cfg, "-q", "--out", tmp_path / "q")
    assert proc.returncode == 0, proc.stderr
    warn = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(warn) == 1 and "MNIST SAMPLE" in warn[0] and len(warn[0]) <= 120, warn
    assert "ON THE MNIST SAMPLE" in proc.stdout.strip().splitlines()[-1]
    s = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert s["dataset"]["used"] == "mnist_sample" and s["dataset"]["fallback"] is True
    proc = _cli(tmp_path, "train", cfg, "train.epochs=2", "--out", tmp_path / "v")
    epochs = [l for l in proc.stdout.splitlines() if l.startswith("epoch ")]
    assert len(epochs) == 2 and all("MNIST SAMPLE" in l and len(l) <= 100 for l in epochs), epochs
    assert "MNIST SAMPLE" in proc.stdout.splitlines()[-1]


def test_eval_on_the_sample_says_evaluating_and_how_to_point_at_real_data(tmp_path):
    cfg = _write(tmp_path, data={"name": "mnist", "fallback": "mnist_sample", "download": False})
    proc = _cli(tmp_path, "train", cfg, "-q", "--out", tmp_path / "q")
    assert proc.returncode == 0, proc.stderr
    proc = _cli(tmp_path, "eval", cfg, "--load", tmp_path / "q" / "weights_best.npz")
    assert proc.returncode == 0, proc.stderr
    warn = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(warn) == 1 and "evaluating on the bundled MNIST SAMPLE" in warn[0] and "training" not in warn[0]
    assert "data.root=DIR" in warn[0] and "$BRAINPROP_DATA" in warn[0] and len(warn[0]) <= 120, warn
    assert "mnist_sample test set" in proc.stdout


def test_the_header_says_1_thread_not_1_threads(tmp_path, capsys, monkeypatch):
    from brainprop_np.run import console
    monkeypatch.setattr(console.threads, "current", lambda: 4)
    assert console.threads_text() == "4 threads"
    monkeypatch.setattr(console.threads, "current", lambda: 1)
    assert console.threads_text() == "1 thread"
    T.train(_cfg(), out=tmp_path / "t", progress=False)
    head = capsys.readouterr().out.splitlines()[0]
    assert " kernels, 1 thread); run folder " in head, head


def test_plot_titles_and_labels_name_the_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BRAINPROP_DATA", raising=False)
    titles = []
    monkeypatch.setattr(R, "plot_accuracy", lambda h, b, p, title="": titles.append(title) or True)
    T.train(_cfg(data={"name": "mnist", "fallback": "mnist_sample", "download": False}),
            out=tmp_path / "r", verbose=False, progress=False)
    assert titles and all("MNIST SAMPLE" in t for t in titles)
    from brainprop_np.run.plot import read_run
    assert "MNIST SAMPLE" in read_run(tmp_path / "r")[0]


def test_downloading_is_said_only_once_a_server_answers(tmp_path, monkeypatch, capsys):
    from brainprop_np.data import DataError, download
    from data_fixtures import local_server
    monkeypatch.setattr(download, "VERBOSE", True)
    with pytest.raises(DataError):
        download.fetch("x.bin", tmp_path, ["http://127.0.0.1:9/"])
    assert "downloading" not in capsys.readouterr().err
    with local_server({"x.bin": b"abc"}) as srv:
        download.fetch("x.bin", tmp_path, [srv.url])
    err = capsys.readouterr().err
    assert err.count("downloading http") == 1 and (tmp_path / "x.bin").read_bytes() == b"abc"
    seen = []
    real = download.urllib.request.urlopen
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda req, timeout: seen.append(timeout) or real(req, timeout=timeout))
    with pytest.raises(DataError):
        download.fetch("y.bin", tmp_path, ["http://127.0.0.1:9/"])
    assert seen == [download.CONNECT_TIMEOUT] and download.CONNECT_TIMEOUT <= 10


# ---- the console command ----------------------------------------------------------------

def test_console_entry_point_version_and_help(tmp_path):
    cp = configparser.ConfigParser()
    cp.read(ROOT / "setup.cfg")
    scripts = cp["options.entry_points"]["console_scripts"].strip()
    assert scripts == "brainprop = brainprop_np.cli:main"
    from brainprop_np import __version__
    proc = _cli(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"brainprop_np {__version__}"
    proc = _cli(tmp_path, "--help")
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("train", "eval", "explain", "plot", "sweep"))
    line = _one_line_error(_cli(tmp_path, "configs/mnist_conv.yaml"), 2)
    assert "unknown command" in line and "brainprop train CONFIG.yaml" in line


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path):
    cfg = _write(tmp_path)
    proc = _cli(tmp_path, "train", cfg, "train.epochs=7", "--print-config")
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["train"]["epochs"] == 7 and printed["train"]["lr"] == 0.1 and printed["log"]["tensorboard"] is False
    assert printed == T.resolve_config(str(cfg), ["train.epochs=7"])
    _nothing_written(tmp_path)
    proc = _cli(tmp_path, cfg, "--print-config", module=False)       # run.py too
    assert proc.returncode == 0 and yaml.safe_load(proc.stdout)["name"] == "ev"


def test_train_eval_plot_through_the_command_and_run_folders_per_algorithm(tmp_path):
    cfg = _write(tmp_path)
    for algorithm in ("brainprop", "ebp"):
        proc = _cli(tmp_path, "train", cfg, f"algorithm={algorithm}", "-q")
        assert proc.returncode == 0, proc.stderr
    runs = sorted(p.relative_to(tmp_path / "runs").parts[0] for p in (tmp_path / "runs").glob("*/*"))
    assert runs == ["ev-brainprop", "ev-ebp"]
    run = next((tmp_path / "runs" / "ev-brainprop").iterdir())
    proc = _cli(tmp_path, "eval", "--load", run / "weights_best.npz")
    assert proc.returncode == 0 and "test accuracy" in proc.stdout, proc.stderr
    ebp = next((tmp_path / "runs" / "ev-ebp").iterdir())
    proc = _cli(tmp_path, "plot", run, ebp, "--out", tmp_path / "c.png")
    assert proc.returncode == 0 and (tmp_path / "c.png").is_file(), proc.stderr
    line = _one_line_error(_cli(tmp_path, "eval", cfg), 2)
    assert "--load WEIGHTS is required" in line


def test_sweep_subcommand_names_itself_in_its_usage_and_errors(capsys):
    from brainprop_np import cli
    assert cli.main(["sweep", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: brainprop sweep ")
    assert cli.main(["sweep", "c.yaml", "--seeds", "1-2", "--bogus"]) == 2
    assert capsys.readouterr().err.strip().endswith("see brainprop sweep --help")


def test_sweep_subcommand_imports_the_module_lazily(monkeypatch):
    from brainprop_np import cli
    from brainprop_np.run import sweep
    monkeypatch.setattr(sweep, "main", lambda argv, prog: 7 if (argv, prog) == (["c.yaml", "--seeds", "1-2"],
                                                                              "brainprop sweep") else 0)
    assert cli.main(["sweep", "c.yaml", "--seeds", "1-2"]) == 7
    code = ("import sys; from brainprop_np import cli; cli.main(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('brainprop_np.run.sweep') or m == 'ray'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"       # neither the sweep nor Ray before `brainprop sweep`


# ---- progress and the rule's statistics ------------------------------------------------

@pytest.fixture
def eager_bars(monkeypatch):
    """Bars redrawn at every update, so that a fast test sees what a slow epoch shows."""
    from brainprop_np.run import progress
    monkeypatch.setattr(progress, "MININTERVAL", 0)
    monkeypatch.setattr(progress, "STATS_EVERY", 0)


def test_progress_bar_shows_running_stats_and_images_per_second(eager_bars):
    from brainprop_np.run.progress import Progress
    buf = io.StringIO()
    bar = Progress(4, "epoch 1/2", stream=buf, enabled=True, stats=lambda: "loss 0.1234  reward 0.500")
    for _ in range(4):
        bar.update(images=32)
    bar.close()
    out = buf.getvalue()
    assert "epoch 1/2" in out and "loss 0.1234" in out and "reward 0.500" in out and "img/s" in out
    silent = io.StringIO()
    Progress(4, "x", stream=silent, enabled=False).update()
    assert silent.getvalue() == ""


def test_training_draws_a_bar_for_evaluation_too(tmp_path, capsys, eager_bars):
    T.train(_cfg(), out=tmp_path / "r", verbose=False, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "validating 1/1" in err and "loss" in err and "img/s" in err


def test_history_has_the_rules_own_quantities(tmp_path):
    T.train(_cfg(train={"epochs": 2}), out=tmp_path / "bp", verbose=False, progress=False)
    with open(tmp_path / "bp" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == ["epoch", "lr", "train_loss", "train_acc", "val_acc", "epoch_seconds"]
    for r in rows:
        md, mad, er = float(r["mean_delta"]), float(r["mean_abs_delta"]), float(r["explore_rate"])
        assert mad >= abs(md) and mad > 0 and 0 <= er <= 0.1
    T.train(_cfg(algorithm="ebp"), out=tmp_path / "ebp", verbose=False, progress=False)
    with open(tmp_path / "ebp" / "history.csv") as f:
        r = next(csv.DictReader(f))
    assert math.isnan(float(r["mean_delta"])) and math.isnan(float(r["explore_rate"]))


def test_explore_rate_follows_epsilon(tmp_path):
    res = T.train(_cfg(brainprop={"epsilon": 1.0}), out=tmp_path / "e", verbose=False, progress=False)
    assert 0.8 < res.history[0]["explore_rate"] <= 1.0        # ε = 1: sampled, mostly not the argmax
    res = T.train(_cfg(brainprop={"epsilon": 0.0}), out=tmp_path / "g", verbose=False, progress=False)
    assert res.history[0]["explore_rate"] == 0.0


# ---- TensorBoard and MLflow ---------------------------------------------------------------

def test_tensorboard_event_files_in_the_run_folder(tmp_path):
    pytest.importorskip("tensorboardX", reason="log.tensorboard needs the [tensorboard] extra")
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="reading event files needs tensorboard")
    res = T.train(_cfg(train={"epochs": 2}, log={"tensorboard": True}), out=tmp_path / "tb",
                  verbose=False, progress=False)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    acc = ea.EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert {"val_acc", "train_loss", "mean_delta", "explore_rate"} <= set(acc.Tags()["scalars"])
    vals = [(e.step, e.value) for e in acc.Scalars("val_acc")]
    assert [s for s, _ in vals] == [1, 2]
    assert [v for _, v in vals] == pytest.approx([r["val_acc"] for r in res.history], abs=1e-6)


def test_mlflow_run_with_params_metrics_and_artifacts(tmp_path):
    pytest.importorskip("mlflow", reason="log.mlflow needs the [mlflow] extra")
    from mlflow.tracking import MlflowClient
    store = tmp_path / "mlruns"
    res = T.train(_cfg(train={"epochs": 2}, log={"mlflow": str(store)}), out=tmp_path / "ml",
                  verbose=False, progress=False)
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    run = client.get_run(res.summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.params["algorithm"] == "brainprop"
    hist = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted(m.step for m in hist) == [1, 2]
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"weights_best.npz", "accuracy.png", "history.csv", "summary.json", "config.yaml"} <= arts


def test_mlflow_true_is_a_folder_store_and_folders_are_kept_absolute(tmp_path, monkeypatch):
    """true: $MLFLOW_TRACKING_URI, else ./mlruns (MLflow's own default needs what the client
    extra lacks); a relative folder is resolved where the run starts, so config.yaml names
    the store that a resume from elsewhere then finds."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert T.resolve_config(_cfg(), ["log.mlflow=true"])["log"]["mlflow"] == str(tmp_path / "mlruns")
    assert T.resolve_config(_cfg(), ["log.mlflow=./st"])["log"]["mlflow"] == str(tmp_path / "st")
    assert T.resolve_config(_cfg(), ["log.mlflow=http://h:5000"])["log"]["mlflow"] == "http://h:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker:5000")
    assert T.resolve_config(_cfg(), ["log.mlflow=true"])["log"]["mlflow"] == "http://tracker:5000"


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, monkeypatch):
    """... also when the run named its store by a relative folder and resumes from another directory."""
    pytest.importorskip("mlflow", reason="log.mlflow needs the [mlflow] extra")
    from mlflow.tracking import MlflowClient
    store = tmp_path / "mlruns"
    monkeypatch.chdir(tmp_path)
    first = T.train(_cfg(log={"mlflow": "mlruns"}), out=tmp_path / "ml", verbose=False, progress=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = T.train(resume=tmp_path / "ml", overrides=["train.epochs=2"], verbose=False, progress=False)
    assert not (tmp_path / "elsewhere" / "mlruns").exists()
    assert again.summary["mlflow_run_id"] == first.summary["mlflow_run_id"]
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    hist = client.get_metric_history(first.summary["mlflow_run_id"], "val_acc")
    assert sorted(m.step for m in hist) == [1, 2]
    assert client.get_run(first.summary["mlflow_run_id"]).info.status == "FINISHED"


def test_plot_command_errors_are_one_line(tmp_path):
    line = _one_line_error(_cli(tmp_path, "plot", tmp_path, "--bogus"), 2)
    assert "--bogus" in line and "brainprop plot --help" in line


def test_logging_without_its_library_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from brainprop_np import cli
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert cli.main(["train", str(_write(tmp_path)), "log.tensorboard=true"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install -e ".[tensorboard]"' in err[0]
    _nothing_written(tmp_path)
    with pytest.raises(ConfigError, match="log.mlflow=5 is not allowed"):
        T.resolve_config(_cfg(), ["log.mlflow=5"])


# ---- --explain ------------------------------------------------------------------------------

def test_explain_defaults_to_briefly_trained_weights_and_says_so(tmp_path):
    cfg = _write(tmp_path)
    proc = _cli(tmp_path, "explain", cfg, "--image", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "after 200 BrainProp steps" in out and "trained now" in out and "--train-steps 0" in out
    assert "columns: units w/ fb" in out and "‖tag‖ = size of its" in out
    assert list((tmp_path / "cache").glob("ev-*.npz"))
    again = _cli(tmp_path, "explain", cfg, "--image", "1")
    assert "read from the cache" in again.stdout
    untrained = _cli(tmp_path, "explain", cfg, "--image", "1", "--train-steps", "0")
    assert "initial weights" in untrained.stdout

    def biggest_update(text):
        return max(float(l.split()[-1]) for l in text.splitlines() if l.startswith(("dense", "brain_prop_layer")))
    assert biggest_update(out) > 10 * biggest_update(untrained.stdout)


def test_explain_whose_training_diverges_is_one_line_and_caches_nothing(tmp_path):
    """Pre-training that makes the weights non-finite ends explain with train's exit status
    for a runtime failure, naming the ways out; no weights are cached for a later call."""
    proc = _cli(tmp_path, "explain", _write(tmp_path), "train.lr=1e8", "--train-steps", "20")
    line = _one_line_error(proc, 1)
    assert "became non-finite" in line and "20 BrainProp steps" in line and "--train-steps 0" in line, line
    assert "nan" not in proc.stdout
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_explain_figures_are_signed_with_delta_and_a_caption(tmp_path):
    pytest.importorskip("matplotlib")
    from brainprop_np.teach.explain import explain_config
    model = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"}, {"type": "relu"},
             {"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "relu"}]
    trace, _, paths = explain_config(_cfg(model=model), image_index=2, figures=tmp_path, train_steps=50,
                                     say=lambda s: None)
    assert trace.input_fb_map.min() < 0 < trace.input_fb_map.max()     # signed, not |fb|
    assert sorted(Path(p).name for p in paths) == ["feedback_conv2d.png", "feedback_input.png"]
    import struct
    for p in paths:
        assert struct.unpack(">II", Path(p).read_bytes()[16:24]) == (720, 400)


# ---- rough edges ------------------------------------------------------------------------------

def test_batch_larger_than_the_training_set_is_refused(tmp_path):
    line = _one_line_error(_cli(tmp_path, "train", _write(tmp_path), "train.batch_size=1000000"), 2)
    assert "train.batch_size=1000000" in line and "256 training images" in line and "at most 256" in line
    _nothing_written(tmp_path)


@pytest.mark.parametrize("phase", ["training", "evaluation"])
def test_out_of_memory_names_the_phase(tmp_path, monkeypatch, capsys, phase):
    def oom(*a, **k):
        raise MemoryError("Out of memory allocating 1,024 bytes")
    if phase == "evaluation":
        monkeypatch.setattr(L, "evaluate", oom)
    else:
        from brainprop_np.rules import BrainProp
        monkeypatch.setattr(BrainProp, "trial", oom)
    with pytest.raises(T.OutOfMemory) as e:
        T.train(_cfg(), out=tmp_path / "o", verbose=False, progress=False)
    assert e.value.phase == phase
    from brainprop_np import cli
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", str(_write(tmp_path)), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"out of memory while {phase}" in err[0]
    wanted, other = ("train.batch_size", "eval_batch_size") if phase == "training" else \
        ("train.eval_batch_size", "train.batch_size")
    assert wanted in err[0] and other not in err[0]


def test_gpu_is_checked_before_the_data_are_loaded(tmp_path, monkeypatch):
    from brainprop_np.backend import BackendError, get_backend
    try:
        get_backend("gpu")
        pytest.skip("a GPU is available here")
    except BackendError:
        pass
    monkeypatch.setattr(S, "load_data", lambda *a, **k: pytest.fail("data loaded before the device check"))
    with pytest.raises(T.TrainingError, match="device=gpu"):
        T.train(_cfg(device="gpu"), out=tmp_path / "g", verbose=False)
    with pytest.raises(T.TrainingError, match="device=gpu"):
        E.evaluate_weights(_cfg(device="gpu"), tmp_path / "w.npz", verbose=False)


def test_resume_of_a_missing_or_non_run_folder_exits_2(tmp_path):
    line = _one_line_error(_cli(tmp_path, "train", "--resume", tmp_path / "nope"), 2)
    assert "no such folder" in line and "nope" in line
    (tmp_path / "notarun").mkdir()
    line = _one_line_error(_cli(tmp_path, "--resume", tmp_path / "notarun", module=False), 2)
    assert "is not a run folder" in line and "checkpoint.npz" in line
    assert list((tmp_path / "notarun").iterdir()) == []
    _nothing_written(tmp_path)


def test_empty_yaml_says_so(tmp_path):
    for text in ("", "# only a comment\n"):
        (tmp_path / "empty.yaml").write_text(text)
        line = _one_line_error(_cli(tmp_path, "train", tmp_path / "empty.yaml"), 2)
        assert "is empty" in line and "model" in line and "missing" not in line
    _nothing_written(tmp_path)


def test_override_before_the_config_says_the_config_comes_first(tmp_path):
    cfg = _write(tmp_path)
    for module in (True, False):
        args = ("train", "train.epochs=2", cfg) if module else ("train.epochs=2", cfg)
        line = _one_line_error(_cli(tmp_path, *args, module=module), 2)
        assert "the config comes first" in line
    _nothing_written(tmp_path)


def test_header_names_the_starting_weights(tmp_path, capsys):
    T.train(_cfg(), out=tmp_path / "a", progress=False)
    head = capsys.readouterr().out.splitlines()[0]
    assert "from initial weights N(0, 0.005²), seed 1" in head
    T.train(_cfg(init_from=str(tmp_path / "a" / "weights_best.npz")), out=tmp_path / "b", progress=False)
    head = capsys.readouterr().out.splitlines()[0]
    assert f"from weights {tmp_path / 'a' / 'weights_best.npz'} (--init-from)" in head


# ---- project files ------------------------------------------------------------------------------

def test_license_citation_and_readme():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cp = configparser.ConfigParser()
    cp.read(ROOT / "setup.cfg")
    assert cp["metadata"]["license"] == "MIT"
    requires = cp["options"]["install_requires"]
    assert "matplotlib" in requires and "tqdm" in requires
    extras = cp["options.extras_require"]
    assert "tensorboardX" in extras["tensorboard"] and "mlflow" in extras["mlflow"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    pc = cff["preferred-citation"]
    assert "Attention-Gated Brain Propagation" in pc["title"] and pc["year"] == 2020
    assert [a["family-names"] for a in pc["authors"]] == ["Pozzi", "Bohté", "Roelfsema"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "https://proceedings.neurips.cc/paper/2020/hash/1abb1e1ea5f481b589da52303b091cbb-Abstract.html" in readme
    assert "https://github.com/isapome/BrainProp" in readme
    assert "pip install -e . && brainprop train configs/mnist_loccon.yaml" in readme   # the main job, copyable
    assert 'pip install -e ".[test' in readme
    assert "pip install -e .[" not in readme                 # unquoted extras fail in zsh


def test_eval_of_a_file_that_is_no_npz_or_is_missing_is_one_line(tmp_path):
    """Weights that are text, or a file that does not exist (with or without a config), get one
    line naming the file and what is wrong; no hint about pickles."""
    cfg = _write(tmp_path)
    (tmp_path / "junk.npz").write_text("hi\n")
    line = _one_line_error(_cli(tmp_path, "eval", cfg, "--load", "junk.npz"), 1)
    assert "junk.npz: not a .npz file" in line and "pickle" not in line, line
    for args in ((cfg, "--load", "nope.npz"), ("--load", "nope.npz")):
        assert _one_line_error(_cli(tmp_path, "eval", *args), 1) == "error: nope.npz: no such file"


def test_a_missing_weights_file_is_named_before_the_data_are_looked_for(tmp_path):
    """CIFAR's data are hundreds of MB: eval --load and train --init-from of a file that is not
    there say so first, not that the data are missing (nor fetch them)."""
    cfg, root = ROOT / "configs" / "cifar10_conv.yaml", f"data.root={tmp_path / 'no_data'}"
    for args in (("eval", cfg, "--load", "nope.h5", root), ("train", cfg, "--init-from", "nope.h5", root)):
        assert _one_line_error(_cli(tmp_path, *args), 1) == "error: nope.h5: no such file"
    _nothing_written(tmp_path)
