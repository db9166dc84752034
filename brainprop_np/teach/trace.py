"""One learning trial, step by step, with real numbers (what `run.py CONFIG --explain` prints).

    trace = explain_trial(net, x, label, epsilon=0.02, lr=0.1, seed=0)
    print(format_trace(trace))

The trial runs on one image (x: (1, H, W, C)) in inference mode (running BatchNorm
statistics, no dropout): training normalises with the statistics of a whole batch, which
one image does not have, and dropout would make the trace a lottery. The choice is still
ε-greedy Boltzmann, as in training. The feedback loop is written out here, layer by layer, so the
trace can record what each layer receives: the number of units with feedback, its size,
the tags (presynaptic activity × postsynaptic feedback) and the weight change
ΔW = lr · δ · tag. The trace ends with the check that this update equals −lr times the
finite-difference gradient of ½δ² (computed in float64).
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import to_host
from ..kernels import cpu
from .gradcheck import numerical_grad


@dataclass
class LayerTrace:
    """What one layer saw in the feedback phase (host arrays / floats)."""
    name: str
    kind: str
    fb_units: int            # output units that received non-zero feedback
    fb_total: int            # output units in all
    fb_norm: float           # ‖fb‖ at the layer's output units (unscaled, one-hot at the top)
    fb_map: object = None    # (H, W) Σ_c fb (signed) at the output units of a 2-D layer
    tags: dict = field(default_factory=dict)      # param → tag array (pre × fb)
    updates: dict = field(default_factory=dict)   # param → ΔW = lr·δ·tag


@dataclass
class Trace:
    label: int
    q: np.ndarray
    greedy_action: int
    action: int
    explored: bool
    p_softmax: np.ndarray
    p_choice: np.ndarray     # probability of each action under ε-greedy Boltzmann
    reward: float
    delta: float
    epsilon: float
    lr: float
    layers: list
    input_fb_map: np.ndarray
    fd_error: float = float("nan")
    fd_checked: int = 0
    fd_skipped: int = 0      # sampled weights whose step crossed a ReLU / max-pool kink
    feedback: list = field(default_factory=list)   # untied feedback: (layer, mode, ∠(ΔW, gradient)°)


def explain_trial(net, x, label, epsilon=0.02, lr=0.1, seed=0, fd_samples=8):
    """Run one BrainProp trial on x (1, H, W, C) with `label`; return a Trace (no weights change).

    The trace walks the layers one by one, so the network runs layer by layer (no fused
    blocks). The finite-difference check needs a float64 NumPy network (skipped otherwise).
    """
    with net.layer_by_layer():
        return _trace_trial(net, x, label, epsilon, lr, seed, fd_samples)


def _trace_trial(net, x, label, epsilon, lr, seed, fd_samples):
    xp = net.xp
    x = net.backend.asarray(x, net.dtype)
    q = net.forward(x, train=False)
    qh = to_host(q)[0].astype(np.float64)
    rng = np.random.default_rng(seed)
    k = net.backend.kernels
    greedy = int(qh.argmax())
    p_soft = cpu.softmax(qh[None])[0]
    u_explore, u_sample = rng.random(), rng.random()          # the two uniforms of one trial
    action = int(to_host(k.select_actions(q, epsilon, xp.asarray([u_explore], dtype=q.dtype),
                                          xp.asarray([u_sample], dtype=q.dtype)))[0])
    explored = bool(u_explore < epsilon)
    p_choice = epsilon * p_soft
    p_choice[greedy] += 1 - epsilon
    reward = float(action == int(label))
    delta = reward - qh[action]

    # Attention-gated feedback: one-hot at the chosen unit, sent down layer by layer.
    fb = xp.zeros_like(q)
    fb[0, action] = 1.0
    fb_top, wiring = fb, getattr(net, "untied", None)
    traces = []
    for i in range(len(net.layers) - 1, -1, -1):
        layer = net.layers[i]
        if wiring is not None:               # untied feedback: DFA's direct paths (feedback.py)
            fb = wiring.arriving(net, i, fb, fb_top)
        fbh = to_host(fb)
        t = LayerTrace(layer.name, type(layer).__name__, int(np.count_nonzero(fbh)), int(fbh.size),
                       float(np.linalg.norm(fbh)))
        if fbh.ndim == 4:
            t.fb_map = fbh[0].sum(axis=-1)
        fb = layer.feedback(fb, need_input_fb=True if wiring is None else wiring.needs_input(net, i, True))
        for pname, tag in layer.grads.items():
            if pname in layer.params:
                t.tags[pname] = to_host(tag).copy()
                t.updates[pname] = lr * delta * t.tags[pname]
        traces.append(t)
    fb_in = to_host(fb)[0] if fb is not None else np.zeros(net.input_shape)   # DFA: none reaches the image
    trace = Trace(int(label), qh, greedy, action, explored, p_soft, p_choice, reward, delta,
                  float(epsilon), float(lr), traces, fb_in.sum(axis=-1))
    if wiring is not None:
        trace.feedback = _untied_alignment(net, fb_top, trace)
    if net.backend.name == "numpy" and net.dtype == np.float64:
        trace.fd_error, trace.fd_checked, trace.fd_skipped = _fd_check(net, x, label, action, trace, lr,
                                                                       fd_samples, rng)
    return trace


def _untied_alignment(net, fb_top, trace):
    """[(layer, mode, angle°)]: ∠ between each kernel's ΔW in this trial and −lr·∂(½δ²)/∂W,
    the update symmetric feedback would give (one more feedback pass, forward weights)."""
    from .. import feedback as F
    with F.symmetric(net):
        net.feedback(fb_top)
        true = {l.name: to_host(l.grads["kernel"]).copy() for l in net.layers if F.has_kernel(l)}
    mode = F.modes(net)
    return [(t.name, mode[t.name], F.angle(t.tags["kernel"], true[t.name])) for t in trace.layers if "kernel" in t.tags]


def format_feedback(t):
    """Lines on the untied feedback of the trace (none for symmetric feedback)."""
    if not t.feedback:
        return []
    lines = ["", "untied feedback (the update is no longer the gradient): per layer, the angle between its ΔW",
             "and the update symmetric feedback (the gradient of ½δ²) would give in this trial",
             f"{'layer':<24}{'feedback':<16}{'∠(ΔW, gradient)':>18}"]
    lines += [f"{name:<24}{mode:<16}{ang:>17.2f}°" for name, mode, ang in t.feedback]
    lines.append("(so the finite-difference check above is expected to disagree below the output layer)")
    return lines


def _fd_check(net, x, label, action, trace, lr, n, rng):
    """Max relative gap between ΔW and −lr·∂(½δ²)/∂W by central differences (gradcheck.numerical_grad).

    ½δ² is differentiable only away from kinks: a ReLU input exactly at 0 (MNIST's black
    background gives many) or a max-pool tie. A sampled weight whose ±step switches any
    ReLU or max-pool winner is skipped and counted, since there the one-sided slopes
    differ and the code (like TensorFlow) uses ReLU'(0) = 0.
    Returns (max gap, weights checked, weights skipped).
    """
    gates = [l for l in net.layers if type(l).__name__ in ("ReLU", "MaxPool2D")]

    def pattern():
        return [(l.post > 0) if hasattr(l, "post") else l.arg for l in gates]

    def half_delta_sq():
        q = net.forward(x, train=False)[0]
        return 0.5 * (float(action == int(label)) - float(q[action])) ** 2

    half_delta_sq()
    base = pattern()

    def smooth():                          # no ReLU or max-pool winner switched by the step
        return not any((a != b).any() for a, b in zip(pattern(), base))

    by_name = {l.name: l for l in net.layers}
    worst, checked, skipped = 0.0, 0, 0
    for t in trace.layers:
        for pname, upd in t.updates.items():
            w = by_name[t.name].params[pname]
            nz = np.flatnonzero(upd)
            pool = nz if nz.size else np.arange(upd.size)
            eps = 1e-4 * max(float(np.sqrt(np.mean(w * w))), 1e-3)
            scale = max(np.abs(upd).max(), 1e-300)
            idx = rng.choice(pool, min(n, pool.size), replace=False)
            numeric = -lr * numerical_grad(half_delta_sq, w, idx, eps, smooth)
            ok = ~np.isnan(numeric)
            skipped += int((~ok).sum())
            checked += int(ok.sum())
            if ok.any():
                worst = max(worst, float((np.abs(numeric - upd.reshape(-1)[idx]) / scale)[ok].max()))
    net.forward(x, train=False)
    return worst, checked, skipped


def _fmt(v):
    return f"{v: .4e}" if v and (abs(v) < 1e-3 or abs(v) >= 1e4) else f"{v: .4f}"


def format_trace(t, class_names=None):
    """The trace as an aligned, terminal-width table."""
    name = (lambda c: f"{c} ({class_names[c]})") if class_names else str
    lines = ["One BrainProp learning trial",
             "(forward pass in inference mode: BatchNorm with its running statistics, since one image",
             " has no batch statistics, and no dropout; the choice is ε-greedy Boltzmann as in training)", ""]
    lines.append(f"label            {name(t.label)}")
    lines.append("Q-values         " + " ".join(f"{v:7.4f}" for v in t.q))
    lines.append("softmax(Q)       " + " ".join(f"{v:7.4f}" for v in t.p_softmax))
    lines.append("P(choose)        " + " ".join(f"{v:7.4f}" for v in t.p_choice)
                 + f"   (1−ε at argmax, ε={t.epsilon} spread by softmax)")
    how = "exploratory (sampled from softmax(Q))" if t.explored else "greedy (argmax Q)"
    lines.append(f"choice           {name(t.action)}: {how}; argmax was {t.greedy_action}")
    lines.append(f"reward           {t.reward:.0f}")
    lines.append(f"delta            {t.delta:+.6f}   (= reward − Q[choice] = {t.reward:.0f} − {t.q[t.action]:.6f})")
    lines.append("")
    lines.append("feedback from the chosen unit, layer by layer from the top "
                 f"(ΔW = lr·δ·tag, lr={t.lr})")
    hdr = f"{'layer':<24}{'kind':<19}{'units w/ fb':>14}{'‖fb‖':>11}  {'param':<7}{'‖tag‖':>11}{'‖ΔW‖':>11}{'max|ΔW|':>11}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for lt in t.layers:
        units = f"{lt.fb_units}/{lt.fb_total}"
        head = f"{lt.name:<24}{lt.kind:<19}{units:>14}{lt.fb_norm:>11.4g}"
        if not lt.tags:
            lines.append(head)
        for j, (p, tag) in enumerate(lt.tags.items()):
            u = lt.updates[p]
            row = f"  {p:<7}{np.linalg.norm(tag):>11.4g}{np.linalg.norm(u):>11.4g}{np.abs(u).max():>11.4g}"
            lines.append((head if j == 0 else " " * len(head)) + row)
    lines.append("columns: units w/ fb = the layer's output units that received feedback / all of them; "
                 "‖fb‖ = size of")
    lines.append("  that feedback (one-hot at the chosen unit on top); param = the weight array; "
                 "‖tag‖ = size of its")
    lines.append("  tags (pre × fb); ‖ΔW‖, max|ΔW| = size and largest entry of the update lr·δ·tag "
                 f"({'strengthens' if t.delta > 0 else 'weakens'}")
    lines.append(f"  the tagged synapses, since δ {'>' if t.delta > 0 else '<='} 0)")
    lines.append("")
    if t.fd_checked:
        ok = "agrees" if t.fd_error < 1e-6 else "DISAGREES"
        lines.append(f"check: ΔW {ok} with −lr·∂(½δ²)/∂W by finite differences on {t.fd_checked} weights: "
                     f"max relative gap {t.fd_error:.2e}")
        if t.fd_skipped:
            lines.append(f"       ({t.fd_skipped} sampled weights skipped: their ±step switched a ReLU at exactly 0 "
                         "or a max-pool winner, where ½δ² has a kink)")
    else:
        lines.append("check: finite differences skipped (needs a float64 network on the CPU)")
    lines += format_feedback(t)
    return "\n".join(lines)
