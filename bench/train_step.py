"""Time one BrainProp training step (forward, selection, feedback, update) per network.

    python bench/train_step.py [--device auto|cpu|gpu] [--steps N] [--rounds R]
                               [--nets dense,conv,loccon,deep] [--kernels fast,numpy] [--untiled]
                               [--kept] [--split] [--unfolded] [--system-malloc] [--tile-mb 2.5,4,7]

Prints images/s and the estimated seconds per 60,000-image MNIST epoch for the paper's
`dense` and `conv` (batch 128) and `loccon` (batch 32) networks (`deep`: CIFAR-10
shapes, batch 128, 50,000 images), next to the float32 GEMM rate of the same machine,
measured in the same run, so that each figure reads as a fraction of what the BLAS can
do. On the CPU each kernel set in --kernels is timed, alternating over R rounds in an order
rotated by one every round (the median is shown), with the ratio to the first set, and the minor page faults per step.
--untiled adds the fast set with no convolution tiled (kernels/fast/conv_tiled.py's
WHOLE_MAX raised past any batch), alternating with the others: what tiling gives.
--tile-mb adds the fast set with each listed tile size of its tiled convolutions
(kernels/fast/conv_tiled.py's TILE_BYTES, in MiB; arms named tile=MB), alternating with
the others: which tile the machine's caches favour.
--kept adds the fast set whose ReLU → BatchNorm blocks write post and xhat in training as
well (blocks.py's lean flag off, the joined first block split): what keeping only the
block's input gives.
--split adds the fast set that runs a 1-channel convolution and the ReLU → BatchNorm after
it as two blocks (DirectConv, ReluBatchNorm) instead of one (DirectConvReluBatchNorm):
what joining them gives.
--unfolded adds the fast set whose Dense layers make their tags as an array that SGD then
applies (no FoldedTags): what folding the tags into the update's GEMM gives.
--system-malloc leaves malloc's thresholds as they are instead of keeping freed memory in
the process as a run does (kernels/memory.py); a process setting, so compare it by
alternating whole runs of this script.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import brainprop_np as bp  # noqa: E402  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402

BATCH = {"dense": 128, "conv": 128, "loccon": 32, "deep": 128}
SHAPE = {"dense": (28, 28, 1), "conv": (28, 28, 1), "loccon": (28, 28, 1), "deep": (32, 32, 3)}
EPOCH_OF = {"dense": 60_000, "conv": 60_000, "loccon": 60_000, "deep": 50_000}
# floating-point operations per image and step (forward + feedback + tags), counted below
EPOCH = 60_000


def step_flops(net, batch):
    """2·(multiply-adds) of the GEMMs of every weight layer: forward, tags and input feedback,
    which the first trained layer does not compute (nor does PyTorch for its input)."""
    total = 0
    for i, layer in enumerate(net.layers):
        if "kernel" not in layer.params:
            continue
        w = layer.params["kernel"]
        if isinstance(layer, bp.layers.LocallyConnected2D):
            macs = w.size * batch                          # every weight used once per image
        elif isinstance(layer, bp.layers.Conv2D):
            macs = w.size * batch * layer.out_hw[0] * layer.out_hw[1]
        else:
            macs = w.size * batch
        total += (3 if i > net.first_trained() else 2) * 2 * macs
    return total


def gemm_rate(be, n=2048, repeat=5):
    """Measured float32 GEMM rate in GFLOP/s (n×n by n×n)."""
    xp = be.xp
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    b = a.copy()
    a @ b
    be.synchronize()
    t = time.perf_counter()
    for _ in range(repeat):
        c = a @ b
    be.synchronize()
    del c
    return 2 * n ** 3 * repeat / (time.perf_counter() - t) / 1e9


def make_net(model, be, kernels=None, kept=False, split=False, unfolded=False):
    """The preset, its batch of random inputs and labels, a rule and an optimiser, warmed up
    (kept: its ReLU → BatchNorm blocks keep post and xhat in training, keep_block_state;
    split: planned without DirectConvReluBatchNorm, plan_split; unfolded: without FoldedTags)."""
    batch = BATCH[model]
    device = "gpu" if be.name == "cupy" else "cpu"
    net = bp.build_network(model, SHAPE[model], 10, seed=1, device=device, kernels=kernels)
    if kept:
        keep_block_state(net)
    if split:
        plan_split(net)
    if unfolded:
        plan_without(net, "sgd_update_outer")
    rule, opt = bp.BrainProp(), bp.SGD(lr=0.1)
    rng = np.random.default_rng(0)
    x = net.backend.asarray(rng.random((batch,) + SHAPE[model], dtype=np.float32))
    y = net.backend.asarray(rng.integers(0, 10, batch))
    for _ in range(3):
        rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, 0.1)
    return net, rule, opt, x, y


UNTILED = "untiled"          # the fast set, every conv whole
TILE = "tile="               # the fast set with another tile size: tile=2.5 (MiB)
_OWN = {}


def set_tiling(kernel_set):
    """The fast set's conv tiling for the next steps: none for UNTILED, tiles of MB MiB for
    tile=MB, else the set's own bound and tile."""
    if kernel_set not in ("fast", UNTILED) and not kernel_set.startswith(TILE):
        return
    from brainprop_np.kernels.fast import conv_tiled
    bound = _OWN.setdefault("whole_max", conv_tiled.WHOLE_MAX)
    tile = _OWN.setdefault("tile_bytes", conv_tiled.TILE_BYTES)
    conv_tiled.WHOLE_MAX = float("inf") if kernel_set == UNTILED else bound
    conv_tiled.TILE_BYTES = int(float(kernel_set[len(TILE):]) * 2**20) if kernel_set.startswith(TILE) else tile


KEPT = "kept"                # the fast set, ReLU → BatchNorm blocks keeping post and xhat in training


def keep_block_state(net):
    """Every ReluBatchNorm step of net's plan keeps post and xhat in training (not lean); the
    plan is split first (plan_split), since a joined first block is lean by construction."""
    plan_split(net)
    for step in net.steps():
        if isinstance(step, bp.blocks.ReluBatchNorm):
            step.lean = False


SPLIT = "split"              # the fast set, a 1-channel conv and its ReLU → BatchNorm as two blocks


def plan_split(net):
    """net's plan made as if its kernel set had no conv1_relu_stats (kept until the plan's key changes)."""
    plan_without(net, "conv1_relu_stats")


UNFOLDED = "unfolded"        # the fast set, every Dense's tags made as an array (no FoldedTags)


def plan_without(net, name):
    """net's plan made as if its kernel set had no kernel `name` (kept until the plan's key changes)."""
    from brainprop_np.kernels import fast
    kept = getattr(fast, name)
    delattr(fast, name)
    try:
        net.steps()
    finally:
        setattr(fast, name, kept)


def rotated(items, r):
    """items in round r's order: rotated left by r, so that over a multiple of len(items)
    rounds each arm runs at every place in the round equally often (with a fixed order, the
    first arm measured 4-6 % slower than identical arms behind it in three runs on these
    machines)."""
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def time_steps(state, steps, kernel_set):
    """Seconds per step and minor page faults per step over `steps` steps."""
    import resource
    net, rule, opt, x, y = state
    if net.backend.name == "numpy":
        set_tiling(kernel_set)
    net.backend.synchronize()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        rule.trial(net, x, y, train=True, batch_size=len(y))
        opt.step(net, 0.1)
    net.backend.synchronize()
    dt = (time.perf_counter() - t) / steps
    return dt, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps


def tile_sizes(ap, text):
    """The --tile-mb list as given (strings of positive numbers), or ap.error naming the bad one."""
    sizes = [v for v in text.split(",") if v]
    for v in sizes:
        try:
            ok = float(v) > 0
        except ValueError:
            ok = False
        if not ok:
            ap.error(f"--tile-mb {v!r} is not allowed; give tile sizes in MiB, positive numbers such as 2.5,4")
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=bp.backend.DEVICES)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nets", default="dense,conv,loccon")
    ap.add_argument("--kernels", default="fast,numpy", help="CPU kernel sets to time, the first is the base of the ratio")
    ap.add_argument("--untiled", action="store_true", help="also time the fast set without tiled convolutions")
    ap.add_argument("--kept", action="store_true",
                    help="also time the fast set with its ReLU → BatchNorm blocks keeping post and xhat in training")
    ap.add_argument("--split", action="store_true",
                    help="also time the fast set with a 1-channel conv and its ReLU → BatchNorm as two blocks")
    ap.add_argument("--unfolded", action="store_true",
                    help="also time the fast set with every Dense's tags made as an array (no FoldedTags)")
    ap.add_argument("--tile-mb", default="", help="also time the fast set with these tile sizes of its tiled "
                    "convolutions, in MiB (comma-separated)")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's malloc thresholds as they are (kernels/memory.py): what keeping freed memory gives")
    args = ap.parse_args(argv)
    from brainprop_np.kernels import memory, threads
    n_threads = threads.configure()
    if not args.system_malloc:
        memory.keep_freed_memory()        # as a run does (brainprop_np/run/setup.py)
    be = bp.get_backend(args.device)
    sets = args.kernels.split(",") if be.name == "numpy" else [be.kernel_set]
    sets += [UNTILED] if args.untiled and be.name == "numpy" else []
    sets += [KEPT] if args.kept and be.name == "numpy" else []
    sets += [SPLIT] if args.split and be.name == "numpy" else []
    sets += [UNFOLDED] if args.unfolded and be.name == "numpy" else []
    sets += [TILE + mb for mb in tile_sizes(ap, args.tile_mb)] if be.name == "numpy" else []
    rate = gemm_rate(be)
    print(f"backend {be.name} on {be.device_name()}; {n_threads} threads (BLAS and kernels), "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
          f"malloc {'as the system sets it' if args.system_malloc else 'keeps freed memory'}")
    print(f"float32 GEMM (2048^3): {rate:8.1f} GFLOP/s")
    nets = args.nets.split(",")
    states = {(m, k): make_net(m, be, None if be.name == "cupy" else "fast"
                               if k in (UNTILED, KEPT, SPLIT, UNFOLDED) or k.startswith(TILE) else k,
                               kept=k == KEPT, split=k == SPLIT, unfolded=k == UNFOLDED)
              for m in nets for k in sets}
    times = {key: [] for key in states}
    try:
        for r in range(args.rounds):               # alternate, so every set sees the same load
            for m in rotated(nets, r):             # the sets rotated within each network
                for k in rotated(sets, r):
                    times[(m, k)].append(time_steps(states[(m, k)], args.steps, k))
    finally:
        if be.name == "numpy":
            set_tiling("fast")                      # the set's own bound again
    print(f"{'net':<8}{'kernels':<9}{'batch':>6}{'ms/step':>10}{'images/s':>10}{'s/epoch':>9}"
          f"{'GFLOP/s':>9}{'of GEMM':>8}{'÷ ' + sets[0]:>9}{'faults':>8}")
    for model in nets:
        batch = BATCH[model]
        flops = step_flops(states[(model, sets[0])][0], batch)
        base = float(np.median([t for t, _ in times[(model, sets[0])]]))
        for k in sets:
            dt = float(np.median([t for t, _ in times[(model, k)]]))
            faults = float(np.median([f for _, f in times[(model, k)]]))
            gf = flops / dt / 1e9
            print(f"{model:<8}{k:<9}{batch:>6}{dt * 1e3:>10.2f}{batch / dt:>10.0f}{EPOCH_OF[model] / batch * dt:>9.2f}"
                  f"{gf:>9.1f}{gf / rate:>8.0%}{dt / base:>9.2f}{faults:>8.0f}")


if __name__ == "__main__":
    main()
