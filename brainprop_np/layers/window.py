"""What conv2d and locally_connected2d share: a k×k window sliding with stride s over
(H, W, C) inputs, Keras's padding rules (geometry.py), and a normal initial kernel."""
from .base import Layer
from .geometry import check_window, window_2d


class WindowLayer(Layer):
    """A layer of `filters` units per output position, each seeing one k×k×C window of the input."""

    def __init__(self, filters, kernel, stride, padding, init_std):
        super().__init__()
        self.filters, self.kernel, self.stride = int(filters), kernel, stride
        self.padding, self.init_std = padding, float(init_std)

    def _window(self, input_shape):
        """Check the window against the (H, W, C) input; set out_hw and pads; return C."""
        where = f"layer {self.name}"
        check_window(self.kernel, self.stride, where)
        if len(input_shape) != 3:
            raise ValueError(f"{where}: {self.keras_class} needs (H, W, C) inputs, got {input_shape}")
        h, w, c = input_shape
        self.out_hw, self.pads = window_2d(h, w, self.kernel, self.stride, self.padding, where)
        return c

    def _geometry(self):
        """(kh, kw, stride, pads, out_hw), the arguments of im2col/col2im."""
        return self.kernel, self.kernel, self.stride, self.pads, self.out_hw
