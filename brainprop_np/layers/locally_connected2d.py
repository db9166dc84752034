"""Locally-connected 2-D layer: a convolution with unshared weights
(Keras `LocallyConnected2D(filters, k, strides, padding, use_bias=False)`)."""
from .base import Layer
from .geometry import check_window, window_2d


class LocallyConnected2D(Layer):
    """y[n, p, f] = Σ_q cols[p, n, q] · W[p, q, f]  for every output position p = oy·Wo + ox.

    Shapes: x (B, H, W, C); kernel W (Ho·Wo, k·k·C, F) (Keras layout, q = (dy·k + dx)·C + c);
    y (B, Ho, Wo, F). cols = im2col(x) in positions-first layout (Ho·Wo, B, k·k·C) is the
    presynaptic activity; the forward pass is one batched GEMM over positions.
    Feedback: fb_in = col2im(fb_p · W_pᵀ), again one batched GEMM.
    Tag of W[p, q, f]: pre × fb summed over the batch only (no weight sharing):
    grads['kernel'][p] = cols[p]ᵀ · fb[p].
    Padding 'same' (which the original code lacked) follows Keras's convolution rule.
    """
    keras_class = "locally_connected2d"

    def __init__(self, filters, kernel=3, stride=1, padding="valid", init_std=0.005):
        super().__init__()
        self.filters, self.kernel, self.stride = int(filters), kernel, stride
        self.padding, self.init_std = padding, float(init_std)

    def _build(self, input_shape, rng):
        where = f"layer {self.name}"
        check_window(self.kernel, self.stride, where)
        if len(input_shape) != 3:
            raise ValueError(f"{where}: locally_connected2d needs (H, W, C) inputs, got {input_shape}")
        h, w, c = input_shape
        self.out_hw, self.pads = window_2d(h, w, self.kernel, self.stride, self.padding, where)
        n_pos = self.out_hw[0] * self.out_hw[1]
        k = self.kernel
        self.params["kernel"] = self._init_normal(rng, (n_pos, k * k * c, self.filters), self.init_std)
        self.ws = {}   # reusable work buffers (cols, dcols, padding) for this layer
        return self.out_hw + (self.filters,)

    def _geometry(self):
        return self.kernel, self.kernel, self.stride, self.pads, self.out_hw

    def forward(self, x, train):
        self.x_shape = x.shape
        self.cols = self.k.im2col(x, *self._geometry(), positions_first=True,
                                 ws=self.ws if train else None)                     # (P, B, K)
        y = self.xp.matmul(self.cols, self.params["kernel"])                     # (P, B, F)
        return y.transpose(1, 0, 2).reshape((x.shape[0],) + self.output_shape)

    def feedback(self, fb, need_input_fb=True):
        b = fb.shape[0]
        fbp = self.xp.ascontiguousarray(fb.reshape(b, -1, self.filters).transpose(1, 0, 2))  # (P, B, F)
        self.grads["kernel"] = self.xp.matmul(self.cols.transpose(0, 2, 1), fbp)          # (P, K, F)
        if not need_input_fb:
            return None
        dcols = self.k.workspace(self.ws, "dcols", self.cols.shape, fb.dtype)
        self.xp.matmul(fbp, self._fb_kernel().transpose(0, 2, 1), out=dcols)                              # (P, B, K)
        return self.k.col2im(dcols, self.x_shape, *self._geometry(), positions_first=True, ws=self.ws)
