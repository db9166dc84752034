"""Inverted dropout (Keras `Dropout(rate)`)."""
from .base import Layer


class Dropout(Layer):
    """Training: y = x · m with m = [u ≥ rate] / (1 − rate), u ~ U[0, 1) per unit;
    inference: y = x. Feedback passes through the same mask: fb_in = fb · m.

    u of unit e (flat index into the batch's activity) is drawn by the kernel from the
    counter-based generator (brainprop_np/philox.py) with key (seed, DROPOUT, this layer's
    index) at trial number draws.step: the same mask on every backend, and the same again
    for another forward pass at the same step. The network sets `key` and `draws`.

    `fixed_mask` (an array of the input's shape, or None) replaces the random mask;
    checks use it to make a training forward deterministic. Rate 0 is the identity.
    """
    keras_class = "dropout"

    def __init__(self, rate):
        super().__init__()
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate={rate!r} is not allowed; use 0 <= rate < 1")
        self.rate = float(rate)
        self.fixed_mask = None
        self.key = None     # set by the network: (seed, DROPOUT·2¹⁶ + layer index)
        self.draws = None   # set by the network: its philox.Draws (the trial counter `step`)

    def forward(self, x, train):
        if not train or (self.rate == 0.0 and self.fixed_mask is None):
            self.mask = None
            return x
        if self.fixed_mask is not None:
            self.mask = self.fixed_mask
        elif self.draws is None:
            raise ValueError(f"{self.name}: a dropout layer outside a network draws no mask; set fixed_mask")
        else:
            y, self.mask = self.k.dropout_forward(x, self.rate, self.key, self.draws.step)   # one launch on the GPU
            return y
        return x * self.mask

    def feedback(self, fb, need_input_fb=True):
        if not need_input_fb:
            return None
        return fb if self.mask is None else fb * self.mask
