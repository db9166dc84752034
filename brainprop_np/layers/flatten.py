"""Flatten (Keras `Flatten`): (B, H, W, C) → (B, H·W·C) in row, column, channel order."""
import numpy as np

from .base import Layer


class Flatten(Layer):
    """y = reshape(x, (B, H·W·C)); feedback is the inverse reshape."""
    keras_class = "flatten"

    def _build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def forward(self, x, train):
        return x.reshape(x.shape[0], -1)

    def feedback(self, fb, need_input_fb=True):
        return fb.reshape((fb.shape[0],) + self.input_shape) if need_input_fb else None
