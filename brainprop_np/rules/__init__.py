"""Learning rules: BrainProp and the error-backpropagation baseline."""
from .base import Rule, Trial
from .brainprop import BrainProp
from .ebp import EBP

RULES = {"brainprop": BrainProp, "ebp": EBP}
ALGORITHMS = tuple(RULES)      # the one list of algorithms (network.py, run/schema.py)


def make_rule(name, epsilon=0.02):
    """The rule called `name` ('brainprop' | 'ebp')."""
    if name not in RULES:
        raise ValueError(f"algorithm={name!r} is not allowed; use one of {', '.join(RULES)}")
    return BrainProp(epsilon) if name == "brainprop" else EBP()


__all__ = ["BrainProp", "EBP", "Rule", "Trial", "RULES", "ALGORITHMS", "make_rule"]
