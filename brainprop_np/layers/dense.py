"""Fully connected layer without bias (Keras `Dense(units, use_bias=False)`)."""
from .base import Layer


class Dense(Layer):
    """y = pre · W.

    Shapes: pre (B, n_in), kernel W (n_in, n_out) (Keras layout), y (B, n_out).
    Feedback: fb_in = fb · Wᵀ (the feedback weights are the feedforward ones, transposed;
    untied modes use B = feedback_kernel instead of W here, brainprop_np/feedback.py).
    Tag of W_ij: pre_i · fb_j, summed over the batch → grads['kernel'] = preᵀ · fb.
    """
    keras_class = "dense"

    def __init__(self, units, init_std=0.005):
        super().__init__()
        self.units = int(units)
        self.init_std = float(init_std)

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ValueError(f"layer {self.name}: dense needs a flat input, got shape {input_shape}; add a flatten layer before it")
        self.params["kernel"] = self._init_normal(rng, (input_shape[0], self.units), self.init_std)
        return (self.units,)

    def forward(self, x, train):
        self.pre = x
        return x @ self.params["kernel"]

    def feedback(self, fb, need_input_fb=True):
        self.grads["kernel"] = self.pre.T @ fb
        return fb @ self.feedback_weights().T if need_input_fb else None
