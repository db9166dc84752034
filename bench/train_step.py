"""Time one BrainProp training step (forward, selection, feedback, update) per network.

    python bench/train_step.py [--device auto|cpu|gpu] [--steps N] [--nets dense,conv,loccon]

Prints images/s and the estimated seconds per 60,000-image MNIST epoch for the paper's
`dense` and `conv` (batch 128) and `loccon` (batch 32) networks, next to the float32
GEMM rate of the same machine, measured in the same run, so that each figure reads as a
fraction of what the BLAS can do.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # as run.py: before NumPy loads
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import brainprop_np as bp  # noqa: E402

BATCH = {"dense": 128, "conv": 128, "loccon": 32}
# floating-point operations per image and step (forward + feedback + tags), counted below
EPOCH = 60_000


def step_flops(net, batch):
    """2·(multiply-adds) of the three GEMMs (forward, input feedback, tags) of every weight layer."""
    total = 0
    for layer in net.layers:
        if "kernel" not in layer.params:
            continue
        w = layer.params["kernel"]
        if isinstance(layer, bp.layers.LocallyConnected2D):
            macs = w.size * batch                          # every weight used once per image
        elif isinstance(layer, bp.layers.Conv2D):
            macs = w.size * batch * layer.out_hw[0] * layer.out_hw[1]
        else:
            macs = w.size * batch
        total += 3 * 2 * macs
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


def time_net(model, be, steps, warmup=3):
    batch = BATCH[model]
    net = bp.build_network(model, (28, 28, 1), 10, seed=1, device=be.name == "cupy" and "gpu" or "cpu")
    rule, opt = bp.BrainProp(), bp.SGD(lr=0.1)
    rng = np.random.default_rng(0)
    x = be.asarray(rng.random((batch, 28, 28, 1), dtype=np.float32))
    y = be.asarray(rng.integers(0, 10, batch))
    for _ in range(warmup):
        rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, 0.1)
    be.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, 0.1)
    be.synchronize()
    dt = (time.perf_counter() - t) / steps
    return batch, dt, step_flops(net, batch)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--nets", default="dense,conv,loccon")
    args = ap.parse_args(argv)
    be = bp.get_backend(args.device)
    rate = gemm_rate(be)
    from brainprop_np.kernels import threads
    print(f"backend {be.name} on {be.device_name()}; element-wise threads {threads.N_THREADS}, "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}")
    print(f"float32 GEMM (2048^3): {rate:8.1f} GFLOP/s")
    print(f"{'net':<8}{'batch':>6}{'ms/step':>10}{'images/s':>11}{'s/epoch':>9}{'GFLOP/s':>9}{'of GEMM':>9}")
    for model in args.nets.split(","):
        batch, dt, flops = time_net(model, be, args.steps)
        gf = flops / dt / 1e9
        print(f"{model:<8}{batch:>6}{dt * 1e3:>10.2f}{batch / dt:>11.0f}{EPOCH / batch * dt:>9.2f}"
              f"{gf:>9.1f}{gf / rate:>9.0%}")


if __name__ == "__main__":
    main()
