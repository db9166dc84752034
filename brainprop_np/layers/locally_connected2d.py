"""Locally-connected 2-D layer: a convolution with unshared weights
(Keras `LocallyConnected2D(filters, k, strides, padding, use_bias=False)`)."""
from .window import WindowLayer


class LocallyConnected2D(WindowLayer):
    """y[n, p, f] = Σ_q cols[p, n, q] · W[p, q, f]  for every output position p = oy·Wo + ox.

    Shapes: x (B, H, W, C); kernel W (Ho·Wo, k·k·C, F) (Keras layout, q = (dy·k + dx)·C + c);
    y (B, Ho, Wo, F). cols = im2col(x) in positions-first layout (Ho·Wo, B, k·k·C) is the
    presynaptic activity; the forward pass is one small GEMM per position (`lc_forward`).
    Feedback: fb_in = col2im(fb_p · W_pᵀ), and the tag of W[p, q, f] is pre × fb summed
    over the batch only (no weight sharing): grads['kernel'][p] = cols[p]ᵀ · fb[p]; both
    per position, in one call (`lc_feedback`).
    Padding 'same' (which the original code lacked) follows Keras's convolution rule.
    """
    keras_class = "locally_connected2d"

    def __init__(self, filters, kernel=3, stride=1, padding="valid", init_std=0.005):
        super().__init__(filters, kernel, stride, padding, init_std)

    def _build(self, input_shape, rng):
        c, k = self._window(input_shape), self.kernel
        n_pos = self.out_hw[0] * self.out_hw[1]
        self.params["kernel"] = self._init_normal(rng, (n_pos, k * k * c, self.filters), self.init_std)
        return self.out_hw + (self.filters,)

    def forward(self, x, train):
        self.x_shape = x.shape
        self.cols = self.k.im2col(x, *self._geometry(), positions_first=True)   # pre: (P, B, K)
        y = self.k.lc_forward(self.cols, self.params["kernel"])                 # (B, P, F)
        return y.reshape((x.shape[0],) + self.output_shape)

    def feedback(self, fb, need_input_fb=True):
        fbp = fb.reshape(fb.shape[0], -1, self.filters)                          # (B, P, F)
        # tags[p] = cols[p]ᵀ · fb[:, p] (P, K, F); dcols[p] = fb[:, p] · B[p]ᵀ (P, B, K),
        # B the feedback weights (W itself when symmetric)
        fb_kernel = self.feedback_weights() if need_input_fb else None
        tags, dcols = self.k.lc_feedback(fbp, self.cols, fb_kernel, need_input_fb)
        self.grads["kernel"] = tags
        if not need_input_fb:
            return None
        return self.k.col2im(dcols, self.x_shape, *self._geometry(), positions_first=True)
