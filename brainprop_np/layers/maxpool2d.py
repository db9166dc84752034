"""Max-pooling (Keras `MaxPooling2D(pool)`, stride = pool, 'valid')."""
from .base import Layer


class MaxPool2D(Layer):
    """y[n, i, j, c] = max over the pool×pool window of x.

    Shapes: x (B, H, W, C) → y (B, H//p, W//p, C). Feedback goes only to the winning
    input of each window (the first maximum on ties, as TensorFlow); the others get none.
    """
    keras_class = "max_pooling2d"

    def __init__(self, pool=2):
        super().__init__()
        self.pool = int(pool)
        if self.pool < 1:
            raise ValueError(f"maxpool2d pool={pool!r} is not allowed; use an integer >= 1")

    def _build(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(f"layer {self.name}: maxpool2d needs (H, W, C) inputs, got {input_shape}")
        h, w, c = input_shape
        if h < self.pool or w < self.pool:
            raise ValueError(f"layer {self.name}: input {h}x{w} is smaller than the pool {self.pool}")
        return (h // self.pool, w // self.pool, c)

    def forward(self, x, train):
        y, self.arg = self.k.maxpool_forward(x, self.pool)
        self.x_shape = x.shape
        return y

    def feedback(self, fb, need_input_fb=True):
        if not need_input_fb:
            return None
        return self.k.maxpool_feedback(fb, self.arg, self.x_shape, self.pool)
