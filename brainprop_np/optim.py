"""Plain SGD with the paper's learning-rate schedule and Keras-style L2.

    lr(epoch) = lr0 · 0.5^(epoch // halve_every)          (epoch counted from 0)
    W ← W − lr · (∂L/∂W + 2·l2·W)   for kernels (Keras l2(λ) adds λ·ΣW² to the loss)
    gamma ← gamma − lr · ∂L/∂gamma, beta likewise  (no regularisation, as in the original code)
Kolen–Pollack layers (feedback.py) learn their feedback_kernel B with the kernel's update,
L2 included, and both decay by lr·feedback_decay more: W ← W(1 − 2·lr·l2 − lr·λ) − lr·∂L/∂W.
"""
from .layers.grads import OuterTag

KERNELS = ("kernel", "feedback_kernel")


class SGD:
    """Momentum-free SGD. lr: initial rate; halve_every: epochs between halvings (0: never)."""

    def __init__(self, lr=0.1, l2=0.0, halve_every=100):
        if not lr > 0:
            raise ValueError(f"lr={lr!r} is not allowed; use a positive number")
        if l2 < 0:
            raise ValueError(f"l2={l2!r} is not allowed; use a number >= 0")
        self.lr0, self.l2, self.halve_every = float(lr), float(l2), int(halve_every)

    def lr_at(self, epoch):
        """Learning rate of 0-based `epoch`."""
        if self.halve_every <= 0:
            return self.lr0
        return self.lr0 * 0.5 ** (epoch // self.halve_every)

    RETURNS_L2_LOSS = True    # step() returns the L2 term of the loss (tests/launch_counter.py reads this)

    def step(self, net, lr):
        """Apply the layers' stored grads in place: W ← W·decay − lr·∂L/∂W.

        decay = 1 − 2·lr·l2 for kernels (the L2 term folded in; − lr·feedback_decay for
        Kolen–Pollack kernels and their B), 1 for everything else.
        One fused update per array (`kernels.sgd_update`: one launch on the GPU, no
        temporary the size of W on the CPU); a Dense kernel's tags stored as their factors
        (layers/grads.py's OuterTag) go into W by one GEMM (`kernels.sgd_update_outer`).
        The grads are left as they are.
        Returns l2·ΣW² over the kernels before the update — the L2 term Keras adds to the
        reported loss, summed by the kernels' own update launches (on the device, no
        synchronisation) — when l2 > 0, else None.
        """
        k = net.backend.kernels
        sumsq = None
        for layer, pname, w in net.trainable():
            kernel = pname in KERNELS
            regularised = bool(self.l2 and kernel)
            decay = 1.0 - 2.0 * lr * self.l2 if regularised else 1.0
            if kernel and layer.feedback_decay:                 # Kolen–Pollack: on W and B alike
                decay -= lr * layer.feedback_decay
            if regularised and sumsq is None:
                sumsq = net.xp.zeros((), dtype=w.dtype)
            sq, g = sumsq if regularised else None, layer.grads.stored(pname)
            if isinstance(g, OuterTag):                   # the tags as pre, fb: one GEMM into W
                k.sgd_update_outer(w, g.pre, g.fb, lr, decay, sq)
            else:
                k.sgd_update(w, g, lr, decay, sq)
        return None if sumsq is None else sumsq.dtype.type(self.l2) * sumsq   # W's dtype under NumPy 1.x too
