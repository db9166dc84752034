"""scripts/pages.py: runs the generated sections train or read back. A finished run is read,
a folder made with other settings is refused, and a run that did not stop for good ends the
script instead of entering a table."""
import json
import types
from pathlib import Path

import pytest

import brainprop_np as bp
from script_loader import load_script


def _pages():
    return load_script("pages")


def _summary(stop_reason, epochs=3):
    return {"stop_reason": stop_reason, "epochs_run": epochs, "best_val_acc": 0.9}


def test_a_finished_run_is_read_not_trained(tmp_path, monkeypatch):
    pages = _pages()
    monkeypatch.setattr(bp, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    (tmp_path / "overrides.json").write_text(json.dumps(["seed=1"]))
    (tmp_path / "summary.json").write_text(json.dumps(_summary("max_epochs")))
    assert pages.train_or_read("c.yaml", tmp_path, ["seed=1"])["epochs_run"] == 3
    (tmp_path / "overrides.json").write_text(json.dumps(["seed=1", "data.root=/a"]))
    assert pages.train_or_read("c.yaml", tmp_path, ["seed=1", "data.root=/b"])["epochs_run"] == 3
    with pytest.raises(SystemExit, match="was made with other settings"):
        pages.train_or_read("c.yaml", tmp_path, ["seed=2", "data.root=/a"])


@pytest.mark.parametrize("resume", [False, True])
def test_an_interrupted_run_ends_the_script(tmp_path, monkeypatch, capsys, resume):
    """Ctrl-C or SIGTERM inside bp.train: exit 130 with the way on, whether the run was new or
    resumed from its checkpoint; the next call resumes it."""
    pages = _pages()
    calls = []

    def train(config=None, **kw):
        calls.append(kw.get("resume"))
        return types.SimpleNamespace(summary=_summary("interrupted", 2))
    monkeypatch.setattr(bp, "train", train)
    if resume:
        (tmp_path / "checkpoint.npz").write_bytes(b"")
        (tmp_path / "summary.json").write_text(json.dumps(_summary("interrupted", 1)))
    with pytest.raises(SystemExit) as stop:
        pages.train_or_read("c.yaml", tmp_path, ["seed=1"])
    assert stop.value.code == 130
    assert capsys.readouterr().err == (f"interrupted: {tmp_path} has 2 finished epochs and a checkpoint; "
                                       "run the same command again to continue\n")
    assert calls == [tmp_path if resume else None]


def test_a_run_with_a_non_finite_loss_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=r"stopped: non_finite_loss after epoch 4; its settings need changing"):
        _pages().stopped_for_good(tmp_path, _summary("non_finite_loss", 4))
    assert _pages().stopped_for_good(tmp_path, _summary("early_stopping"))["epochs_run"] == 3


def test_a_diverging_run_is_a_result_only_where_accepted(tmp_path, monkeypatch, capsys):
    """bp.train writes the run's files, then raises TrainingError on a non-finite loss: with
    accept including non_finite_loss the summary is returned (and read back next time without
    training); by default the error goes on."""
    from brainprop_np.run.failures import TrainingError
    from brainprop_np.run.stop_reasons import FINAL, NON_FINITE_LOSS
    pages = _pages()

    def train(config=None, out=None, **kw):
        (Path(out) / "summary.json").write_text(json.dumps(_summary(NON_FINITE_LOSS, 1)))
        raise TrainingError("the loss became nan in epoch 2")
    monkeypatch.setattr(bp, "train", train)
    accept = FINAL + (NON_FINITE_LOSS,)
    assert pages.train_or_read("c.yaml", tmp_path / "a", ["seed=1"], accept=accept)["epochs_run"] == 1
    assert capsys.readouterr().err == "error: the loss became nan in epoch 2\n"
    monkeypatch.setattr(bp, "train", lambda *a, **k: pytest.fail("a diverged run was trained again"))
    assert pages.train_or_read("c.yaml", tmp_path / "a", ["seed=1"], accept=accept)["epochs_run"] == 1
    monkeypatch.setattr(bp, "train", train)
    with pytest.raises(SystemExit, match="^error: the loss became nan in epoch 2$"):
        pages.train_or_read("c.yaml", tmp_path / "b", ["seed=1"])

    def no_data(config=None, out=None, **kw):
        raise TrainingError("mnist: no train-images-idx3-ubyte under /nowhere")
    monkeypatch.setattr(bp, "train", no_data)
    with pytest.raises(SystemExit, match="^error: mnist: no train-images"):
        pages.train_or_read("c.yaml", tmp_path / "c", ["seed=1"], accept=accept)


def test_the_one_epoch_table_gives_each_runs_thread_count(tmp_path):
    """keras_reference_results' one-epoch table: a CPU-threads column from each summary.json and
    the sentence saying how to train the same bits."""
    script = load_script("keras_reference_results")
    for arch in ("dense", "conv"):
        (tmp_path / f"MNIST_{arch}_BrainProp_seed1_ep1_n60000.json").write_text(
            json.dumps({"test_accuracy_from_pred_npy": 0.5}))
    summaries = {"dense": {"best_val_acc": 0.2, "kernels": "fast", "threads": 2},
                 "conv": {"best_val_acc": 0.9, "kernels": "fast", "threads": 1}}
    text = script.epoch_table(summaries, tmp_path, "python scripts/keras_reference_results.py --epoch")
    assert "| CPU threads |" in text
    assert "| 20.00 % | 50.00 % | fast | 2 |" in text and "| 90.00 % | 50.00 % | fast | 1 |" in text
    assert text.endswith(_pages().threads_note()) and "BRAINPROP_THREADS=N" in text


def test_keras_reference_results_without_its_folders_is_one_line(tmp_path, capsys):
    script = load_script("keras_reference_results")
    with pytest.raises(SystemExit) as e:
        script.main(["--weights", str(tmp_path / "none"), "--data", str(tmp_path)])
    assert str(e.value).startswith(f"error: --weights {tmp_path / 'none'}: no such folder; ")
