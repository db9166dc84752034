"""Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
numbers: as easy as 1, 2, 3", SC 2011), the generator of cuRAND, JAX and PyTorch's CUDA dropout.

A random number is a pure function of (key, counter): there is no generator state to save,
and the NumPy reference here, the fast set (kernels/fast/philox.py) and the CUDA kernels
(kernels/philox.cuh) compute the same bits. One round maps the counter (c0, c1, c2, c3)
with the key (k0, k1):

    hi0:lo0 = M0 · c0,  hi1:lo1 = M1 · c2          (32 × 32 → 64-bit products)
    (c0, c1, c2, c3) ← (hi1 ⊕ c1 ⊕ k0, lo1, hi0 ⊕ c3 ⊕ k1, lo0)
    (k0, k1) ← (k0 + W0, k1 + W1)   mod 2³²          (between rounds)

with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85; ten rounds.

Where a network's draws come from (the same on every backend and card):
  key      (seed, purpose·2¹⁶ + layer): purpose EXPLORE (the action choice; layer = the
           output layer's index) or DROPOUT (layer = the dropout layer's index);
  counter  (element mod 2³², element div 2³², step mod 2³², step div 2³²): `step` numbers
           the learning trial (Draws.step: rule.trial advances it after each training
           trial, the training loop sets it to epoch·n_batches + batch), `element` the
           unit of the batch's activity (dropout, flat index) or the image (exploration).
  uniform  from two output words (a, b): float32 u = (a >> 8)·2⁻²⁴ (the top 24 bits of a),
           float64 u = (a·2²¹ + (b >> 11))·2⁻⁵³ (the top 53 bits of a:b); both exact in
           [0, 1). A dropout unit takes words (0, 1); an image's u_explore takes (0, 1) and
           its u_sample (2, 3).
"""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)     # round multipliers
W0, W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)     # key increments (golden ratio, √3 − 1)
ROUNDS = 10
MASK32 = np.uint64(0xFFFFFFFF)
EXPLORE, DROPOUT = 1, 2                                    # purposes of the draws (the key's second word)


def philox4x32(counter, key, rounds=ROUNDS):
    """Philox4x32-R: counter (4, N) uint32 and key (2,) uint32 → (4, N) uint32 random words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = (np.uint64(k) for k in key)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        p0, p1 = M0 * c0, M1 * c2                           # exact: both factors < 2³²
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK32
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def make_key(seed, purpose, layer):
    """The key (2,) uint32 of a stream: (seed, purpose·2¹⁶ + layer)."""
    if not 0 <= int(seed) < 2 ** 32 or not 0 <= int(layer) < 2 ** 16:
        raise ValueError(f"seed={seed!r}, layer={layer!r}: the key needs 0 <= seed < 2^32 and 0 <= layer < 2^16")
    return np.array([int(seed), int(purpose) * 2 ** 16 + int(layer)], dtype=np.uint32)


def counters(step, n):
    """The counters (4, n) uint32 of elements 0..n−1 at trial `step`."""
    e = np.arange(n, dtype=np.uint64)
    s = np.full(n, int(step), dtype=np.uint64)
    return np.stack([e & MASK32, e >> np.uint64(32), s & MASK32, s >> np.uint64(32)]).astype(np.uint32)


def to_uniform(a, b, dtype):
    """Uniforms in [0, 1) from word arrays a, b: float32 (a >> 8)·2⁻²⁴, float64 (a·2²¹ + (b >> 11))·2⁻⁵³."""
    dt = np.dtype(dtype)
    if dt == np.float32:
        return (a >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    if dt == np.float64:
        bits = (a.astype(np.uint64) << np.uint64(21)) | (b.astype(np.uint64) >> np.uint64(11))
        return bits.astype(np.float64) * 2.0 ** -53
    raise TypeError(f"uniforms of dtype {dt} are not drawn; use float32 or float64")


def uniforms(key, step, n, dtype):
    """(n,) uniforms of elements 0..n−1 at `step` (words 0 and 1 of each element's block)."""
    w = philox4x32(counters(step, n), key)
    return to_uniform(w[0], w[1], dtype)


def explore_uniforms(key, step, b, dtype):
    """(u_explore, u_sample), each (b,): image i's block gives u_explore from words 0, 1 and
    u_sample from words 2, 3."""
    w = philox4x32(counters(step, b), key)
    return to_uniform(w[0], w[1], dtype), to_uniform(w[2], w[3], dtype)


class Draws:
    """Where a network's random numbers come from: its seed and the trial counter `step`.

    step numbers the learning trial whose draws a training forward pass and action choice
    use: rule.trial advances it by one after each training trial, the training loop sets
    it to epoch·n_batches + batch before an epoch's first trial (so a resumed run, which
    knows its epoch and batch, draws what the uninterrupted run drew), and a checkpoint
    keeps it. Forward passes at the same step draw the same masks.
    """

    def __init__(self, seed, step=0):
        self.seed, self.step = int(seed), int(step)
        self._keys = {}

    def key(self, purpose, layer):
        """The key (2,) uint32 of (purpose, layer), made once: a trial asks for it every step."""
        if (purpose, layer) not in self._keys:
            self._keys[purpose, layer] = make_key(self.seed, purpose, layer)
        return self._keys[purpose, layer]

    def __repr__(self):
        return f"Draws(seed={self.seed}, step={self.step})"
