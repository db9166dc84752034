"""Layer specs: the table of layer kinds a network is built from, and their validation.

A spec is what a YAML config's `model` list holds, e.g. {"type": "dense", "units": 500}.
`make_layer` turns one into a layer (one-line errors naming the layer, key and value);
`spec_json_schema` gives the same rules as JSON Schema, for editors (run/schema.py).
"""
from collections import OrderedDict

from . import layers as L
from .feedback import MODES
from .layers.geometry import PADDINGS

# spec type → (class, required keys, optional keys)
LAYER_TYPES = OrderedDict([
    ("conv2d", (L.Conv2D, ("filters",), ("kernel", "stride", "padding", "init_std", "feedback"))),
    ("locally_connected2d", (L.LocallyConnected2D, ("filters",), ("kernel", "stride", "padding", "init_std",
                                                                  "feedback"))),
    ("dense", (L.Dense, ("units",), ("init_std", "feedback"))),
    ("relu", (L.ReLU, (), ())),
    ("batchnorm", (L.BatchNorm, (), ("momentum", "epsilon"))),
    ("maxpool2d", (L.MaxPool2D, (), ("pool",))),
    ("dropout", (L.Dropout, ("rate",), ())),
    ("flatten", (L.Flatten, (), ())),
])


def _is_int(v, lo):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_COUNT = {"type": "integer", "minimum": 1}
_FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}

# spec key → (test, what is allowed, the same as JSON Schema)
SPEC_VALUES = {
    "filters": (lambda v: _is_int(v, 1), "an integer >= 1", _COUNT),
    "units": (lambda v: _is_int(v, 1), "an integer >= 1", _COUNT),
    "kernel": (lambda v: _is_int(v, 1) and v % 2 == 1, "an odd integer >= 1",
               dict(_COUNT, **{"not": {"multipleOf": 2}})),
    "stride": (lambda v: _is_int(v, 1), "an integer >= 1", _COUNT),
    "padding": (lambda v: v in PADDINGS, " or ".join(map(repr, PADDINGS)), {"enum": list(PADDINGS)}),
    "init_std": (lambda v: _is_real(v) and v > 0, "a number > 0", _POSITIVE),
    "momentum": (lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)", _FRACTION),
    "epsilon": (lambda v: _is_real(v) and v > 0, "a number > 0", _POSITIVE),
    "pool": (lambda v: _is_int(v, 1), "an integer >= 1", _COUNT),
    "rate": (lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)", _FRACTION),
    "feedback": (lambda v: v in MODES, "one of " + ", ".join(MODES), {"enum": list(MODES)}),
}


def check_spec(spec, index=0):
    """The spec's kind and its keys but `type`; ValueError (one line) when anything is not allowed."""
    where = f"model layer {index}"
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where}: {spec!r} is not a layer spec; use a mapping with a 'type' key")
    kind = spec["type"]
    if kind not in LAYER_TYPES:
        raise ValueError(f"{where}: type={kind!r} is not allowed; use one of {', '.join(LAYER_TYPES)}")
    _, required, optional = LAYER_TYPES[kind]
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    for key in kwargs:
        if key not in required + optional:
            allowed = ", ".join(required + optional) or "no other keys"
            raise ValueError(f"{where} ({kind}): unknown key {key!r}; allowed: {allowed}")
    for key in required:
        if key not in kwargs:
            raise ValueError(f"{where} ({kind}): missing key {key!r}")
    for key, value in kwargs.items():
        check, allowed, _ = SPEC_VALUES[key]
        if not check(value):
            raise ValueError(f"{where} ({kind}): {key}={value!r} is not allowed; use {allowed}")
    return kind, kwargs


def make_layer(spec, index=0, init_std=0.005):
    """One layer from a spec dict such as {"type": "dense", "units": 500}; one-line errors."""
    kind, kwargs = check_spec(spec, index)
    cls, _, optional = LAYER_TYPES[kind]
    if "init_std" in optional:
        kwargs.setdefault("init_std", init_std)
    mode = kwargs.pop("feedback", None)      # this layer's own feedback mode (feedback.py)
    layer = cls(**kwargs)
    layer.feedback_spec = mode
    return layer


def spec_json_schema():
    """JSON Schema of one layer spec: one alternative per kind, its keys and their values."""
    kinds = []
    for kind, (_, required, optional) in LAYER_TYPES.items():
        props = {"type": {"const": kind}}
        props.update((k, dict(SPEC_VALUES[k][2], description=SPEC_VALUES[k][1])) for k in required + optional)
        kinds.append({"type": "object", "title": kind, "properties": props,
                      "required": ["type", *required], "additionalProperties": False})
    return {"anyOf": kinds}
