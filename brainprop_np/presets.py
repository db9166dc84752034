"""The paper's four architectures as layer-spec lists (BRAINPROP.md, "Architectures").

Each hidden conv / locally-connected / dense layer is followed by ReLU, then (where the
paper has it) BatchNorm. The linear output layer is appended by `build_network`.
`PRESET_SETTINGS` holds what the original code set per architecture besides layers.
"""


def _block(kind, filters, stride, padding):
    """kind (conv2d | locally_connected2d) 3×3 → ReLU → BatchNorm."""
    return [{"type": kind, "filters": filters, "kernel": 3, "stride": stride, "padding": padding},
            {"type": "relu"}, {"type": "batchnorm"}]


def _dense(units, dropout=None):
    spec = [{"type": "dense", "units": units}, {"type": "relu"}]
    return spec + ([{"type": "dropout", "rate": dropout}] if dropout is not None else [])


def _two_block_net(kind, padding):
    return (_block(kind, 32, 1, padding) + _block(kind, 32, 2, padding)
            + [{"type": "dropout", "rate": 0.3}, {"type": "flatten"}] + _dense(500, 0.3))


def _deep():
    pool = [{"type": "maxpool2d", "pool": 2}]
    return (_block("conv2d", 64, 1, "same") + _block("conv2d", 64, 1, "same") + pool
            + [{"type": "dropout", "rate": 0.3}]
            + _block("conv2d", 128, 1, "same") + _block("conv2d", 128, 1, "same") + pool
            + [{"type": "dropout", "rate": 0.3}]
            + _block("conv2d", 128, 1, "same") + _block("conv2d", 128, 1, "same")
            + _block("conv2d", 128, 1, "same") + pool
            + [{"type": "dropout", "rate": 0.8}, {"type": "flatten"}] + _dense(500, 0.3))


PRESETS = {
    "dense": [{"type": "flatten"}] + _dense(1500) + _dense(1000) + _dense(500),
    "conv": _two_block_net("conv2d", "same"),
    "loccon": _two_block_net("locally_connected2d", "valid"),
    "deep": _deep(),
}

# What the original code (get_architecture.py) sets per architecture besides the layers.
PRESET_SETTINGS = {
    "dense": {"init_std": 0.01, "batch_size": 128, "l2": 0.0},
    "conv": {"init_std": 0.005, "batch_size": 128, "l2": 0.0},
    "loccon": {"init_std": 0.005, "batch_size": 32, "l2": 0.0},
    "deep": {"init_std": 0.005, "batch_size": 128, "l2": 5e-4},
}


def preset(name):
    """A fresh copy of the preset's layer specs; one-line error for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"model={name!r} is not a preset; use one of {', '.join(PRESETS)} or a list of layer specs")
    return [dict(s) for s in PRESETS[name]]
