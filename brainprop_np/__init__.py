"""brainprop_np: BrainProp with explicit, hand-written layers on NumPy and CuPy.

    import brainprop_np as bp
    net = bp.build_network("conv", input_shape=(28, 28, 1), n_classes=10, seed=1, device="cpu")
    rule = bp.BrainProp(epsilon=0.02)
    grads = rule.gradients(net, x, labels)
"""
from .backend import get_backend, to_host
from .network import Network, build_network
from .optim import SGD
from .presets import PRESETS
from .rules import EBP, BrainProp, make_rule

__version__ = "0.1.0"

__all__ = ["BrainProp", "EBP", "Network", "PRESETS", "SGD", "build_network", "get_backend",
           "make_rule", "to_host", "__version__"]
