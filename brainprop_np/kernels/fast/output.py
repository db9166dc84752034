"""The BrainProp output step of a trial in one serial pass over the batch (B × C is small).

Select (ε-greedy Boltzmann from the given uniforms, or argmax, or the given actions),
reward, delta, the attention-gated top feedback and the trial's loss and reward count,
as kernels/cpu.py's `brainprop_step` and the CUDA kernel `brainprop_step`. The softmax's
exp and sums round as C's expf does, not as NumPy's vectorised exp: an action can differ
from the reference's only when u_sample falls within a rounding of a CDF boundary.
"""
import math

import numpy as np

from .jit import serial

_GIVEN, _ARGMAX, _SAMPLE = 0, 1, 2


@serial
def _step(q, labels, epsilon, u_explore, u_sample, scale, mode, actions, reward, delta, fb):
    b_n, c_n = q.shape
    loss, n_correct = 0.0, 0.0
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
        elif mode == _SAMPLE and u_explore[b] < epsilon:
            # inverse CDF of softmax(q[b]): the number of cdf entries below u·cdf[-1]
            total = one - one
            for c in range(c_n):
                z[c] = math.exp(q[b, c] - q[b, greedy])
                total += z[c]
            cdf = one - one
            for c in range(c_n):
                cdf += z[c] / total
                z[c] = cdf
            cut = u_sample[b] * z[c_n - 1]
            a = 0
            for c in range(c_n):
                if z[c] < cut:
                    a += 1
            a = min(a, c_n - 1)
        actions[b] = a
        r = one if a == labels[b] else one - one
        reward[b] = r
        delta[b] = r - q[b, a]
        for c in range(c_n):
            fb[b, c] = 0
        fb[b, a] = -scale * delta[b]
        loss += np.float64(delta[b]) * delta[b]
        n_correct += r
    return loss, n_correct


def brainprop_step(q, labels, epsilon, u_explore, u_sample, nominal, actions=None):
    """Returns (actions, reward, delta, fb, loss, n_correct); see cpu.brainprop_step."""
    b = q.shape[0]
    if actions is not None:
        mode, acts = _GIVEN, np.ascontiguousarray(actions, dtype=np.int64)
    elif u_explore is None and u_sample is None:
        mode, acts = _ARGMAX, np.empty(b, np.int64)
    elif u_explore is None or u_sample is None:
        raise ValueError("brainprop_step: give both u_explore and u_sample (or neither, for argmax)")
    else:
        mode, acts = _SAMPLE, np.empty(b, np.int64)
    dummy = np.zeros(1, q.dtype)
    ue = dummy if u_explore is None else np.ascontiguousarray(u_explore, dtype=q.dtype)
    us = dummy if u_sample is None else np.ascontiguousarray(u_sample, dtype=q.dtype)
    reward, delta, fb = np.empty(b, q.dtype), np.empty(b, q.dtype), np.empty(q.shape, q.dtype)
    t = q.dtype.type
    sq, n_correct = _step(np.ascontiguousarray(q), np.ascontiguousarray(labels, dtype=np.int64), t(epsilon),
                          ue, us, t(1.0 / nominal), mode, acts, reward, delta, fb)
    return acts, reward, delta, fb, t(0.5 * sq / nominal), t(n_correct)
