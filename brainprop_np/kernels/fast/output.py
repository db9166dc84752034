"""The BrainProp output step of a trial in one serial pass over the batch (B × C is small).

Select (ε-greedy Boltzmann with image b's uniforms drawn here from the counter-based
generator, or argmax, or the given actions), reward, delta, the attention-gated top
feedback, the trial's loss and reward count and the epoch's metrics, as kernels/cpu.py's
`brainprop_step` and the CUDA kernel `brainprop_step`. The softmax's exp and sums round as
C's expf does, not as NumPy's vectorised exp: an action can differ from the reference's
only when u_sample falls within a rounding of a CDF boundary.
"""
import math

import numpy as np

from .jit import serial
from .philox import block, key_words, uniform32, uniform64

_GIVEN, _ARGMAX, _SAMPLE = 0, 1, 2


@serial
def _choose(q, b, greedy, epsilon, k0, k1, step, wide, z):
    """Image b's ε-greedy Boltzmann action: argmax unless u_explore < ε, else the number of
    cdf entries of softmax(q[b]) below u_sample·cdf[-1] (inverse CDF)."""
    w0, w1, w2, w3 = block(b, step, k0, k1)
    if wide:                                       # float64 q: 53-bit uniforms
        u_explore, u_sample = uniform64(w0, w1), uniform64(w2, w3)
    else:
        u_explore, u_sample = np.float64(uniform32(w0)), np.float64(uniform32(w2))
    if not u_explore < epsilon:
        return greedy
    c_n = q.shape[1]
    one = q.dtype.type(1)
    total = one - one
    for c in range(c_n):
        z[c] = math.exp(q[b, c] - q[b, greedy])
        total += z[c]
    cdf = one - one
    for c in range(c_n):
        cdf += z[c] / total
        z[c] = cdf
    cut = q.dtype.type(u_sample) * z[c_n - 1]
    a = 0
    for c in range(c_n):
        if z[c] < cut:
            a += 1
    return min(a, c_n - 1)


@serial
def _step(q, labels, epsilon, k0, k1, step, wide, scale, mode, actions, reward, delta, fb, m):
    b_n, c_n = q.shape
    z = np.empty(c_n, dtype=q.dtype)
    one = q.dtype.type(1)
    for b in range(b_n):
        greedy = 0
        for c in range(1, c_n):
            if q[b, c] > q[b, greedy]:             # the first maximum, as argmax
                greedy = c
        a = greedy
        if mode == _GIVEN:
            a = actions[b]
        elif mode == _SAMPLE:
            a = _choose(q, b, greedy, epsilon, k0, k1, step, wide, z)
        actions[b] = a
        r = one if a == labels[b] else one - one
        reward[b] = r
        delta[b] = r - q[b, a]
        for c in range(c_n):
            fb[b, c] = 0
        fb[b, a] = -scale * delta[b]
        d = np.float64(delta[b])
        m[0] += d * d
        m[1] += r
        m[2] += d
        m[3] += abs(d)
        m[4] += 1.0 if a != greedy else 0.0


def brainprop_step(q, labels, epsilon, key, step, nominal, actions=None, metrics=None):
    """Returns (actions, reward, delta, fb, loss, n_correct); see cpu.brainprop_step."""
    b = q.shape[0]
    if actions is not None:
        mode, acts = _GIVEN, np.ascontiguousarray(actions, dtype=np.int64)
    else:
        mode, acts = (_ARGMAX if key is None else _SAMPLE), np.empty(b, np.int64)
    reward, delta, fb = np.empty(b, q.dtype), np.empty(b, q.dtype), np.empty(q.shape, q.dtype)
    t = q.dtype.type
    m = np.zeros(5, np.float64)          # Σ delta², Σ reward, Σ delta, Σ |delta|, explored
    _step(np.ascontiguousarray(q), np.ascontiguousarray(labels, dtype=np.int64), np.float64(t(epsilon)),
          *key_words((0, 0) if key is None else key, step), q.dtype == np.float64, t(1.0 / nominal), mode, acts, reward, delta, fb, m)
    loss = 0.5 * m[0] / nominal
    if metrics is not None:
        metrics += [b * loss, m[1], m[2], m[3], m[4]]
    return acts, reward, delta, fb, t(loss), t(m[1])
