"""data.classes: a run on a subset of the classes, relabelled 0..k-1, recorded in
summary.json and the first line; a label the dataset lacks is one line, exit 2; a resume
cannot change the classes."""
import importlib
import json

import numpy as np
import pytest
import yaml

from brainprop_np.run.config import ConfigError
from brainprop_np.weights import read_weights
from test_everyday import _cfg, _cli, _nothing_written, _one_line_error

T = importlib.import_module("brainprop_np.run.train")


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    """One epoch on the MNIST sample's images of classes 8 and 3, in that order."""
    d = tmp_path_factory.mktemp("subset")
    cfg = _cfg(data={"classes": [8, 3]}, train={"epochs": 1})
    return T.train(cfg, out=d / "run", progress=False), d / "run"


def test_the_output_layer_has_k_units_and_the_labels_are_relabelled(subset_run):
    res, run = subset_run
    w = read_weights(run / "weights_best.npz")
    last = list(w)[-1]
    assert w[last]["kernel"].shape[-1] == 2
    ds = res.summary["dataset"]
    assert ds["n_classes"] == 2 and ds["classes"] == {"labels": [8, 3], "names": ["8", "3"]}
    from brainprop_np import data
    sample = data.load("mnist_sample")
    want = int(np.isin(sample.y_train, [8, 3]).sum())
    assert ds["n_train"] == min(256, want)
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["classes"] == [8, 3]


def test_summary_and_first_line_name_the_classes(tmp_path, capsys):
    T.train(_cfg(data={"classes": [0, 1, 7]}), out=tmp_path / "a", progress=False)
    head = capsys.readouterr().out.splitlines()[0]
    assert "on mnist_sample classes [0, 1, 7] as 0..2 (" in head, head
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["dataset"]["classes"] == {"labels": [0, 1, 7], "names": ["0", "1", "7"]}
    T.train(_cfg(), out=tmp_path / "b", progress=False)
    assert " classes " not in capsys.readouterr().out.splitlines()[0]
    assert "classes" not in json.loads((tmp_path / "b" / "summary.json").read_text())["dataset"]


def test_resume_refuses_other_classes(subset_run):
    _, run = subset_run
    with pytest.raises(ConfigError, match=r"^data.classes=\[3, 8\] is not allowed when resuming "
                                          r"\(the run used \[8, 3\]\)"):
        T.train(resume=run, overrides=["data.classes=[3, 8]", "train.epochs=2"], verbose=False)


@pytest.mark.parametrize("value, words", [
    ("[3, 12]", "data.classes=[3, 12] is not allowed for mnist_sample: its labels are 0..9; "
                "use at least 2 distinct labels from 0 to 9"),
    ("[3]", "data.classes=[3] is not allowed; use null (every class) or a list of at least 2"),
])
def test_bad_classes_are_one_line_exit_2_and_write_nothing(tmp_path, value, words):
    path = tmp_path / "ev.yaml"
    path.write_text(yaml.safe_dump(_cfg()))
    line = _one_line_error(_cli(tmp_path, "train", path, f"data.classes={value}"), 2)
    assert line == f"error: {words}" or line.startswith(f"error: {words}"), line
    _nothing_written(tmp_path)
