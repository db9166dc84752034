"""What a learning rule returns for one batch of trials, and the epoch's metrics it adds up."""
from dataclasses import dataclass
from typing import Any

# The epoch's sums, one float64 accumulator on the training device that a training trial adds
# to (`trial(..., metrics=)`; BrainProp in its output-step kernel) and the training loop reads
# once per epoch: B·loss, rewarded choices, Σ delta, Σ |delta|, explored choices (action ≠
# argmax q). EBP adds the first two only.
METRICS = ("loss_sum", "correct", "delta_sum", "abs_delta_sum", "explored")


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

    def trial(self, net, x, labels, train=True, actions=None, batch_size=None, metrics=None):
        """Forward, output step and feedback; leaves ∂L/∂W on the layers; returns a Trial.
        A training trial draws at trial number net.draws.step and then advances it by one;
        metrics: None, or the float64 accumulator of METRICS that the trial adds to."""
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
