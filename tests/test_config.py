"""Config loading, validation (one-line messages naming key, value and what is allowed),
dotted overrides, preset defaults, and the shipped configs."""
from pathlib import Path

import pytest
import yaml

from brainprop_np.run.config import (DEFAULTS, RESUMABLE_KEYS, ConfigError, check_resume_overrides, dump,
                                 load_config, parse_override, read_yaml, resolve)
from brainprop_np.presets import PRESET_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
PAIRS = ["mnist_dense", "mnist_conv", "mnist_loccon", "cifar10_loccon", "cifar10_conv", "cifar10_deep",
         "cifar100_loccon", "cifar100_conv", "cifar100_deep", "tinyimagenet_deep"]
BASE = {"model": "conv", "data": {"name": "mnist"}}


def _err(raw=None, overrides=()):
    with pytest.raises(ConfigError) as e:
        resolve(BASE if raw is None else raw, overrides)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_every_published_pair_and_the_quickstart_ship():
    names = {p.stem for p in CONFIGS}
    assert set(PAIRS) | {"quickstart"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg["name"] == path.stem
    if path.stem == "quickstart":
        assert cfg["data"]["name"] == "mnist_sample" and cfg["model"] == "loccon"
        return
    dataset, model = path.stem.split("_")
    t = cfg["train"]
    assert (cfg["model"], cfg["data"]["name"], cfg["algorithm"], cfg["seed"]) == (model, dataset, "brainprop", 1)
    assert (t["lr"], t["lr_halve_every"], t["epochs"], t["patience"], t["min_delta"]) == (0.1, 100, 500, 45, 0.001)
    assert t["batch_size"] == (32 if model == "loccon" else 128)
    assert t["init_std"] == (0.01 if model == "dense" else 0.005)
    assert t["l2"] == (5e-4 if model == "deep" else 0.0)
    assert cfg["brainprop"]["epsilon"] == 0.02
    assert cfg["data"]["holdout"] == 0
    assert cfg["data"]["fallback"] == ("mnist_sample" if dataset == "mnist" else "none")
    assert cfg["data"]["label_mode"] == ("fine" if dataset == "cifar100" else None)
    assert load_config(path, ["algorithm=ebp"])["algorithm"] == "ebp"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_leave_the_preset_settings_to_the_model(path):
    train = (yaml.safe_load(path.read_text()) or {}).get("train") or {}
    for key in ("batch_size", "l2", "init_std"):
        assert train.get(key) is None, (path.stem, key, train.get(key))


@pytest.mark.parametrize("stem, model", [("cifar10_conv", "deep"), ("mnist_conv", "loccon"),
                                         ("cifar10_deep", "conv"), ("mnist_dense", "conv"),
                                         ("quickstart", "conv")])
def test_model_override_brings_its_preset_settings(stem, model):
    cfg = load_config(ROOT / "configs" / f"{stem}.yaml", [f"model={model}"])
    for key in ("batch_size", "l2", "init_std"):
        assert cfg["train"][key] == PRESET_SETTINGS[model][key], (stem, model, key)
    written = yaml.safe_load(dump(cfg))["train"]          # what the run folder's config.yaml holds
    assert (written["batch_size"], written["l2"], written["init_std"]) == \
        tuple(PRESET_SETTINGS[model][k] for k in ("batch_size", "l2", "init_std"))
    assert load_config(ROOT / "configs" / f"{stem}.yaml", [f"model={model}", "train.batch_size=7"])["train"][
        "batch_size"] == 7


@pytest.mark.parametrize("model", list(PRESET_SETTINGS))
def test_preset_defaults_fill_what_is_left_out(model):
    cfg = resolve({"model": model, "data": {"name": "cifar10"}})
    for key in ("batch_size", "init_std", "l2"):
        assert cfg["train"][key] == PRESET_SETTINGS[model][key]
    cfg = resolve({"model": model, "data": {"name": "cifar10"}}, ["train.batch_size=7", "train.l2=0.01"])
    assert cfg["train"]["batch_size"] == 7 and cfg["train"]["l2"] == 0.01


def test_layer_list_model_and_defaults():
    specs = [{"type": "flatten"}, {"type": "dense", "units": 10}, {"type": "relu"}]
    cfg = resolve({"model": specs, "data": {"name": "mnist_sample"}})
    assert cfg["model"] == specs and cfg["name"] == "mnist_sample_custom"
    assert (cfg["train"]["batch_size"], cfg["train"]["init_std"], cfg["train"]["l2"]) == (128, 0.005, 0.0)
    assert cfg["data"]["fallback"] == "none" and cfg["device"] == "auto" and cfg["dtype"] == "float32"
    assert set(cfg) == set(DEFAULTS)


def test_resolved_config_round_trips():
    cfg = load_config(ROOT / "configs" / "cifar100_deep.yaml", ["train.epochs=3"])
    again = resolve(yaml.safe_load(dump(cfg)))
    assert again == cfg


def test_overrides_are_yaml_scalars():
    cfg = resolve(BASE, ["train.epochs=2", "data.limit_train=6000", "algorithm=ebp", "device=cpu",
                         "data.root=/some/where", "train.lr=1e-2", "train.patience=null",
                         "data.download=false", "model=[{type: flatten}, {type: dense, units: 5}]"])
    assert cfg["train"]["epochs"] == 2 and cfg["data"]["limit_train"] == 6000
    assert cfg["algorithm"] == "ebp" and cfg["device"] == "cpu" and cfg["data"]["root"] == "/some/where"
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["patience"] is None
    assert cfg["data"]["download"] is False and cfg["model"][1] == {"type": "dense", "units": 5}
    assert parse_override("name=a=b") == ("name", "a=b")


@pytest.mark.parametrize("overrides, words", [
    (["train.epoch=2"], ["unknown key train.epoch", "epochs"]),
    (["foo=1"], ["unknown key foo", "algorithm"]),
    (["data.nme=mnist"], ["unknown key data.nme", "limit_train"]),
    (["train.epochs=two"], ["train.epochs='two'", "integer >= 1"]),
    (["train.epochs=0"], ["train.epochs=0", "integer >= 1"]),
    (["train.epochs=1.5"], ["train.epochs=1.5", "integer"]),
    (["train.lr=-0.1"], ["train.lr=-0.1", "> 0"]),
    (["train.lr=true"], ["train.lr=True", "number"]),
    (["brainprop.epsilon=1.5"], ["brainprop.epsilon=1.5", "<= 1"]),
    (["algorithm=sgd"], ["algorithm='sgd'", "brainprop, ebp"]),
    (["device=tpu"], ["device='tpu'", "auto, cpu, gpu"]),
    (["dtype=float16"], ["dtype='float16'", "float32, float64"]),
    (["seed=-1"], ["seed=-1", "integer"]),
    (["model=resnet"], ["model='resnet'", "dense, conv, loccon, deep"]),
    (["model=[{type: dense}]"], ["model", "units"]),
    (["model=[{type: conv3d, filters: 2}]"], ["conv3d", "conv2d"]),
    (["data.name=svhn"], ["data.name='svhn'", "cifar10"]),
    (["data.fallback=yes"], ["data.fallback=True", "mnist_sample, none"]),
    (["data.download=maybe"], ["data.download='maybe'", "true or false"]),
    (["data.limit_train=0"], ["data.limit_train=0", ">= 1"]),
    (["data.holdout=-5"], ["data.holdout=-5", ">= 0"]),
    (["data.label_mode=coarse"], ["data.label_mode='coarse'", "cifar100"]),
    (["data.name=cifar10", "data.fallback=mnist_sample"], ["data.fallback='mnist_sample'", "none"]),
    (["train=5"], ["train=5", "section"]),
    (["algorithm.x=1"], ["algorithm", "not a section"]),
    (["epochs"], ["'epochs'", "key=value"]),
    (["=3"], ["key=value"]),
    (["train.epochs=[1"], ["train.epochs", "YAML"]),
    (["train.patience=-1"], ["train.patience=-1", "null"]),
    (["name=a/b"], ["name='a/b'", "without '/'"]),
    (["data.classes=[3]"], ["data.classes=[3]", "at least 2 distinct class labels"]),
    (["data.classes=[3, 3]"], ["data.classes=[3, 3]", "distinct"]),
    (["data.classes=[-1, 2]"], ["data.classes=[-1, 2]", "integers >= 0"]),
    (["data.classes=3"], ["data.classes=3", "a list"]),
    (["data.classes=[a, b]"], ["data.classes=['a', 'b']", "integers"]),
    (["data.classes=[1.0, 2]"], ["data.classes=[1.0, 2]", "integers"]),
])
def test_bad_values_name_key_value_and_what_is_allowed(overrides, words):
    msg = _err(overrides=overrides)
    for w in words:
        assert w in msg, (w, msg)


def test_bad_structures():
    assert "model is missing" in _err({"data": {"name": "mnist"}})
    assert "data.name is missing" in _err({"model": "conv"})
    assert "data=['mnist'] is not allowed" in _err({"model": "conv", "data": ["mnist"]})
    assert "list" in _err(["model", "conv"])
    assert "unknown key trian" in _err({"model": "conv", "data": {"name": "mnist"}, "trian": {}})


def test_layer_spec_errors_say_model_once():
    assert _err(overrides=["model=[{type: dense}]"]) == "model layer 0 (dense): missing key 'units'"
    msg = _err(overrides=["model=[{type: flatten}, {type: conv2d, filters: 2, kernel: 4}]"])
    assert msg.startswith("model layer 1 (conv2d): kernel=4 is not allowed"), msg


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: conv\ndata: {name: mnist\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)


def test_resume_may_change_only_some_keys():
    old = resolve(BASE)
    check_resume_overrides(old, resolve(old, ["train.epochs=900", "device=cpu", "train.patience=3"]))
    with pytest.raises(ConfigError, match="train.batch_size=64 is not allowed when resuming"):
        check_resume_overrides(old, resolve(old, ["train.batch_size=64"]))
    with pytest.raises(ConfigError, match=r"data.classes=\[3, 8\] is not allowed when resuming"):
        check_resume_overrides(old, resolve(old, ["data.classes=[3, 8]"]))


def test_classes_are_a_list_of_ints_and_null_by_default():
    assert resolve(BASE)["data"]["classes"] is None
    assert resolve(BASE, ["data.classes=[8, 3, 0]"])["data"]["classes"] == [8, 3, 0]
    assert "data.classes" not in RESUMABLE_KEYS


def test_a_key_given_twice_is_an_error_naming_the_key_and_the_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("model: conv\ndata: {name: mnist}\ntrain:\n  epochs: 1\n  lr: 0.1\n  epochs: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "'epochs' twice" in msg and "line 4 and line 6" in msg and str(path) in msg, msg
    path.write_text("model: conv\nmodel: dense\ndata: {name: mnist}\n")
    with pytest.raises(ConfigError, match="'model' twice .*line 1 and line 2"):
        load_config(path)
    path.write_text("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n")     # a merge key's values may be overridden
    assert yaml.safe_load(path.read_text()) == read_yaml(path)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: conv\ndata: {name: mnist}\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml' is not UTF-8 text \(byte 0xe9"):
        load_config(path)


@pytest.mark.parametrize("text", [b"model: conv\ndata: {name: mnist}\ntrain: {epochs: 1, epochs: 3}\n",
                                  b"model: conv\ndata: {name: mnist}\nname: \xff\n"])
def test_bad_files_exit_2_through_the_command(tmp_path, capsys, text):
    from brainprop_np.cli import run_main
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    assert run_main([str(path), "--print-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config file") and "bad.yaml" in err[0], err
