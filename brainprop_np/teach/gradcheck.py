"""Finite-difference checks of hand-written feedback and tags (use float64, NumPy).

    err = check_layer(layer, x, train=True)           # max relative error over sampled entries
    err = check_network(net, rule, x, labels, actions, train=False)

A layer is checked through the scalar L = Σ y·R for a fixed random R: then ∂L/∂y = R is
the feedback that enters the layer, `feedback(R)` must equal ∂L/∂x and the stored
grads must equal ∂L/∂W. A network is checked through the rule's own loss with the
actions held fixed (BrainProp: Σ_b ½ (reward_b − q[b, action_b])² / B; EBP: mean
cross-entropy).
"""
import numpy as np


def _sample(size, n, rng):
    """Up to n distinct flat indices of an array of `size` entries (all when small)."""
    if size <= n:
        return np.arange(size)
    return rng.choice(size, n, replace=False)


def numerical_grad(f, arr, idx, eps=1e-6, smooth=None):
    """Central differences (f(a + eps) − f(a − eps)) / 2eps at flat indices idx of arr (in place, restored).

    smooth: optional callable, asked after each of the two evaluations whether f is still
    on the same smooth piece (no ReLU or max-pool switched); an entry where it says no is
    NaN (a kink, where the one-sided slopes differ).
    """
    flat = arr.reshape(-1)
    out = np.empty(len(idx))
    for j, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        ok = smooth is None or smooth()
        flat[i] = old - eps
        fm = f()
        ok = ok and (smooth is None or smooth())
        flat[i] = old
        out[j] = (fp - fm) / (2 * eps) if ok else np.nan
    return out


def rel_error(analytic, numeric):
    """max |a − n| / max(|a|, |n|, 1e-8) · scale-aware: relative to the largest entry compared."""
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0), 1e-8)
    return float(np.abs(analytic - numeric).max(initial=0) / scale)


def check_layer(layer, x, train=True, n_samples=40, eps=1e-6, seed=0):
    """Max relative error between the layer's feedback/grads and finite differences.

    Returns {'input': err, '<param>': err, ...}. The layer must be built in float64.
    """
    rng = np.random.default_rng(seed)
    y = layer.forward(x, train)
    r = rng.standard_normal(y.shape)

    def loss():
        return float((layer.forward(x, train) * r).sum())

    layer.forward(x, train)
    fb_in = layer.feedback(r.copy(), need_input_fb=True)
    grads = {k: np.array(v) for k, v in layer.grads.items()}
    errs = {}
    idx = _sample(x.size, n_samples, rng)
    errs["input"] = rel_error(fb_in.reshape(-1)[idx], numerical_grad(loss, x, idx, eps))
    for name, w in layer.params.items():
        idx = _sample(w.size, n_samples, rng)
        errs[name] = rel_error(grads[name].reshape(-1)[idx], numerical_grad(loss, w, idx, eps))
    return errs


def rule_loss(net, rule, x, labels, actions, train, batch_size=None):
    """The loss whose gradient the rule's feedback implements, with actions fixed."""
    q = net.forward(x, train)
    b = q.shape[0]
    if rule.name == "brainprop":
        reward = (actions == labels).astype(q.dtype)
        delta = reward - q[np.arange(b), actions]
        return float(0.5 * (delta ** 2).sum() / (batch_size or b))
    z = q - q.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(b), labels].mean())


def check_network(net, rule, x, labels, actions, train=False, n_samples=12, eps=1e-6, seed=0):
    """Max relative error of the rule's grads (and the input feedback) against finite differences.

    Returns {'<layer>/<param>': err, ..., 'input': err}. Dropout should be off (rate 0 or
    a fixed mask) when train=True; BatchNorm uses batch statistics then.
    """
    rng = np.random.default_rng(seed)
    grads = rule.gradients(net, x, labels, actions=actions, train=train)
    grads = {l: {p: np.array(g) for p, g in d.items()} for l, d in grads.items()}
    net.forward(x, train)
    fb = _top_feedback(net, rule, x, labels, actions, train)
    fb_in = net.feedback(fb, input_feedback=True)

    def loss():
        return rule_loss(net, rule, x, labels, actions, train)

    errs = {}
    for layer, pname, w in net.trainable():
        idx = _sample(w.size, n_samples, rng)
        errs[f"{layer.name}/{pname}"] = rel_error(grads[layer.name][pname].reshape(-1)[idx],
                                                  numerical_grad(loss, w, idx, eps))
    idx = _sample(x.size, n_samples, rng)
    errs["input"] = rel_error(fb_in.reshape(-1)[idx], numerical_grad(loss, x, idx, eps))
    return errs


def _top_feedback(net, rule, x, labels, actions, train):
    """The rule's output feedback for the last forward pass (re-run to get q)."""
    q = net.forward(x, train)
    k = net.backend.kernels
    if rule.name == "brainprop":
        return k.brainprop_output(q, labels, actions, 1.0 / q.shape[0])[2]
    return k.ebp_output(q, labels, 1.0 / q.shape[0])[1]
