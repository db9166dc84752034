"""brainprop_np: BrainProp with explicit, hand-written layers on NumPy and CuPy.

    import brainprop_np as bp
    net = bp.build_network("conv", input_shape=(28, 28, 1), n_classes=10, seed=1, device="cpu")
    rule = bp.BrainProp(epsilon=0.02)
    grads = rule.gradients(net, x, labels)
    result = bp.train(config)                   # what run.py calls
    ds = bp.data.load("mnist")
"""
import importlib
import os
import sys

# The threads' environment, defined here only. OpenBLAS's idle threads otherwise spin for
# ~0.1 s after each GEMM and slow down the element-wise work spread over the cores, and
# numba's OpenMP workers spin after each parallel kernel and take the cores from the GEMM
# that follows (2× slower steps on 2 cores; kernels/threads.py). Both take effect only
# before NumPy or numba load, so every entry point (run.py, `python -m brainprop_np`, the
# `brainprop` command, scripts/, bench/) imports this package first; the sweep hands the
# same values to its Ray workers. An existing value wins.
BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}
if "numpy" not in sys.modules:
    for _key, _value in BLAS_ENV.items():
        os.environ.setdefault(_key, _value)

from .backend import get_backend, to_host
from .network import Network, build_network
from .optim import SGD
from .presets import PRESETS
from .rules import EBP, BrainProp, make_rule
from .run.train import train   # binds bp.train to the function, not the module

__version__ = "0.1.0"

# Loaded on first use, so that `import brainprop_np` stays light.
_LAZY = {
    "data": ("brainprop_np.data", None),
    "load_keras_weights": ("brainprop_np.keras_io", "load_keras_weights"),
    "save_keras_weights": ("brainprop_np.keras_io", "save_keras_weights"),
}


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'brainprop_np' has no attribute {name!r}")


__all__ = ["BrainProp", "EBP", "Network", "PRESETS", "SGD", "build_network", "get_backend",
           "make_rule", "to_host", "train", "__version__"] + list(_LAZY)
