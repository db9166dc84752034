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
    grads   {name: array} ∂L/∂param after the last `feedback` (grads.py: a fused step may
            store a Dense kernel's tags as their factors; they read as the array)
    state   {name: array} non-trained arrays (moving_mean, moving_variance)
"""


from .grads import Grads


class Layer:
    keras_class = "layer"   # Keras's snake-case class name, used for default names
    # Feedback weights B of a layer with a kernel (feedback.py chooses and draws them):
    feedback_spec = None          # the spec's own `feedback` key, if any (specs.py)
    feedback_mode = "symmetric"   # symmetric (B = W, the paper) | random | sign | kolen_pollack | dfa
    feedback_sign = "rms"         # sign: |B| = RMS of W (uSF) | random: a fixed |R| (frSF)
    feedback_decay = 0.0          # Kolen–Pollack: weight decay of W and B (optim.py)

    def __init__(self):
        self.name = None
        self.params = {}
        self.grads = Grads()
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

    def untie(self, mode, sign="rms", decay=0.0):
        """Set the feedback mode, sign's scale and Kolen–Pollack's decay λ (0 in other modes)."""
        self.feedback_mode, self.feedback_sign = mode, sign
        self.feedback_decay = float(decay) if mode == "kolen_pollack" else 0.0

    def set_feedback_kernel(self, b):
        """Keep B as `feedback_kernel`: learned (in params) for kolen_pollack, else fixed (in state)."""
        (self.params if self.feedback_mode == "kolen_pollack" else self.state)["feedback_kernel"] = b

    def feedback_weights(self):
        """B, the weights the feedback to the inputs goes through: the kernel itself
        (symmetric, the paper) or the layer's untied `feedback_kernel`."""
        mode = self.feedback_mode
        if mode == "symmetric":
            return self.params["kernel"]
        if mode == "kolen_pollack":
            return self.params["feedback_kernel"]
        if mode == "sign":
            return self.refresh_sign()
        if mode == "random":
            return self.state["feedback_kernel"]
        raise RuntimeError(f"layer {self.name}: feedback {mode!r} sends no feedback through its own kernel")

    def refresh_sign(self):
        """Sign mode: B ← copysign(s, W) (uSF, s = RMS of W) or copysign(|B|, W) (frSF), in place."""
        xp, w, b = self.xp, self.params["kernel"], self.state["feedback_kernel"]
        if self.feedback_sign == "rms":
            flat = w.reshape(-1)
            s = xp.sqrt(xp.vdot(flat, flat) / flat.size).astype(w.dtype)
            xp.copysign(s, w, out=b)
        else:
            xp.copysign(b, w, out=b)
        return b

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
