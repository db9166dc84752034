"""Untied feedback: BrainProp without weight transport.

Every layer with a kernel (dense, conv2d, locally_connected2d and the output layer)
sends the feedback arriving at its output units to its input units through its
*feedback weights*. The paper (and `symmetric`, the default) uses the forward weights,
transposed: B = W. The other modes give the layer a `feedback_kernel` array:

  symmetric      B = W (no extra array; bit for bit the paper's rule).
  random         feedback alignment (Lillicrap et al. 2016): a fixed B of the kernel's
                 shape and layout, drawn N(0, init_std²) once (in `state`).
  sign           sign symmetry (Liao et al. 2016): B = sign(W)·s, recomputed from the
                 current W at every step (in `state`). `feedback_sign`:
                   rms     (uSF) s = RMS of the layer's current W, one scalar per layer, so
                           that ‖B‖ = ‖W‖: the feedback has the size symmetric feedback
                           would have, as W grows, without a new hyperparameter;
                   random  (frSF) a fixed random magnitude: B = sign(W)·|R|, R ~ N(0, init_std²).
                 Both are `copysign(magnitude, W)`: the sign bit of W (of −0.0 too), so B
                 has W's sign everywhere and never loses its magnitude where W = 0.
  kolen_pollack  Kolen–Pollack (Akrout et al. 2019): B starts as in `random` and is
                 learned (in `params`): its gradient is the kernel's tag, so B receives
                 the same update as W (L2 included), and `feedback_decay` λ decays both:
                 W ← W(1 − lr·λ) − lr·tag, B likewise; W − B shrinks by (1 − lr·λ) a step.
  dfa            direct feedback alignment (Nøkland 2016): the feedback that enters at
                 the output units (−δ/B at the chosen unit) reaches each hidden *block*
                 directly, fb_block = fb_out · B_l reshaped to the block's output units,
                 then passes the block's own gating layers (ReLU, BatchNorm, dropout,
                 max-pooling, flatten) down to the block's kernel layer, which forms its
                 tags; no feedback travels from block to block. A block is a hidden kernel
                 layer with the kernel-less layers above it, up to the next kernel layer.
                 B_l (`feedback_kernel`, shape (n_classes, units at the block's output))
                 is drawn N(0, init_std²) once (in `state`). The output layer's own tags
                 are pre × fb_out as always; it sends no feedback down when the block below
                 it is direct (else, e.g. with no hidden kernel layer, it is `random`: its
                 fixed random feedback to that block *is* a direct path from the output).
                 A non-dfa kernel layer below a dfa one is refused (it would get no feedback).

The tag and the weight update stay pre × fb in every mode. Arrays are drawn on the host
from numpy default_rng([seed, 3, layer index]) (their own stream: the forward weights are
those of the symmetric network with the same seed), then moved to the device. Everything
per step is xp operations: no host round trip.

    net = build_network("conv", (28, 28, 1), 10, feedback="random")
    rows = alignment(net, rule, x, labels)      # angles W–B and update–gradient per layer
"""
import contextlib
import math

import numpy as np

MODES = ("symmetric", "random", "sign", "kolen_pollack", "dfa")
SIGN_SCALES = ("rms", "random")
ALIGNMENT_COLUMNS = ("epoch", "layer", "mode", "weight_angle", "grad_angle")


def check_mode(mode, where="feedback"):
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{where}={mode!r} is not allowed; use one of {', '.join(MODES)}")
    return mode


def has_kernel(layer):
    return "kernel" in layer.params


class Wiring:
    """How feedback travels through a network with untied feedback (`net.untied`).

    direct: {layer index: the DFA kernel layer} for every layer whose output units receive
    feedback straight from the output (the top layer of a DFA block); learned: the
    kolen_pollack layers (their grads get `feedback_kernel`).
    """

    def __init__(self, net):
        layers = net.layers
        self.direct = {}
        kernel_idx = [i for i, l in enumerate(layers) if has_kernel(l)]
        for j, i in enumerate(kernel_idx[:-1]):              # hidden kernel layers (not the output)
            if layers[i].feedback_mode == "dfa":
                self.direct[kernel_idx[j + 1] - 1] = layers[i]
        self.learned = [l for l in layers if l.feedback_mode == "kolen_pollack"]
        self.n = len(layers)

    def needs_input(self, net, i, input_feedback=False):
        """Whether layer i must compute the feedback at its inputs."""
        if i == 0:
            return bool(input_feedback) and net.layers[0].feedback_mode != "dfa"
        return net.layers[i].feedback_mode != "dfa" and (i - 1) not in self.direct

    def arriving(self, net, i, fb, fb_out):
        """The feedback that enters layer i's output units (fb: what the layer above sent)."""
        if i in self.direct:
            b = self.direct[i].state["feedback_kernel"]
            return (fb_out @ b).reshape((fb_out.shape[0],) + net.layers[i].output_shape)
        if fb is None:       # below the lowest DFA kernel layer: no feedback reaches here
            return net.xp.zeros((fb_out.shape[0],) + net.layers[i].output_shape, dtype=fb_out.dtype)
        return fb

    def feedback(self, net, fb, input_feedback=False):
        """Network.feedback for an untied network: the same loop, with DFA's direct paths."""
        fb_out = fb
        for i in range(self.n - 1, -1, -1):
            fb = self.arriving(net, i, fb, fb_out)
            fb = net.layers[i].feedback(fb, need_input_fb=self.needs_input(net, i, input_feedback))
        self.tie_grads()
        return fb

    def tie_grads(self):
        """Kolen–Pollack: B's gradient is the kernel's tag (the same array; SGD reads it twice)."""
        for layer in self.learned:
            layer.grads["feedback_kernel"] = layer.grads["kernel"]


def check_settings(feedback, feedback_decay, feedback_sign):
    """One-line ValueError for a feedback mode, decay or sign scale that is not allowed."""
    check_mode(feedback)
    if feedback_sign not in SIGN_SCALES:
        raise ValueError(f"feedback_sign={feedback_sign!r} is not allowed; use one of {', '.join(SIGN_SCALES)}")
    if not (isinstance(feedback_decay, (int, float)) and not isinstance(feedback_decay, bool)
            and math.isfinite(feedback_decay) and feedback_decay >= 0):
        raise ValueError(f"feedback_decay={feedback_decay!r} is not allowed; use a number >= 0")


def choose_modes(layers, feedback):
    """{layer index: mode} for the kernel layers: the spec's `feedback`, else `feedback`."""
    chosen = {i: l.feedback_spec or feedback for i, l in enumerate(layers) if has_kernel(l)}
    seen_dfa = None
    for i in sorted(chosen, reverse=True)[1:]:          # hidden kernel layers, top down
        if chosen[i] == "dfa":
            seen_dfa = seen_dfa if seen_dfa is not None else i
        elif seen_dfa is not None:
            raise ValueError(f"model layer {i} ({layers[i].keras_class}): feedback={chosen[i]!r} below the "
                             f"dfa layer {seen_dfa} would receive no feedback (a dfa block sends none down); "
                             "use feedback: dfa here too, or a mode other than dfa above it")
    top, below = sorted(chosen)[-1], sorted(chosen)[-2:-1]
    if chosen[top] == "dfa" and (not below or chosen[below[0]] != "dfa"):
        # the block below the output is not direct (or there is none): the output's fixed
        # random feedback to it *is* its direct feedback from the output
        chosen[top] = "random"
    return chosen


def draw(net, wiring, i, seed, init_std):
    """Layer i's feedback_kernel B, drawn from default_rng([seed, 3, i]) (None: it needs none)."""
    layers, layer = net.layers, net.layers[i]
    mode, w = layer.feedback_mode, layer.params["kernel"]
    rng = np.random.default_rng([int(seed), 3, i])
    std = getattr(layer, "init_std", init_std)
    if mode == "dfa":
        if layer is layers[-1]:
            return None          # the output layer: its input feedback is never needed
        top = next(t for t, l in wiring.direct.items() if l is layer)
        return layer._init_normal(rng, (net.n_classes, int(np.prod(layers[top].output_shape))), std)
    if mode == "sign" and layer.feedback_sign == "rms":
        return net.xp.zeros_like(w)
    return layer._init_normal(rng, w.shape, std)


def setup(net, feedback="symmetric", feedback_decay=0.001, feedback_sign="rms", seed=1, init_std=0.005):
    """Give every kernel layer its mode (its spec's `feedback`, else `feedback`) and arrays.

    Unties each kernel layer (Layer.untie, set_feedback_kernel) and sets net.untied: a
    Wiring, or None when every layer is symmetric (nothing then differs from the paper's).
    """
    check_settings(feedback, feedback_decay, feedback_sign)
    chosen = choose_modes(net.layers, feedback)
    for i, mode in chosen.items():
        net.layers[i].untie(mode, feedback_sign, feedback_decay)
    wiring = Wiring(net)
    for i, mode in chosen.items():
        if mode == "symmetric":
            continue
        b = draw(net, wiring, i, seed, init_std)
        if b is not None:
            layer = net.layers[i]
            layer.set_feedback_kernel(b)
            if mode == "sign":
                layer.refresh_sign()
    net.untied = wiring if any(m != "symmetric" for m in chosen.values()) else None
    return net


def modes(net):
    """{layer name: mode} for the layers with a kernel."""
    return {l.name: l.feedback_mode for l in net.layers if has_kernel(l)}


def is_untied(net):
    return getattr(net, "untied", None) is not None


@contextlib.contextmanager
def symmetric(net):
    """Inside: every layer sends feedback through its forward weights (the true gradient)."""
    saved = [(l, l.feedback_mode) for l in net.layers if has_kernel(l)]
    untied = getattr(net, "untied", None)
    try:
        for l, _ in saved:
            l.feedback_mode = "symmetric"
        net.untied = None
        yield net
    finally:
        for l, m in saved:
            l.feedback_mode = m
        net.untied = untied


def angle(a, b, xp=np):
    """Degrees between two arrays seen as vectors (nan when either is zero); float64, two host reads.

    2·atan2(‖â − b̂‖, ‖â + b̂‖) with â = a/‖a‖: accurate near 0° and 180° (acos is not).
    """
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    na, nb = float(xp.sqrt(xp.vdot(a, a))), float(xp.sqrt(xp.vdot(b, b)))
    if not (na > 0 and nb > 0):
        return float("nan")
    a, b = a / na, b / nb
    d, s = a - b, a + b
    return math.degrees(2.0 * math.atan2(float(xp.sqrt(xp.vdot(d, d))), float(xp.sqrt(xp.vdot(s, s)))))


def alignment(net, rule, x, labels, epoch=0, batch_size=None):
    """Rows (ALIGNMENT_COLUMNS) for each layer with a kernel on one fixed batch.

    weight_angle: ∠(W, B) (0 for symmetric, nan for dfa, whose B has another shape);
    grad_angle: ∠(the delivered update, the true gradient of the same loss): the rule's
    grads with this feedback and with symmetric feedback, both in inference mode
    (running BatchNorm statistics, no dropout, greedy choice) so that nothing random is
    drawn and no statistic changes: training continues exactly as without the check.
    """
    xp = net.xp
    got = rule.gradients(net, x, labels, train=False, batch_size=batch_size)
    with symmetric(net):
        true = rule.gradients(net, x, labels, train=False, batch_size=batch_size)
    rows = []
    for layer in net.layers:
        if not has_kernel(layer):
            continue
        mode = layer.feedback_mode
        w = layer.params["kernel"]
        if mode == "symmetric":
            wa = 0.0
        elif mode == "dfa":
            wa = float("nan")
        else:
            if mode == "sign":
                layer.refresh_sign()
            b = layer.params.get("feedback_kernel", layer.state.get("feedback_kernel"))
            wa = angle(w, b, xp)
        ga = angle(got[layer.name]["kernel"], true[layer.name]["kernel"], xp)
        rows.append({"epoch": int(epoch), "layer": layer.name, "mode": mode,
                     "weight_angle": wa, "grad_angle": ga})
    return rows
