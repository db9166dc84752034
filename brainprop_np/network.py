"""A network: a sequence of layers built from a preset name or a list of layer specs.

    net = build_network("conv", input_shape=(28, 28, 1), n_classes=10, seed=1,
                        device="cpu", dtype="float32", algorithm="brainprop")
    q = net.forward(x, train=False)       # x (N, H, W, C) → q (N, n_classes)

`forward` chains the layers' forward passes; `feedback` chains their feedback in
reverse, from the feedback the rule sends into the output units down to the first layer.
"""
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from . import blocks
from . import feedback as F
from . import layers as L
from . import philox
from .backend import check_dtype, get_backend, to_host
from .presets import PRESET_SETTINGS, preset
from .rules import ALGORITHMS
from .specs import make_layer

STATE_KEYS = ("moving_mean", "moving_variance")


class Network:
    """Layers in order, the last one the linear output layer.

    Attributes: layers, backend, xp, dtype, input_shape (H, W, C), n_classes, algorithm,
    draws (philox.Draws: the seed and the trial counter `step` of exploration and dropout).
    """

    def __init__(self, layer_list, input_shape, n_classes, backend, dtype, seed, algorithm):
        self.layers = layer_list
        self.backend, self.xp, self.dtype = backend, backend.xp, dtype
        self.input_shape, self.n_classes = tuple(input_shape), int(n_classes)
        self.algorithm, self.seed = algorithm, seed
        self.untied = None     # feedback.Wiring when a layer's feedback is not symmetric
        self.fused = True      # False: every layer on its own, even where the kernel set has a block
        self._plan = None      # (key, steps): blocks.plan's steps, made again when the key changes
        # Exploration and dropout draw from the counter-based generator (philox.py): keys
        # (seed, purpose, layer index), counters (trial number draws.step, element); the
        # initial weights come from numpy's default_rng(seed) on the host.
        self.draws = philox.Draws(seed)
        for i, layer in enumerate(self.layers):
            if isinstance(layer, L.Dropout):
                layer.key, layer.draws = self.draws.key(philox.DROPOUT, i), self.draws

    @property
    def output_layer(self):
        return self.layers[-1]

    def forward(self, x, train=False):
        """x (B, H, W, C) → q (B, n_classes); `train` selects batch statistics and dropout."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"input of shape {tuple(x.shape)} does not fit the network's input (N,)+{self.input_shape}")
        if x.dtype.kind not in "f":
            raise ValueError(f"input of dtype {x.dtype} is not allowed; pass float images scaled to [0, 1] "
                             "(e.g. x_uint8 / 255.0, as the original code does)")
        h = self.backend.asarray(x, self.dtype) if not isinstance(x, self.xp.ndarray) or x.dtype != self.dtype else x
        for step in self.steps():
            h = step.forward(h, train)
        return h

    @contextmanager
    def layer_by_layer(self):
        """Within: every layer runs on its own (no fused blocks), for code that walks the
        layers' feedback itself after a forward pass (teach/trace.py)."""
        if any(getattr(step, "z", None) is not None for step in self.steps()):
            raise RuntimeError("layer_by_layer(): the last training forward ran fused and kept only its blocks' "
                               "inputs, which the layers' own feedback cannot use; run that forward inside "
                               "layer_by_layer() too")
        fused, self.fused = self.fused, False
        try:
            yield self
        finally:
            self.fused = fused

    def steps(self):
        """The plan (blocks.py): the layers in steps, single or fused where the kernel set can."""
        key = (self.fused, self.untied is None, self.backend.kernels)
        if self._plan is None or self._plan[0] != key:
            kernels = self.backend.kernels if self.fused else None
            self._plan = (key, blocks.plan(self.layers, kernels, layer_feedback=self.untied is None))
        return self._plan[1]

    def feedback(self, fb, input_feedback=False):
        """Send fb (B, n_classes) down through every layer's feedback; grads are left on the layers.

        Returns the feedback at the input image when input_feedback, else None (the
        first layer then skips that work).
        """
        if self.untied is not None:        # untied feedback: feedback.py's wiring (DFA, Kolen–Pollack)
            return self.untied.feedback(self, fb, input_feedback)
        # below the first layer with weights no layer needs feedback (there are no tags to set):
        # that layer skips computing it (e.g. the dense preset's first fb·Wᵀ GEMM, under a flatten)
        first = 0 if input_feedback else self.first_trained()
        for step in reversed(self.steps()):
            if step.last < first:
                break
            fb = step.feedback(fb, need_input_fb=(step.first > first or input_feedback))
        return fb if input_feedback else None

    def first_trained(self):
        """Index of the first layer with parameters: no layer below it needs feedback, and it
        computes none for its input (unless the input's own feedback is asked for)."""
        return next((i for i, l in enumerate(self.layers) if l.params), 0)

    def trainable(self):
        """(layer, param name, array) for every trained array, in layer order."""
        for layer in self.layers:
            for pname, arr in layer.params.items():
                yield layer, pname, arr

    def grads(self):
        """{layer_name: {param: ∂L/∂param}} after the last feedback (device arrays)."""
        return OrderedDict((l.name, dict(l.grads.items())) for l in self.layers if l.params)

    def get_weights(self, feedback=True):
        """Ordered {layer_name: {param: host ndarray}}, Keras names and layouts.

        BatchNorm holds gamma, beta, moving_mean, moving_variance (in that order); a layer
        with untied feedback also `feedback_kernel` (feedback=False leaves it out: Keras files).
        """
        out = OrderedDict()
        for layer in self.layers:
            if layer.params or layer.state:
                d = OrderedDict((k, to_host(v).copy()) for k, v in layer.params.items())
                d.update((k, to_host(v).copy()) for k, v in layer.state.items())
                if not feedback:
                    d.pop("feedback_kernel", None)
                out[layer.name] = d
        return out

    def set_weights(self, weights, keep_feedback=False):
        """Copy arrays in from a dict shaped like `get_weights()`.

        keep_feedback: a `feedback_kernel` the weights lack stays as drawn (forward weights
        only, e.g. a Keras file or a symmetric run's); otherwise it is required.

        Every layer and array must be present with the expected shape; a mismatch raises
        ValueError naming the layer, the array, the expected and the found shape.
        """
        expected = self.get_weights()
        for lname in weights:
            if lname not in expected:
                raise ValueError(f"weights name layer {lname!r}, which this network lacks; its layers with weights: {', '.join(expected)}")
        staged = []
        for lname, arrays in expected.items():             # check everything before writing anything
            if lname not in weights:
                raise ValueError(f"weights lack layer {lname!r} (arrays {', '.join(arrays)})")
            for aname in weights[lname]:
                if aname not in arrays:
                    raise ValueError(f"weights of layer {lname!r} name {aname!r}; it holds {', '.join(arrays)}")
            for aname, ref in arrays.items():
                if aname not in weights[lname] and keep_feedback and aname == "feedback_kernel":
                    continue
                if aname not in weights[lname]:
                    raise ValueError(f"weights of layer {lname!r} lack {aname!r}")
                new = np.asarray(to_host(weights[lname][aname]))
                if new.shape != ref.shape:
                    raise ValueError(f"layer {lname!r} {aname}: expected shape {ref.shape}, found {new.shape}")
                staged.append((lname, aname, new))
        by_name = {l.name: l for l in self.layers}
        for lname, aname, new in staged:
            layer = by_name[lname]
            store = layer.params if aname in layer.params else layer.state
            store[aname][...] = self.backend.asarray(new.astype(self.dtype))

    def summary(self):
        """A table of layers, output shapes and parameter counts."""
        rows = [f"{'layer':<24}{'kind':<20}output shape"]
        rows += [l.describe() for l in self.layers]
        n = sum(int(np.prod(a.shape)) for _, _, a in self.trainable())
        rows.append(f"trainable parameters: {n:,}")
        return "\n".join(rows)


def _output_name(algorithm, counts):
    if algorithm == "brainprop":
        return "brain_prop_layer"
    i = counts.get("dense", 0)
    return "dense" if i == 0 else f"dense_{i}"


def build_network(model, input_shape, n_classes, seed=1, device="auto", dtype="float32",
                  algorithm="brainprop", init_std=None, feedback="symmetric", feedback_decay=0.001,
                  feedback_sign="rms", kernels=None):
    """Build a network from a preset name ('dense', 'conv', 'loccon', 'deep') or layer specs.

    input_shape: per-image (H, W, C); n_classes: output units. Weights are drawn on the
    host from N(0, init_std²) with numpy's default_rng(seed), in layer order (default
    init_std: the preset's, 0.005 for layer lists). Layer names are Keras's defaults; the
    output layer is `brain_prop_layer` (BrainProp) or the next `dense_N` (EBP).
    kernels: the CPU kernel set, 'auto' | 'fast' | 'numpy' (default $BRAINPROP_KERNELS,
    else 'auto': the fast set when numba imports); see backend.get_backend.
    feedback: the feedback weights of every layer with a kernel whose spec has no
    `feedback` key: symmetric (the paper) | random | sign | kolen_pollack | dfa;
    feedback_decay (kolen_pollack) and feedback_sign (sign: rms | random): see feedback.py.
    """
    F.check_mode(feedback)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not allowed; use one of {', '.join(ALGORITHMS)}")
    if isinstance(model, str):
        specs = preset(model)
        std = PRESET_SETTINGS[model]["init_std"] if init_std is None else init_std
    elif isinstance(model, (list, tuple)):
        specs, std = list(model), (0.005 if init_std is None else init_std)
    else:
        raise ValueError(f"model={model!r} is not allowed; use a preset name or a list of layer specs")
    dt = check_dtype(dtype)
    backend = get_backend(device, kernels)
    host_rng = np.random.default_rng(seed)
    layer_list, counts = [], {}
    shape = tuple(int(s) for s in input_shape)
    for i, spec in enumerate(specs):
        layer = make_layer(spec, i, std)
        n = counts.get(layer.keras_class, 0)
        layer.name = layer.keras_class if n == 0 else f"{layer.keras_class}_{n}"
        counts[layer.keras_class] = n + 1
        shape = layer.build(shape, backend, dt, host_rng)
        layer_list.append(layer)
    if len(shape) != 1:
        raise ValueError(f"the last layer's output has shape {shape}; end the layer list with a flatten or dense layer")
    out = L.Output(n_classes, init_std=std)
    out.name = _output_name(algorithm, counts)
    out.build(shape, backend, dt, host_rng)
    layer_list.append(out)
    net = Network(layer_list, input_shape, n_classes, backend, dt, seed, algorithm)
    return F.setup(net, feedback, feedback_decay, feedback_sign, seed=seed, init_std=std)
