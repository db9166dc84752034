"""per_class.csv read back, the staircase (the first epoch each class reaches a threshold),
and `brainprop plot --classes` with its one-line errors. The runs that write per_class.csv
(exact across a resume, changing no other result) are tested in test_train.py."""
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainprop_np.run.per_class import class_columns, first_passes, read_per_class

ROOT = Path(__file__).resolve().parents[1]


def test_first_passes_is_the_staircase():
    epochs = np.array([1, 2, 3, 4])
    acc = np.array([[0.9, 0.1, 0.0], [0.95, 0.4, np.nan], [0.9, 0.6, 0.2], [0.99, 0.4, 0.3]])
    assert first_passes(epochs, acc, 0.5) == [1, 3, None]
    assert first_passes(epochs, acc, 0.35) == [1, 2, None]
    assert first_passes(epochs[:0], acc[:0], 0.5) == [None, None, None]


def _fake_run(folder, algorithm, acc):
    """A run folder with config.yaml and a per_class.csv of `acc` (E, C)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"name: mnist_dense\nalgorithm: {algorithm}\n")
    lines = [",".join(class_columns(acc.shape[1]))]
    lines += [",".join([str(e + 1)] + [repr(float(v)) for v in row]) for e, row in enumerate(acc)]
    (folder / "per_class.csv").write_text("\n".join(lines) + "\n")
    return folder


def _plot(*args):
    return subprocess.run([sys.executable, "-m", "brainprop_np", "plot", *map(str, args)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_classes_draws_runs_side_by_side(tmp_path):
    pytest.importorskip("matplotlib")
    steps = np.clip((np.arange(12)[:, None] - 1.2 * np.arange(10)[None, :]) / 3, 0, 1)    # a staircase
    bp = _fake_run(tmp_path / "bp", "brainprop", steps)
    ebp = _fake_run(tmp_path / "ebp", "ebp", np.full((8, 10), 0.9))
    epochs, acc = read_per_class(bp)
    assert acc.shape == (12, 10) and first_passes(epochs, acc, 0.5)[:3] == [3, 4, 5]
    r = _plot("--classes", bp, ebp, "--out", tmp_path / "c.png", "--threshold", "0.6")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {tmp_path / 'c.png'}" and _png_size(tmp_path / "c.png") == (840, 600)


def test_plot_classes_labels_runs_of_one_config_apart_and_ticks_whole_epochs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from brainprop_np.run.class_plot import plot_classes
    figs, real = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figs.append(self), real(self, *a, **k))[1])
    one_epoch = np.full((1, 10), 0.6)
    runs = [_fake_run(tmp_path / name, "brainprop", one_epoch) for name in ("20261207-141137", "20261207-141219")]
    (runs[1] / "config.yaml").write_text("name: mnist_dense\nalgorithm: brainprop\ndata:\n  limit_train: 2000\n")
    (runs[0] / "config.yaml").write_text("name: mnist_dense\nalgorithm: brainprop\ndata:\n  limit_train: null\n")
    ebp = _fake_run(tmp_path / "ebp", "ebp", one_epoch)
    plot_classes([*runs, ebp], tmp_path / "c.png")
    heat_maps, stairs = figs[0].axes[:3], figs[0].axes[-1]
    assert [ax.get_title().replace("\n", " ") for ax in heat_maps] == [
        "mnist_dense brainprop (data.limit_train=null)", "mnist_dense brainprop (data.limit_train=2000)",
        "mnist_dense ebp"]
    assert [t.get_text() for t in stairs.get_legend().get_texts()] == [ax.get_title().replace("\n", " ")
                                                                     for ax in heat_maps]
    for ax in (*heat_maps, stairs):
        lo, hi = ax.get_xlim()
        assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1.0], ax.get_xticks()


def test_plot_classes_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _plot("--classes", tmp_path / "empty", "--out", tmp_path / "c.png")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert f"{tmp_path / 'empty'}: no per_class.csv here" in r.stderr and "Traceback" not in r.stderr
    r = _plot("--classes", tmp_path / "empty", "--threshold", "1.5")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--threshold" in r.stderr
    r = _plot("--classes", "--alignment", tmp_path / "empty")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
