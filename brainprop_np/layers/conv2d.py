"""2-D convolution without bias (Keras `Conv2D(filters, k, strides, padding, use_bias=False)`)."""
from .window import WindowLayer


class Conv2D(WindowLayer):
    """y[n, oy, ox, f] = Σ_{dy, dx, c} x_pad[n, s·oy + dy, s·ox + dx, c] · W[dy, dx, c, f].

    Shapes: x (B, H, W, C), kernel W (k, k, C, F) (Keras layout), y (B, Ho, Wo, F).
    Computed as one GEMM: cols = im2col(x) (B·Ho·Wo, k·k·C) holds the presynaptic
    activity of every weight at every position; y = cols · W.
    Feedback: fb_in = col2im(fb · Wᵀ) (each input unit sums the feedback of every output
    unit it feeds, through the same weights).
    Tag of W[dy, dx, c, f]: pre × fb summed over the positions sharing the weight:
    grads['kernel'] = colsᵀ · fb.
    """
    keras_class = "conv2d"

    def __init__(self, filters, kernel=3, stride=1, padding="same", init_std=0.005):
        super().__init__(filters, kernel, stride, padding, init_std)

    def _build(self, input_shape, rng):
        c, k = self._window(input_shape), self.kernel
        self.params["kernel"] = self._init_normal(rng, (k, k, c, self.filters), self.init_std)
        return self.out_hw + (self.filters,)

    def forward(self, x, train):
        self.x_shape = x.shape
        self.cols = self.k.im2col(x, *self._geometry())                 # pre: (B·Ho·Wo, k·k·C)
        w = self.params["kernel"].reshape(-1, self.filters)
        return (self.cols @ w).reshape((x.shape[0],) + self.output_shape)

    def feedback(self, fb, need_input_fb=True):
        fb2 = fb.reshape(-1, self.filters)                          # (B·Ho·Wo, F)
        w = self.params["kernel"]
        self.grads["kernel"] = (self.cols.T @ fb2).reshape(w.shape)
        if not need_input_fb:
            return None
        dcols = fb2 @ self.feedback_weights().reshape(-1, self.filters).T       # (B·Ho·Wo, k·k·C), through B
        return self.k.col2im(dcols, self.x_shape, *self._geometry())
