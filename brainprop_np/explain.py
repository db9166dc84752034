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

Weights: untrained weights (q ≈ 0, tiny activations) show δ ≈ 0 and ΔW ≈ 1e-10, which
teaches nothing, so the command line first trains the config's network for a few hundred
BrainProp steps on the dataset's training images (`pretrain`, cached under
~/.cache/brainprop_np/explain or $BRAINPROP_CACHE) and says so; `--load` takes your
weights, `--train-steps 0` the initial ones.
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import to_host
from .kernels import cpu


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

    The finite-difference check needs a float64 NumPy network (skipped otherwise).
    """
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
    from . import feedback as F
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
    """Max relative gap between ΔW and −lr·∂(½δ²)/∂W by central differences.

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
        return 0.5 * (float(action == int(label)) - float(q[action])) ** 2, pattern()

    _, base = half_delta_sq()
    by_name = {l.name: l for l in net.layers}
    worst, checked, skipped = 0.0, 0, 0
    for t in trace.layers:
        for pname, upd in t.updates.items():
            w = by_name[t.name].params[pname]
            flat = w.reshape(-1)
            nz = np.flatnonzero(upd)
            pool = nz if nz.size else np.arange(upd.size)
            eps = 1e-4 * max(float(np.sqrt(np.mean(w * w))), 1e-3)
            scale = max(np.abs(upd).max(), 1e-300)
            for i in rng.choice(pool, min(n, pool.size), replace=False):
                old = flat[i]
                flat[i] = old + eps
                fp, pp = half_delta_sq()
                flat[i] = old - eps
                fm, pm = half_delta_sq()
                flat[i] = old
                if any((a != b).any() for a, b in zip(pp + pm, base + base)):
                    skipped += 1
                    continue
                numeric = -lr * (fp - fm) / (2 * eps)
                worst = max(worst, abs(numeric - upd.reshape(-1)[i]) / scale)
                checked += 1
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


def require_figure():
    """matplotlib's Figure class (no pyplot, no GUI), or a one-line error saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("figures need matplotlib, which is not installed; "
                           "install it with: pip install matplotlib") from None
    return Figure


def figure_png(fig):
    """The PNG bytes of a matplotlib Figure."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_figures(trace, image, out_dir):
    """Save PNGs of where the attention-gated feedback goes; return the paths written.

    image: (H, W, C) input in [0, 1]. Writes `feedback_input.png` (the image beside
    Σ_c fb at the input) and `feedback_<layer>.png` for every convolutional or
    locally-connected layer (Σ_c fb at its output units: where the credit for this
    choice goes), in a signed colour map (red > 0, blue < 0) with δ in the title and a
    caption saying what the colours mean for the update. Each figure is 720×400 pixels.
    """
    from pathlib import Path
    from .runfolder import write_bytes
    Figure = require_figure()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    img = np.asarray(image, dtype=np.float64)
    img = img[..., 0] if img.shape[-1] == 1 else img
    maps = [("input", trace.input_fb_map)]
    maps += [(t.name, t.fb_map) for t in reversed(trace.layers)
             if t.fb_map is not None and t.kind in ("Conv2D", "LocallyConnected2D")]
    up, down = ("strengthened", "weakened") if trace.delta > 0 else ("weakened", "strengthened")
    outcome = "rewarded" if trace.reward else "not rewarded"
    paths = []
    for name, fmap in maps:
        fig = Figure(figsize=(7.2, 4.0), dpi=100)
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.03, right=0.92, top=0.86, bottom=0.24, wspace=0.15)
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[0].set_title(f"input: label {trace.label}, chose {trace.action} ({outcome})", fontsize=9)
        m = float(np.abs(fmap).max()) or 1.0
        im = axes[1].imshow(fmap, cmap="RdBu_r", vmin=-m, vmax=m)
        where = "at the input" if name == "input" else f"at {name}'s units"
        axes[1].set_title(f"feedback fb {where} (Σ over channels)\nδ = reward − q[action] = {trace.delta:+.4f}",
                          fontsize=8)
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.text(0.03, 0.03,
                 f"Attention-gated feedback sent down from the chosen output unit {trace.action} only. Red: fb > 0, "
                 f"blue: fb < 0.\nEach synapse changes by ΔW = lr·δ·pre·fb: with δ {'>' if trace.delta > 0 else '<='} 0, "
                 f"synapses from active inputs onto red units are {up},\nonto blue units {down}; white units "
                 "get (almost) no feedback and (almost) no change from this trial.", fontsize=7.5, va="bottom")
        path = out_dir / f"feedback_{name}.png"
        write_bytes(path, figure_png(fig))
        paths.append(str(path))
    return paths


def cache_dir():
    """Where pretrained explain weights are kept: $BRAINPROP_CACHE, else ~/.cache/brainprop_np/explain."""
    import os
    from pathlib import Path
    env = os.environ.get("BRAINPROP_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/brainprop_np/explain").expanduser()


def pretrain(cfg, ds, steps, batch_size=32, progress=None):
    """Train the config's network (float32, CPU, its seed) for `steps` BrainProp steps of
    `batch_size` images drawn from ds's training images; return (net, seconds, cache path or None).

    The result is cached by (model, seed, settings, dataset, steps) so that a second
    `--explain` starts at once; a cache that cannot be written is simply not used.
    """
    import hashlib
    import json
    import time
    from . import __version__
    from .checkpoint import load_weights_file, save_weights
    from .network import build_network
    from .optim import SGD
    from .progress import Progress
    from .rules import BrainProp
    t = cfg["train"]
    net = build_network(cfg["model"], ds.input_shape, ds.n_classes, seed=cfg["seed"], device="cpu",
                        dtype="float32", algorithm="brainprop", init_std=t["init_std"])
    key = json.dumps([__version__, cfg["model"], cfg["seed"], t["init_std"], t["lr"], t["l2"],
                      cfg["brainprop"]["epsilon"], ds.name, len(ds.x_train), steps, batch_size], sort_keys=True)
    path = cache_dir() / f"{cfg['name']}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            load_weights_file(net, path)
            return net, 0.0, path
        except Exception:
            pass
    rule, opt = BrainProp(cfg["brainprop"]["epsilon"]), SGD(lr=t["lr"], l2=t["l2"], halve_every=0)
    rng = np.random.default_rng([cfg["seed"], 2])
    order = rng.permutation(len(ds.x_train))
    bar = Progress(steps, "training before the trial", enabled=progress)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for step in range(steps):
            idx = order[(np.arange(batch_size) + step * batch_size) % len(order)]
            x = ds.x_train[idx].astype(np.float32) / 255.0
            rule.trial(net, x, ds.y_train[idx], train=True, batch_size=batch_size)
            opt.step(net, t["lr"])
            bar.update(images=batch_size)
    bar.close()
    seconds = time.perf_counter() - t0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, net)
    except OSError:
        path = None
    return net, seconds, path


def explain_config(config, overrides=(), weights=None, image_index=0, figures=None, seed=0, say=print,
                   train_steps=0, progress=False):
    """What `brainprop explain CONFIG` does: one trial on test image `image_index` of the
    configured dataset (the bundled MNIST sample when the data are absent).

    The network is built from the config (seed, architecture) in float64 on the CPU, so that
    the finite-difference check is exact. Its weights: `weights` (.npz or Keras .h5) when
    given, else the config's network after `train_steps` BrainProp steps on the dataset's
    training images (`pretrain`; the command line's default is 200), else (0) the initial
    weights. Returns (trace, text, figure paths); the text says which weights were used.
    """
    from . import data
    from .backend import BackendError
    from .checkpoint import load_weights_file
    from .network import build_network
    from .train import _as_config, feedback_args

    cfg = _as_config(config, list(overrides) + ["device=cpu", "dtype=float64"])
    if cfg["algorithm"] != "brainprop":
        raise ValueError(f"algorithm={cfg['algorithm']!r} is not allowed with --explain: it traces one BrainProp "
                         "trial (choice, reward, delta, attention-gated feedback); EBP has no choice to explain")
    if train_steps < 0:
        raise ValueError(f"--train-steps {train_steps} is not allowed; use an integer >= 0 (0: untrained weights)")
    try:
        ds = data.load(cfg["data"]["name"], root=cfg["data"]["root"], download=False,
                       label_mode=cfg["data"]["label_mode"])
    except data.DataError as e:
        first = str(e).split(";")[0]
        say(f"note: {first[:90]}; explaining on the bundled MNIST sample instead")
        ds = data.load("mnist_sample")
    if not 0 <= image_index < len(ds.x_test):
        raise ValueError(f"--image {image_index} is not allowed; use 0..{len(ds.x_test) - 1}")
    try:
        net = build_network(cfg["model"], ds.input_shape, ds.n_classes, seed=cfg["seed"], device="cpu",
                            dtype="float64", algorithm="brainprop", init_std=cfg["train"]["init_std"],
                            **feedback_args(cfg))
    except BackendError:
        raise
    if weights:
        load_weights_file(net, weights)
        which = f"weights {weights}"
    elif train_steps:
        trained, seconds, path = pretrain(cfg, ds, train_steps, progress=progress)
        net.set_weights(trained.get_weights())
        how = f"trained now in {seconds:.0f} s" if seconds else "read from the cache"
        which = (f"weights: the seed-{cfg['seed']} network after {train_steps} BrainProp steps of 32 {ds.name} "
                 f"training images ({how}{', ' + str(path) if path else ''}); --train-steps 0: untrained, "
                 "--load W: yours")
    else:
        which = f"initial weights, seed {cfg['seed']} (untrained: q ≈ 0, so δ and ΔW are tiny)"
    x = ds.x_test[image_index:image_index + 1].astype(np.float64) / 255.0
    label = int(ds.y_test[image_index])
    trace = explain_trial(net, x, label, epsilon=cfg["brainprop"]["epsilon"], lr=cfg["train"]["lr"], seed=seed)
    names = list(ds.classes) if getattr(ds, "classes", None) is not None else None
    text = (f"dataset {ds.name}, test image {image_index}, network {cfg['name']}\n{which}\n\n"
            + format_trace(trace, names))
    paths = save_figures(trace, x[0], figures) if figures else []
    return trace, text, paths
