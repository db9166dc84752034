"""scripts/seeds.py: seed lists, skipping finished runs, the mean (std) table."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "seeds.py"
spec = importlib.util.spec_from_file_location("seeds", SCRIPT)
seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seeds)


def test_parse_seeds():
    assert seeds.parse_seeds("1-3") == [1, 2, 3]
    assert seeds.parse_seeds("1,4,7-8") == [1, 4, 7, 8]
    for bad in ("x", "2-1", "1-"):
        with pytest.raises(seeds.SeedsError, match="--seeds"):
            seeds.parse_seeds(bad)


def test_bad_arguments_exit_2_with_one_line(capsys):
    assert seeds.main(["configs/mnist_conv.yaml", "--seeds", "2-1"]) == 2
    assert seeds.main(["configs/mnist_conv.yaml", "--seeds", "1", "seed=3"]) == 2
    assert seeds.main(["configs/mnist_conv.yaml", "--seeds", "1", "train.epochz=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_a_folder_made_with_other_settings_is_refused(tmp_path, monkeypatch, capsys):
    from brainprop_np.config import dump, load_config
    d = tmp_path / "mnist_conv" / "seed1"
    d.mkdir(parents=True)
    cfg = load_config(ROOT / "configs/mnist_conv.yaml", ["train.epochs=1", "seed=1"])
    (d / "config.yaml").write_text(dump(cfg))
    (d / "summary.json").write_text(json.dumps({"best_val_acc": 0.9, "best_epoch": 1,
                                                "mean_epoch_seconds": 3.0, "stop_reason": "max_epochs"}))
    monkeypatch.setattr(seeds.subprocess, "call", lambda *a, **k: pytest.fail("must not run"))
    assert seeds.main([str(ROOT / "configs/mnist_conv.yaml"), "--seeds", "1", "train.epochs=2",
                       "--out", str(tmp_path)]) == 2
    assert "other settings (train differ)" in capsys.readouterr().err
    assert seeds.main([str(ROOT / "configs/mnist_conv.yaml"), "--seeds", "1", "train.epochs=1",
                       "--out", str(tmp_path)]) == 0


def test_finished_runs_are_read_not_rerun(tmp_path, monkeypatch, capsys):
    for seed, acc, ep in [(1, 0.99, 60), (2, 0.98, 70)]:
        d = tmp_path / "mnist_conv" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"best_val_acc": acc, "best_epoch": ep,
                                                    "mean_epoch_seconds": 3.0, "stop_reason": "early_stopping"}))
    monkeypatch.setattr(seeds.subprocess, "call", lambda *a, **k: pytest.fail("a finished seed was rerun"))
    assert seeds.main([str(ROOT / "configs/mnist_conv.yaml"), "--seeds", "1-2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist_conv: 98.50 (0.71) % over 2 seeds; best epoch 65 (7)" in out


def test_unfinished_run_is_resumed(tmp_path, monkeypatch):
    d = tmp_path / "mnist_conv" / "seed1"
    d.mkdir(parents=True)
    (d / "checkpoint.npz").write_bytes(b"")
    calls = []
    monkeypatch.setattr(seeds.subprocess, "call", lambda cmd: calls.append(cmd) or 130)
    assert seeds.main([str(ROOT / "configs/mnist_conv.yaml"), "--seeds", "1", "--out", str(tmp_path)]) == 130
    assert calls and "--resume" in calls[0] and str(d) in calls[0]
