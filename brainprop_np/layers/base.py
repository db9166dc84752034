"""The layer protocol.

A layer turns the activity of its input units into the activity of its output units
(`forward`) and, after a choice has been made at the top, maps the attention-gated
feedback arriving at its output units to feedback at its input units (`feedback`),
storing on the way the tag of each of its weights.

Sign convention (stated once, here): `grads[name]` is ∂L/∂W, the gradient of the
trial's loss (for BrainProp L = Σ_b ½ delta_b² / B, where the rule folds −delta_b/B into
the feedback that enters at the chosen output unit). The tag of a weight — presynaptic
activity × postsynaptic feedback — summed over the batch is therefore ∂L/∂W, and SGD
subtracts it: W ← W − lr·grads. This equals the paper's ΔW = lr·(1/B)·Σ_b delta_b·tag_b.

Attributes every layer has:
    name    Keras's default layer name (`conv2d_1`, `batch_normalization`, ...)
    params  {name: array} trained arrays (Keras names: kernel, gamma, beta)
    grads   {name: array} ∂L/∂param after the last `feedback`
    state   {name: array} non-trained arrays (moving_mean, moving_variance)
"""


class Layer:
    keras_class = "layer"   # Keras's snake-case class name, used for default names
    feedback_mode = "symmetric"   # layers with a kernel: see brainprop_np/feedback.py
    feedback_decay = 0.0          # Kolen–Pollack: weight decay of W and B (optim.py)

    def __init__(self):
        self.name = None
        self.params = {}
        self.grads = {}
        self.state = {}
        self.input_shape = None    # per-image shape, without the batch axis
        self.output_shape = None

    def build(self, input_shape, backend, dtype, rng):
        """Create arrays for per-image `input_shape` (tuple); return the output shape.

        backend: brainprop_np.backend.Backend; dtype: numpy dtype;
        rng: numpy Generator on the host (weights are drawn there, then moved).
        """
        self.input_shape = tuple(input_shape)
        self.backend, self.xp, self.k, self.dtype = backend, backend.xp, backend.kernels, dtype
        self.output_shape = self._build(self.input_shape, rng)
        return self.output_shape

    def _build(self, input_shape, rng):
        return input_shape

    def _init_normal(self, rng, shape, std):
        """N(0, std²) drawn on the host, as the original code's initializer."""
        return self.backend.asarray(rng.normal(0.0, std, size=shape).astype(self.dtype))

    def _fb_kernel(self):
        """The weights the feedback to the inputs goes through: the kernel itself (symmetric,
        the paper) or the layer's untied `feedback_kernel` (brainprop_np/feedback.py)."""
        if self.feedback_mode == "symmetric":
            return self.params["kernel"]
        from ..feedback import feedback_kernel
        return feedback_kernel(self)

    def forward(self, x, train):
        """x (B, *input_shape) → output (B, *output_shape); keeps `pre` for the tags."""
        raise NotImplementedError

    def feedback(self, fb, need_input_fb=True):
        """fb (B, *output_shape) → feedback at the inputs (B, *input_shape).

        Also sets self.grads. With need_input_fb=False (the first layer) the input
        feedback is not computed and None is returned.
        """
        raise NotImplementedError

    def describe(self):
        """One line for summaries: name, kind and output shape."""
        return f"{self.name:<24}{type(self).__name__:<20}{str(self.output_shape)}"

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, out={self.output_shape})"
