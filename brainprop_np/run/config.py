"""Run configurations: YAML loading, validation with one-line messages, dotted overrides.

A config is a YAML mapping. Every key is optional except `model` and `data.name`; what
is left out takes the default below, and `train.batch_size`, `train.init_std` and
`train.l2` left out (or null) take the preset's values from `PRESET_SETTINGS` when
`model` names a preset (128 / 0.005 / 0 for a layer list). The shipped configs leave
them null, so that `model=deep` on the command line also brings deep's L2 (and
`model=loccon` its batch of 32); the run folder's config.yaml holds the resolved values.

    name: mnist_conv          # run name; default: the file's stem. Run folder runs/<name>/<time>
    algorithm: brainprop      # brainprop | ebp (the error-backpropagation baseline)
    device: auto              # auto | cpu | gpu   (auto: the GPU when CuPy sees one)
    kernels: auto             # CPU kernel set: auto (fast when numba imports) | fast | numpy (the reference)
    dtype: float32            # float32 | float64
    seed: 1                   # integer >= 0: weights, shuffling, exploration, dropout
    model: conv               # a preset (dense | conv | loccon | deep) or a list of layer specs
    init_from: null           # path of weights (.npz of this project or Keras .h5) to start from
    feedback: symmetric       # feedback weights: symmetric (the paper) | random | sign | kolen_pollack | dfa
                              # (per layer: a `feedback` key in a conv2d / locally_connected2d / dense spec)
    feedback_decay: 0.001     # kolen_pollack: weight decay λ on both W and B (W ← W(1 − lr·λ) − lr·tag);
                              # W − B shrinks by (1 − lr·λ) a step: to 6% in 60 MNIST epochs at lr 0.1
    feedback_sign: rms        # sign: |B| = RMS of the layer's W (uSF) | random: a fixed |R| (frSF)
    alignment: true           # untied feedback: angles W–B and update–gradient per layer and epoch
                              # on one fixed batch, in alignment.csv (false: off)
    data:
      name: mnist             # mnist | fashion_mnist | cifar10 | cifar100 | tinyimagenet | mnist_sample
      root: null              # folder holding the data; null: $BRAINPROP_DATA, else ~/.cache/brainprop_np
      download: true          # download missing files from the official sources
      fallback: none          # mnist_sample | none: what to train on when MNIST cannot be had
      limit_train: null       # use only the first N training images (null: all)
      limit_test: null        # use only the first N test images (null: all)
      holdout: 0              # N training images held out for validation (0: the test set validates)
      label_mode: null        # CIFAR-100 only: fine (100 classes, default) | coarse (20)
    brainprop:
      epsilon: 0.02           # exploration probability
    train:
      epochs: 500             # most epochs
      batch_size: null        # null: the preset's (128; loccon 32)
      lr: 0.1                 # initial learning rate of plain SGD
      lr_halve_every: 100     # epochs between halvings of the learning rate (0: never)
      l2: null                # Keras l2(λ) on every kernel; null: the preset's (deep 5e-4, else 0)
      init_std: null          # weights ~ N(0, init_std²); null: the preset's (dense 0.01, else 0.005)
      patience: 45            # early stopping: epochs without improvement (null: never stop early)
      min_delta: 0.001        # improvement means val_acc > best + min_delta (Keras EarlyStopping)
      eval_batch_size: 256    # images per batch when evaluating
    log:
      tensorboard: false      # TensorBoard event files in the run folder (pip install -e ".[tensorboard]")
      mlflow: null            # null | true | a tracking URI or folder: one MLflow run per training run

API:
    cfg = load_config("configs/mnist_conv.yaml", ["train.epochs=2", "device=cpu"])
    cfg = resolve(raw_dict, overrides=(), name="fallback-name")
Both return a new, fully resolved dict (every key present) or raise ConfigError, whose
message is one line naming the key, the value and what is allowed.
"""
import copy
import re
from pathlib import Path

import yaml

from ..presets import PRESET_SETTINGS, PRESETS

ALGORITHMS = ("brainprop", "ebp")
FEEDBACK_MODES = ("symmetric", "random", "sign", "kolen_pollack", "dfa")   # = feedback.MODES
SIGN_SCALES = ("rms", "random")
DEVICES = ("auto", "cpu", "gpu")
KERNEL_SETS = ("auto", "fast", "numpy")
DTYPES = ("float32", "float64")
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "tinyimagenet", "mnist_sample")
FALLBACKS = ("mnist_sample", "none")
LABEL_MODES = ("fine", "coarse")

# Defaults; None for the three per-preset settings means "take the preset's".
DEFAULTS = {
    "name": None,
    "algorithm": "brainprop",
    "device": "auto",
    "kernels": "auto",
    "dtype": "float32",
    "seed": 1,
    "model": None,
    "init_from": None,
    "feedback": "symmetric",
    "feedback_decay": 0.001,
    "feedback_sign": "rms",
    "alignment": True,
    "data": {
        "name": None,
        "root": None,
        "download": True,
        "fallback": "none",
        "limit_train": None,
        "limit_test": None,
        "holdout": 0,
        "label_mode": None,
    },
    "brainprop": {"epsilon": 0.02},
    "train": {
        "epochs": 500,
        "batch_size": None,
        "lr": 0.1,
        "lr_halve_every": 100,
        "l2": None,
        "init_std": None,
        "patience": 45,
        "min_delta": 0.001,
        "eval_batch_size": 256,
    },
    "log": {"tensorboard": False, "mlflow": None},
}

# Keys that may change when a run is resumed (anything else would change the experiment).
RESUMABLE_KEYS = ("train.epochs", "train.patience", "train.min_delta", "train.eval_batch_size",
                  "device", "kernels", "data.root", "data.download", "init_from", "name", "log.tensorboard",
                  "log.mlflow", "alignment")


class ConfigError(ValueError):
    """A bad config, key or value; the message is one line (key, value, what is allowed)."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


# ---------------------------------------------------------------------------------------
# value checks: each returns the (possibly normalised) value or raises ConfigError

def _show(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(key, value, allowed):
    return ConfigError(f"{key}={_show(value)} is not allowed; {allowed}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


def _choice(options):
    def check(key, v):
        if not isinstance(v, str) or v not in options:
            raise _bad(key, v, f"use one of {', '.join(options)}")
        return v
    return check


def _int(lo, nullable=False, what=None):
    def check(key, v):
        if v is None and nullable:
            return None
        if not _is_int(v) or v < lo:
            raise _bad(key, v, what or (f"use an integer >= {lo}" + (" or null" if nullable else "")))
        return int(v)
    return check


_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _num(lo=None, hi=None, strict_lo=False, nullable=False, what=None):
    def check(key, v):
        if v is None and nullable:
            return None
        if isinstance(v, str) and _FLOAT_TEXT.match(v.strip()):
            v = float(v)       # PyYAML reads 5e-4 (no dot) as text; take it as the number it is
        ok = _is_num(v) and v == v and v not in (float("inf"), float("-inf"))
        if ok and lo is not None:
            ok = v > lo if strict_lo else v >= lo
        if ok and hi is not None:
            ok = v <= hi
        if not ok:
            if what:
                rule = what
            else:
                parts = []
                if lo is not None:
                    parts.append(f"> {lo}" if strict_lo else f">= {lo}")
                if hi is not None:
                    parts.append(f"<= {hi}")
                rule = "use a number " + " and ".join(parts) + (" or null" if nullable else "")
            raise _bad(key, v, rule)
        return float(v)
    return check


def _str(nullable=False, path=False):
    def check(key, v):
        if v is None and nullable:
            return None
        if not isinstance(v, str) or not v.strip():
            raise _bad(key, v, "use a non-empty string" + (" (a path)" if path else "") + (" or null" if nullable else ""))
        return v
    return check


def _bool(key, v):
    if not isinstance(v, bool):
        raise _bad(key, v, "use true or false")
    return v


def _name(key, v):
    if v is None:
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip() \
            or any(c in str(v) for c in "/\\") or str(v) in (".", ".."):
        raise _bad(key, v, "use a non-empty string without '/' (it names the run folder)")
    return str(v)


def _seed(key, v):
    if not _is_int(v) or v < 0 or v >= 2 ** 32:
        raise _bad(key, v, "use an integer from 0 to 4294967295")
    return int(v)


def _mlflow(key, v):
    if v is None or v is False:
        return None
    if v is True or (isinstance(v, str) and v.strip()):
        return v
    raise _bad(key, v, "use null (off), true (MLflow's default tracking URI) or a tracking URI or folder, "
                       "e.g. ./mlruns or http://localhost:5000")


def _model(key, v):
    if isinstance(v, str):
        if v not in PRESETS:
            raise _bad(key, v, f"use a preset ({', '.join(PRESETS)}) or a list of layer specs")
        return v
    if isinstance(v, list) and v:
        from ..network import make_layer   # validates each spec (type, keys, values)
        out = []
        for i, spec in enumerate(v):
            try:
                make_layer(spec, i)
            except (ValueError, TypeError) as e:   # make_layer's text starts "model layer i"
                msg = str(e)
                raise ConfigError(msg if msg.startswith(key) else f"{key}: {msg}") from None
            out.append(dict(spec))
        return out
    raise _bad(key, v, f"use a preset ({', '.join(PRESETS)}) or a non-empty list of layer specs")


SCHEMA = {
    "name": _name,
    "algorithm": _choice(ALGORITHMS),
    "device": _choice(DEVICES),
    "kernels": _choice(KERNEL_SETS),
    "dtype": _choice(DTYPES),
    "seed": _seed,
    "model": _model,
    "init_from": _str(nullable=True, path=True),
    "feedback": _choice(FEEDBACK_MODES),
    "feedback_decay": _num(0.0),
    "feedback_sign": _choice(SIGN_SCALES),
    "alignment": _bool,
    "data": {
        "name": _choice(DATASETS),
        "root": _str(nullable=True, path=True),
        "download": _bool,
        "fallback": lambda k, v: "none" if v is None else _choice(FALLBACKS)(k, v),
        "limit_train": _int(1, nullable=True),
        "limit_test": _int(1, nullable=True),
        "holdout": _int(0, what="use an integer >= 0 (training images held out for validation; 0: none)"),
        "label_mode": lambda k, v: None if v is None else _choice(LABEL_MODES)(k, v),
    },
    "brainprop": {"epsilon": _num(0.0, 1.0)},
    "train": {
        "epochs": _int(1),
        "batch_size": _int(1, nullable=True),
        "lr": _num(0.0, strict_lo=True),
        "lr_halve_every": _int(0, what="use an integer >= 0 (0: never halve)"),
        "l2": _num(0.0, nullable=True),
        "init_std": _num(0.0, strict_lo=True, nullable=True),
        "patience": _int(0, nullable=True, what="use an integer >= 0, or null for no early stopping"),
        "min_delta": _num(0.0),
        "eval_batch_size": _int(1),
    },
    "log": {"tensorboard": _bool, "mlflow": _mlflow},
}
REQUIRED = ("model", "data.name")


# ---------------------------------------------------------------------------------------
# overrides

def parse_override(text):
    """'train.epochs=2' → ('train.epochs', 2); the value is read as a YAML scalar (or flow list)."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"override {text!r} is not allowed; write key=value with a dotted key, e.g. train.epochs=2")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not allowed; write key=value with a dotted key, e.g. train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{key}={raw!r} is not allowed; the value is not valid YAML ({first})") from None
    return key, value


def apply_overrides(raw, overrides):
    """A copy of the mapping `raw` with each 'dotted.key=value' set (keys checked later)."""
    out = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node, schema = out, SCHEMA
        for i, part in enumerate(parts[:-1]):
            where = ".".join(parts[:i + 1])
            if not isinstance(schema, dict) or part not in schema:
                _unknown(where, value, schema, parts[:i])
            if not isinstance(schema[part], dict):
                raise ConfigError(f"{key}={_show(value)} is not allowed; {where} is a value, not a section")
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, schema = node[part], schema[part]
        last = parts[-1]
        if last not in schema:
            _unknown(key, value, schema, parts[:-1])
        if isinstance(schema[last], dict):
            raise ConfigError(f"{key}={_show(value)} is not allowed; {key} is a section: "
                              f"set one of its keys ({', '.join(key + '.' + k for k in schema[last])})")
        node[last] = value
    return out


def _unknown(key, value, schema, parent):
    section = ".".join(parent)
    where = f"in {section}" if section else "at the top level"
    raise ConfigError(f"unknown key {key} (value {_show(value)}); allowed {where}: {', '.join(schema)}")


# ---------------------------------------------------------------------------------------
# validation and resolution

def _validate(raw, schema, defaults, prefix=""):
    if not isinstance(raw, dict):
        what = prefix.rstrip(".") or "the config"
        raise ConfigError(f"{what}={_show(raw)} is not allowed; use a mapping of keys "
                          f"({', '.join(schema)})")
    for k, v in raw.items():
        if not isinstance(k, str) or k not in schema:
            _unknown(f"{prefix}{k}", v, schema, prefix.rstrip(".").split(".") if prefix else [])
    out = {}
    for k, check in schema.items():
        key = f"{prefix}{k}"
        if isinstance(check, dict):
            sub = raw.get(k)
            out[k] = _validate({} if sub is None else sub, check, defaults[k], key + ".")
        elif k not in raw:
            out[k] = copy.deepcopy(defaults[k])
        elif raw[k] is None and key in REQUIRED:
            out[k] = None          # reported as missing by resolve()
        else:
            out[k] = check(key, raw[k])   # None passes only where the key is nullable
    return out


def resolve(raw, overrides=(), name=None):
    """Validate the mapping `raw` (after `overrides`) and return the fully resolved config.

    name: the run name when the config has none (load_config passes the file's stem).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the config is a {type(raw).__name__}, not allowed; use a YAML mapping of keys "
                          f"({', '.join(SCHEMA)})")
    raw = apply_overrides(raw, overrides)
    cfg = _validate(raw, SCHEMA, DEFAULTS)
    for key in REQUIRED:
        section, _, leaf = key.rpartition(".")
        node = cfg[section] if section else cfg
        if node[leaf] is None:
            raise ConfigError(f"{key} is missing; it is required ({'a preset or a list of layer specs' if key == 'model' else 'one of ' + ', '.join(DATASETS)})")
    if cfg["name"] is None:
        model = cfg["model"] if isinstance(cfg["model"], str) else "custom"
        cfg["name"] = _name("name", name) if name else f"{cfg['data']['name']}_{model}"
    t = cfg["train"]
    preset = PRESET_SETTINGS.get(cfg["model"]) if isinstance(cfg["model"], str) else None
    for key, generic in (("batch_size", 128), ("init_std", 0.005), ("l2", 0.0)):
        if t[key] is None:
            t[key] = (preset[key] if preset else generic)
    t["init_std"], t["l2"] = float(t["init_std"]), float(t["l2"])
    d = cfg["data"]
    if d["label_mode"] is not None and d["name"] != "cifar100":
        raise ConfigError(f"data.label_mode={d['label_mode']!r} is not allowed for data.name={d['name']!r}; "
                          "use null (label_mode applies to cifar100 only)")
    if d["fallback"] == "mnist_sample" and d["name"] not in ("mnist", "mnist_sample"):
        raise ConfigError(f"data.fallback='mnist_sample' is not allowed for data.name={d['name']!r}; "
                          "use none (the MNIST sample only stands in for MNIST)")
    return cfg


def read_yaml(path):
    """The mapping in the YAML file `path` (ConfigError when unreadable or not YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({e.strerror or e}); "
                          "give the path of a YAML file, e.g. configs/mnist_conv.yaml") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{at}: {problem}; "
                          "fix the file (YAML mapping of keys)") from None
    if raw is None:
        raise ConfigError(f"config file {str(path)!r} is empty; it needs at least model and data.name, "
                          "e.g. model: conv and data: {name: mnist} (see configs/quickstart.yaml)")
    return raw


def load_config(path, overrides=()):
    """Read, override, validate and resolve the YAML config at `path`."""
    raw = read_yaml(path)
    return resolve(raw, overrides, name=Path(path).stem)


def check_resume_overrides(old, new):
    """Raise ConfigError when a resume override changes a key outside RESUMABLE_KEYS."""
    for key in flat_keys(old):
        if key in RESUMABLE_KEYS:
            continue
        a, b = get_key(old, key), get_key(new, key)
        if a != b:
            raise ConfigError(f"{key}={_show(b)} is not allowed when resuming (the run used {_show(a)}); "
                              f"a resume may change only {', '.join(RESUMABLE_KEYS)}")


def flat_keys(cfg, prefix=""):
    """Dotted names of every leaf key of a resolved config (model is one leaf)."""
    out = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            out += flat_keys(v, f"{prefix}{k}.")
        else:
            out.append(prefix + k)
    return out


def get_key(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def dump(cfg):
    """The resolved config as YAML text (block style, keys in schema order)."""
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, width=100)

