"""`run.py CONFIG --explain`: one trial traced layer by layer, its check, its figures,
and the learning-curve plot of several runs."""
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np.teach.explain import explain_config, explain_trial, format_trace

ROOT = Path(__file__).resolve().parents[1]
KERAS = ROOT.parent / "shared" / "keras_weights"
OFFLINE = ["data.root=/nonexistent/brainprop-data"]      # forces the bundled MNIST sample


def run_cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("BRAINPROP_DATA", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_cli_explain_offline_on_the_bundled_sample():
    r = run_cli("configs/mnist_conv.yaml", "--explain", "--train-steps", "0", *OFFLINE)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "mnist_sample" in out and "bundled MNIST sample" in out
    for word in ("label", "Q-values", "P(choose)", "choice", "reward", "delta", "brain_prop_layer",
                 "conv2d_1", "batch_normalization", "‖tag‖", "‖ΔW‖"):
        assert word in out, word
    m = re.search(r"by finite differences on (\d+) weights: max relative gap ([0-9.e+-]+)", out)
    assert m and int(m.group(1)) > 20
    assert float(m.group(2)) < 1e-6
    assert "ΔW agrees" in out


@pytest.mark.parametrize("model", ["conv", "loccon", "dense"])
def test_explained_delta_and_update_equal_rule_gradients(model):
    trace, text, _ = explain_config(ROOT / f"configs/mnist_{model}.yaml", OFFLINE, image_index=3,
                                    say=lambda s: None)
    ds = bp.data.load("mnist_sample")
    x = ds.x_test[3:4].astype(np.float64) / 255.0
    net = bp.build_network(model, (28, 28, 1), 10, seed=1, device="cpu", dtype="float64",
                           init_std=0.01 if model == "dense" else 0.005)
    grads = bp.BrainProp().gradients(net, x, ds.y_test[3:4], actions=[trace.action], train=False)
    q = net.forward(x, train=False)[0]
    delta = float(ds.y_test[3] == trace.action) - q[trace.action]
    assert trace.delta == pytest.approx(delta, rel=1e-12, abs=1e-15)
    assert f"delta            {trace.delta:+.6f}" in text
    for lt in trace.layers:
        for p, upd in lt.updates.items():
            np.testing.assert_allclose(upd, -trace.lr * grads[lt.name][p], rtol=1e-9, atol=1e-18)
    assert trace.fd_error < 1e-6 and trace.fd_checked > 0


@pytest.mark.skipif(not (KERAS / "MNIST_loccon_BrainProp_seed1_ep1_n60000.h5").is_file(),
                    reason="../shared/keras_weights absent")
def test_explain_trained_weights_and_figures(tmp_path):
    pytest.importorskip("h5py")
    pytest.importorskip("matplotlib")
    r = run_cli("configs/mnist_loccon.yaml", "--explain", "--load",
                str(KERAS / "MNIST_loccon_BrainProp_seed1_ep1_n60000.h5"), "--figures", str(tmp_path), *OFFLINE)
    assert r.returncode == 0, r.stderr
    assert "ΔW agrees" in r.stdout
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["feedback_input.png", "feedback_locally_connected2d.png", "feedback_locally_connected2d_1.png"]
    for p in tmp_path.glob("*.png"):
        assert png_size(p) == (720, 400)


def test_trace_counts_only_the_chosen_unit_at_the_top():
    net = bp.build_network("dense", (6, 6, 1), 4, seed=2, device="cpu", dtype="float64", init_std=0.3)
    x = np.random.default_rng(0).random((1, 6, 6, 1))
    t = explain_trial(net, x, 1, epsilon=0.0)
    top = t.layers[0]
    assert top.name == "brain_prop_layer" and top.fb_units == 1 and top.fb_total == 4
    assert t.action == int(np.argmax(t.q)) and not t.explored
    assert np.count_nonzero(top.updates["kernel"][:, [c for c in range(4) if c != t.action]]) == 0
    text = format_trace(t)
    assert "greedy" in text and "agrees" in text


def _block_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)


def test_figures_without_matplotlib_say_how_to_install(monkeypatch, tmp_path):
    _block_matplotlib(monkeypatch)
    with pytest.raises(RuntimeError, match=r"pip install matplotlib"):
        explain_config(ROOT / "configs/mnist_dense.yaml", OFFLINE, figures=tmp_path, say=lambda s: None)
    trace, text, paths = explain_config(ROOT / "configs/mnist_dense.yaml", OFFLINE, say=lambda s: None)
    assert paths == [] and "agrees" in text                 # nothing else fails


def test_cli_figures_without_matplotlib(tmp_path):
    shim = tmp_path / "shim"
    (shim / "matplotlib").mkdir(parents=True)
    (shim / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib blocked for this test')\n")
    r = run_cli("configs/mnist_dense.yaml", "--explain", "--train-steps", "0", "--figures", str(tmp_path / "f"), *OFFLINE,
                env_extra={"PYTHONPATH": f"{shim}{os.pathsep}{ROOT}"})
    assert r.returncode == 1
    assert "pip install matplotlib" in r.stderr and "Traceback" not in r.stderr


def _fake_run(folder, name, algorithm, accs):
    folder.mkdir(parents=True)
    rows = ["epoch,lr,train_loss,train_acc,val_acc,epoch_seconds"]
    rows += [f"{i + 1},0.1,0.5,{a - 0.01},{a},1.0" for i, a in enumerate(accs)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    best = int(np.argmax(accs)) + 1
    (folder / "summary.json").write_text(f'{{"best_epoch": {best}, "best_val_acc": {max(accs)}}}')
    (folder / "config.yaml").write_text(f"name: {name}\nalgorithm: {algorithm}\n")
    return folder


def test_plot_several_runs(tmp_path):
    pytest.importorskip("matplotlib")
    a = _fake_run(tmp_path / "a", "mnist_conv", "brainprop", [0.5, 0.8, 0.9, 0.88])
    b = _fake_run(tmp_path / "b", "mnist_conv", "ebp", [0.6, 0.85, 0.92])
    out = tmp_path / "curves.png"
    r = subprocess.run([sys.executable, "-m", "brainprop_np", "plot", str(a), str(b), "--out", str(out), "--train"],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert png_size(out) == (720, 450)
    from brainprop_np.run.plot import read_run
    label, rows, best = read_run(a)
    assert label == "mnist_conv brainprop" and best == 3 and len(rows) == 4
    (a / "config.yaml").write_text("name: mnist_conv\nalgorithm: brainprop\nseed: 7\n")
    assert read_run(a)[0] == "mnist_conv brainprop seed 7"


def _config_run(folder, accs, name="mnist_loccon", algorithm="brainprop", limit_train="null"):
    """A run folder like run.py writes: history.csv, summary.json and a resolved, nested config.yaml."""
    _fake_run(folder, name, algorithm, accs)
    (folder / "config.yaml").write_text(
        f"# The resolved config of this run\nname: {name}\nalgorithm: {algorithm}\nseed: 1\n"
        f"data:\n  name: mnist\n  limit_train: {limit_train}\n  holdout: 0\ntrain:\n  epochs: 1\n  lr: 0.1\n")
    return folder


def _drawn(monkeypatch):
    """The figures saved from now on (Figure.savefig still writes them)."""
    from matplotlib.figure import Figure
    figs, real = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figs.append(self), real(self, *a, **k))[1])
    return figs


def test_plot_labels_tell_apart_runs_of_one_config(tmp_path):
    from brainprop_np.run.plot import run_labels
    base = "mnist_loccon brainprop seed 1"
    a = _config_run(tmp_path / "runs/mnist_loccon-brainprop/20261207-141137", [0.37])
    b = _config_run(tmp_path / "runs/mnist_loccon-brainprop/20261207-141219", [0.36])        # same config as a
    lim = _config_run(tmp_path / "runs/mnist_loccon-brainprop/20261207-150000", [0.3], limit_train=2000)
    ebp = _config_run(tmp_path / "runs/mnist_loccon-ebp/20261207-141137", [0.4], algorithm="ebp")
    assert run_labels([a, lim, ebp]) == [f"{base} (data.limit_train=null)", f"{base} (data.limit_train=2000)",
                                         "mnist_loccon ebp seed 1"]          # what differs; unique stays
    assert run_labels([a, b]) == [f"{base} (20261207-141137)", f"{base} (20261207-141219)"]  # identical configs
    assert run_labels([a, b, lim, ebp]) == [f"{base} (data.limit_train=null, 20261207-141137)",
                                            f"{base} (data.limit_train=null, 20261207-141219)",
                                            f"{base} (data.limit_train=2000)", "mnist_loccon ebp seed 1"]
    assert run_labels([a, ebp]) == [base, "mnist_loccon ebp seed 1"]
    same_name = _config_run(tmp_path / "elsewhere/20261207-141137", [0.37])      # same config, same folder name
    assert run_labels([a, same_name]) == [f"{base} (mnist_loccon-brainprop/20261207-141137)",
                                          f"{base} (elsewhere/20261207-141137)"]


def test_plot_of_one_epoch_runs_has_distinct_labels_whole_ticks_and_readable_notes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from brainprop_np.run.plot import main
    runs = [_config_run(tmp_path / "a", [0.372]), _config_run(tmp_path / "b", [0.41], limit_train=2000)]
    figs = _drawn(monkeypatch)
    assert main([str(r) for r in runs] + ["--out", str(tmp_path / "c.png")]) == 0
    ax = figs[0].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "mnist_loccon brainprop seed 1 (data.limit_train=null)", "mnist_loccon brainprop seed 1 (data.limit_train=2000)"]
    lo, hi = ax.get_xlim()
    assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1.0]              # not 0.945 … 1.050
    renderer = FigureCanvasAgg(figs[0]).get_renderer()
    figs[0].draw(renderer)
    legend = ax.get_legend().get_window_extent(renderer)
    notes = [t for t in ax.texts if "@ 1" in t.get_text()]
    assert len(notes) == 2 and not any(legend.overlaps(t.get_window_extent(renderer)) for t in notes)
    assert not legend.overlaps(ax.get_window_extent(renderer))                 # it covers no curve either
    assert png_size(tmp_path / "c.png") == (720, 450)


def test_plot_rejects_a_folder_without_history(tmp_path):
    r = subprocess.run([sys.executable, "-m", "brainprop_np", "plot", str(tmp_path), "--out", str(tmp_path / "x.png")],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert r.returncode == 1 and "no history.csv" in r.stderr


def test_the_note_on_missing_data_is_complete():
    notes = []
    explain_config(ROOT / "configs/mnist_dense.yaml", OFFLINE, say=notes.append)
    assert notes == ["note: no usable mnist data in /nonexistent/brainprop-data; explaining on the bundled "
                     "MNIST sample instead (set data.root=DIR or $BRAINPROP_DATA)"]


def test_untied_explain_pretrains_the_untied_network(tmp_path, monkeypatch):
    """configs/untied/: pre-training builds the network with its feedback weights (it used to
    pre-train a symmetric one, then fail on 'lack feedback_kernel'), cached under its own key."""
    from brainprop_np.weights import read_weights
    monkeypatch.setenv("BRAINPROP_CACHE", str(tmp_path))
    config = ROOT / "configs/untied/mnist_conv_random.yaml"
    _, text, _ = explain_config(config, OFFLINE, train_steps=3, say=lambda s: None)
    assert "after 3 BrainProp steps" in text and "trained now" in text and "untied feedback" in text
    cached = list(tmp_path.glob("mnist_conv_random-*.npz"))
    assert len(cached) == 1 and "feedback_kernel" in read_weights(cached[0])["conv2d"]
    r = run_cli(str(config), "--explain", "--train-steps", "3", *OFFLINE, env_extra={"BRAINPROP_CACHE": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "read from the cache" in r.stdout and "feedback_kernel" not in r.stderr


def test_the_cache_key_covers_what_builds_the_network():
    from brainprop_np.run.setup import as_config
    from brainprop_np.teach.explain import cache_key
    ds = bp.data.load("mnist_sample")

    def key(*overrides, steps=200, images=ds):
        return cache_key(as_config(ROOT / "configs/mnist_conv.yaml", list(overrides)), images, steps, 32)

    modes = ("symmetric", "random", "sign", "kolen_pollack", "dfa")
    assert len({key(f"feedback={m}") for m in modes}) == len(modes)
    changes = ["seed=2", "train.lr=0.05", "train.l2=0.001", "train.init_std=0.01", "brainprop.epsilon=0.1",
               "feedback_decay=0.01", "feedback_sign=random"]
    fewer = type("Fewer", (), {"name": ds.name, "x_train": ds.x_train[:1000]})()    # the dataset's size
    assert len({key(c) for c in changes} | {key(), key(steps=100), key(images=fewer)}) == len(changes) + 3
    assert key("dtype=float64") == key() == key("kernels=numpy")       # not what builds the weights


def test_explain_with_another_networks_weights_names_the_file(tmp_path):
    """--load of weights that do not fit the config's network, or of a missing file (absolute
    or relative path): one line that names the file once, exit status 1 as eval's."""
    import brainprop_np as bp
    from brainprop_np.weights import save_weights
    path = tmp_path / "dense.npz"
    save_weights(path, bp.build_network("dense", (28, 28, 1), 10, device="cpu"))
    r = run_cli("configs/mnist_loccon.yaml", "--explain", "--load", str(path), *OFFLINE)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: --load {path}: ") and "lacks" in lines[0], lines[0]
    r = run_cli("configs/mnist_loccon.yaml", "--explain", "--load", str(tmp_path / "nope.npz"), *OFFLINE)
    assert r.returncode == 1 and r.stderr.strip() == f"error: {tmp_path / 'nope.npz'}: no such file", r.stderr
    r = run_cli("configs/mnist_loccon.yaml", "--explain", "--load", "./nope.npz", *OFFLINE)
    assert r.returncode == 1 and r.stderr.strip() == "error: nope.npz: no such file", r.stderr
