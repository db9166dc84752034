"""The warm-up before the first epoch's timer: every kernel of a training step compiled (or
loaded from its cache) and run once, so that epoch_seconds measures training alone.

    seconds = warm_up(run)     # after the data are on the device, before the first epoch

On the CPU that is the numba kernels of the fast set (compiled once, then loaded from
numba's cache, which lives beside the sources or in $NUMBA_CACHE_DIR; COMPILING is said
only when one must really be compiled); on the GPU the NVRTC modules of kernels/*.cu, CuPy's own
kernels of the step, cuBLAS's start-up and the memory pool.

The warm-up trains a throw-away network — built from the config, with its own rule,
optimiser and random generator — for one batch of the training set's size and, when the
last batch of an epoch is smaller, one of that size (the fast set picks serial or
parallel code by size), then runs it once in inference mode with validation's per-class
count. The run's network, its weights, its random draws and the shuffling generator are
not touched, so a run with the warm-up gives the same bits as one without. summary.json
records the seconds apart (`warmup_seconds`, and `kernel_compile_seconds` for the
compiling part).
"""
import time

import numpy as np

from ..network import build_network
from ..rules import make_rule
from ..rules.base import METRICS
from .loop import class_tally, step
from .setup import make_optimiser, network_args

COMPILING = "compiling CPU kernels (cached for later runs) …"


def warm_up(run):
    """Run every kernel of a training step once on a throw-away network; the seconds it took."""
    be = run.backend
    t0 = time.perf_counter()
    with _compile_notice(be, run.say):
        if be.name == "cupy":
            from ..kernels import cuda_module
            cuda_module.compile_all()
        _throw_away_steps(run)
        be.synchronize()
    return time.perf_counter() - t0


def _throw_away_steps(run):
    """A learning trial and an SGD step per batch size that training uses, then inference."""
    cfg, net = run.cfg, run.net
    spare = build_network(**network_args(cfg, net.input_shape, net.n_classes, device=run.backend))
    rule = make_rule(cfg["algorithm"], cfg["brainprop"]["epsilon"])
    opt = make_optimiser(cfg)
    bs, n = cfg["train"]["batch_size"], len(run.train_it)
    first = np.arange(bs + n % bs if n % bs else bs)        # a full batch, then the last one's size
    sums = run.backend.xp.zeros(len(METRICS), dtype=np.float64)   # the kernels' metrics path, as in training
    x = None
    for x, y in run.train_it.epoch(bs, first):
        step(rule, opt, spare, x, y, opt.lr_at(0), bs, sums)
    if x is not None:                                       # inference and validation's per-class count
        class_tally(run.backend.xp, spare.forward(x, train=False), y)


class _compile_notice:
    """While inside: the fast set says COMPILING (once) before it compiles a kernel."""

    def __init__(self, backend, say):
        self.jit = None
        if backend.kernel_set == "fast":
            from ..kernels.fast import jit
            self.jit, self.say = jit, say

    def __enter__(self):
        if self.jit is not None:
            self.jit.notice_compiling(lambda: self.say.err(COMPILING))
        return self

    def __exit__(self, *exc):
        if self.jit is not None:
            self.jit.notice_compiling(None)
        return False
