"""Run configurations: validation with one-line messages, dotted overrides, resolution.

A config is a YAML mapping. Every key is optional except `model` and `data.name`; what is
left out takes its default. The keys, their checks, defaults and descriptions are declared
once, in run/schema.py; docs/config.md lists them all (generated, with the JSON Schema
for editors, by scripts/config_reference.py). `train.batch_size`, `train.init_std` and
`train.l2` left out (or null) take the preset's values from `PRESET_SETTINGS` when
`model` names a preset (128 / 0.005 / 0 for a layer list). The shipped configs leave
them null, so that `model=deep` on the command line also brings deep's L2 (and
`model=loccon` its batch of 32); the run folder's config.yaml holds the resolved values.

API:
    cfg = load_config("configs/mnist_conv.yaml", ["train.epochs=2", "device=cpu"])
    cfg = resolve(raw_dict, overrides=(), name="fallback-name")
Both return a new, fully resolved dict (every key present) or raise ConfigError, whose
message is one line naming the key, the value and what is allowed.
"""
import copy
from pathlib import Path

import yaml

from ..presets import PRESET_SETTINGS
from .checks import ConfigError, show as _show
from .config_file import read_yaml
from .schema import BY_NAME, DEFAULTS, REQUIRED, RESUMABLE_KEYS, SCHEMA

__all__ = ["ConfigError", "DEFAULTS", "RESUMABLE_KEYS", "SCHEMA", "apply_overrides", "check_resume_overrides",
           "dump", "flat_keys", "get_key", "load_config", "parse_override", "read_yaml", "resolve"]


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
            raise ConfigError(f"{key} is missing; it is required ({BY_NAME[key].check.allowed})")
    if cfg["name"] is None:
        model = cfg["model"] if isinstance(cfg["model"], str) else "custom"
        cfg["name"] = SCHEMA["name"]("name", name) if name else f"{cfg['data']['name']}_{model}"
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

