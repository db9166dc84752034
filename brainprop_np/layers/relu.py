"""Rectified linear units (Keras `Activation('relu')`)."""
from .base import Layer


class ReLU(Layer):
    """y = max(x, 0), any shape.

    Feedback is gated by the unit's activity: fb_in = fb · [y > 0]
    (a silent unit passes no feedback and its input synapses get no tag).
    """
    keras_class = "activation"

    def forward(self, x, train):
        self.post = self.k.relu_forward(x)
        return self.post

    def feedback(self, fb, need_input_fb=True):
        return self.k.relu_feedback(fb, self.post) if need_input_fb else None
