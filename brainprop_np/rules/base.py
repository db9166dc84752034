"""What a learning rule returns for one batch of trials."""
from dataclasses import dataclass
from typing import Any


@dataclass
class Trial:
    """One batch of learning trials (device arrays).

    q (B, C) output activity; actions (B,) chosen units; reward (B,) (BrainProp; for EBP
    1 where the argmax is right); delta (B,) reward-prediction errors (BrainProp only);
    loss: scalar loss of the batch; n_correct: scalar count of rewarded actions.
    """
    q: Any
    actions: Any
    reward: Any
    delta: Any
    loss: Any
    n_correct: Any


class Rule:
    """A learning rule decides which feedback enters at the output units."""
    name = "rule"

    def trial(self, net, x, labels, train=True, actions=None, batch_size=None):
        """Forward, output step and feedback; leaves ∂L/∂W on the layers; returns a Trial."""
        raise NotImplementedError

    def gradients(self, net, x, labels, actions=None, train=True, batch_size=None):
        """{layer_name: {param: ∂L/∂W}} for one batch (see ARCHITECTURE.md).

        train=False runs the forward pass in inference mode (running BatchNorm statistics,
        no dropout) and, for BrainProp, chooses greedily: deterministic, for checks.
        The arrays are copies (the layers reuse their own between batches).
        """
        labels = net.backend.asarray(labels, "int64")
        if actions is not None:
            actions = net.backend.asarray(actions, "int64")
        self.trial(net, x, labels, train=train, actions=actions, batch_size=batch_size)
        return {lname: {p: g.copy() for p, g in d.items()} for lname, d in net.grads().items()}
