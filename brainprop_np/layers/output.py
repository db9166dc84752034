"""The output layer: n_classes linear units without bias.

Under BrainProp its activity is read as Q-values (the reward each action is expected
to bring; Keras name `brain_prop_layer`); under EBP as softmax logits (a plain `dense_N`).
The rule, not this layer, selects the action and decides which feedback enters here.
"""
from .dense import Dense


class Output(Dense):
    """q = pre · W_out. Shapes: pre (B, n_in), W_out (n_in, n_classes), q (B, n_classes).

    Feedback: fb_in = fb · W_outᵀ; under BrainProp fb is non-zero only at the chosen
    unit (attention gating), so only that unit's weights get a tag: pre_i · fb_a.
    """
    keras_class = "brain_prop_layer"
