"""brainprop_np against an independent PyTorch implementation, timed alternately in one run.

    python bench/vs_pytorch.py [--nets dense,conv,loccon] [--rounds 3] [--steps 40]
                               [--kernels fast,numpy]

The PyTorch side is a plain script of the same networks (the paper's dense, conv and
loccon for 28×28×1 MNIST, batch 128/128/32) trained with the BrainProp step by autograd:
q = net(x); action ε-greedy Boltzmann; reward = [action = label]; delta = reward − q[action];
loss = ½·Σ delta² / B; loss.backward(); W ← W − lr·∂L/∂W. The locally-connected layer
has no PyTorch module: it is unfold + a batched GEMM over positions (einsum), as one
would write it. Both sides use float32, the same number of threads, and random inputs
of MNIST's shape (timing does not depend on the pixel values).

Each round times every side for `--steps` steps, alternating, so that both see the same
machine load; each side runs in a process of its own (torch's OpenMP threads keep
spinning after its work and would slow whatever runs next in the same process). The
table gives the median over rounds, the seconds per 60,000-image epoch, the ratio
ours/PyTorch, the share of the machine's float32 GEMM rate (measured in the same run)
and each side's peak RSS. Skips with one line when torch is not installed.
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brainprop_np as bp  # noqa: E402  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
from train_step import BATCH, EPOCH, gemm_rate, step_flops  # noqa: E402


def torch_net(model, torch):
    """The paper's network as torch modules (NCHW inside; Keras's settings)."""
    nn = torch.nn

    class LocallyConnected2d(nn.Module):
        """Valid, unshared 3×3 weights: unfold, then one batched GEMM over positions."""

        def __init__(self, c_in, c_out, hw_in, k, stride):
            super().__init__()
            self.k, self.stride = k, stride
            self.ho = (hw_in - k) // stride + 1
            self.weight = nn.Parameter(torch.randn(self.ho * self.ho, c_in * k * k, c_out) * 0.005)

        def forward(self, x):
            cols = nn.functional.unfold(x, self.k, stride=self.stride)      # (B, C·k·k, P)
            y = torch.einsum("bqp,pqf->bfp", cols, self.weight)
            return y.reshape(x.shape[0], -1, self.ho, self.ho)

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    if model == "dense":
        layers = [nn.Flatten(), nn.Linear(784, 1500, bias=False), nn.ReLU(),
                  nn.Linear(1500, 1000, bias=False), nn.ReLU(), nn.Linear(1000, 500, bias=False), nn.ReLU()]
        n_flat = 500
    elif model == "conv":
        layers = [nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.ReLU(), bn(32),
                  nn.Conv2d(32, 32, 3, 2, 1, bias=False), nn.ReLU(), bn(32), nn.Dropout(0.3),
                  nn.Flatten(), nn.Linear(14 * 14 * 32, 500, bias=False), nn.ReLU(), nn.Dropout(0.3)]
        n_flat = 500
    else:
        layers = [LocallyConnected2d(1, 32, 28, 3, 1), nn.ReLU(), bn(32),
                  LocallyConnected2d(32, 32, 26, 3, 2), nn.ReLU(), bn(32), nn.Dropout(0.3),
                  nn.Flatten(), nn.Linear(12 * 12 * 32, 500, bias=False), nn.ReLU(), nn.Dropout(0.3)]
        n_flat = 500
    net = nn.Sequential(*layers, nn.Linear(n_flat, 10, bias=False))
    std = bp.presets.PRESET_SETTINGS[model]["init_std"]          # the paper's init, as ours
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, LocallyConnected2d):
            nn.init.normal_(m.weight, 0.0, std)
    return net


def torch_step(torch, net, x, y, lr=0.1, epsilon=0.02):
    """One BrainProp trial by autograd, then plain SGD."""
    q = net(x)
    with torch.no_grad():
        greedy = q.argmax(1)
        sampled = torch.multinomial(torch.softmax(q, 1), 1)[:, 0]
        explore = torch.rand(q.shape[0]) < epsilon
        action = torch.where(explore, sampled, greedy)
        reward = (action == y).to(q.dtype)
    delta = reward - q.gather(1, action[:, None])[:, 0]
    loss = 0.5 * (delta * delta).sum() / q.shape[0]
    net.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(p.grad, alpha=-lr)


def time_torch(torch, model, steps, state):
    if model not in state:
        batch = BATCH[model]
        g = torch.Generator().manual_seed(0)
        x = torch.rand(batch, 1, 28, 28, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        net = torch_net(model, torch).train()
        for _ in range(3):
            torch_step(torch, net, x, y)
        state[model] = (net, x, y)
    net, x, y = state[model]
    t = time.perf_counter()
    for _ in range(steps):
        torch_step(torch, net, x, y)
    return (time.perf_counter() - t) / steps


def time_ours(model, kernels, steps, state):
    key = (model, kernels)
    if key not in state:
        batch = BATCH[model]
        net = bp.build_network(model, (28, 28, 1), 10, seed=1, device="cpu", kernels=kernels)
        rng = np.random.default_rng(0)
        x = rng.random((batch, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        rule, opt = bp.BrainProp(), bp.SGD(lr=0.1)
        for _ in range(3):
            rule.trial(net, x, y, train=True, batch_size=batch)
            opt.step(net, 0.1)
        state[key] = (net, rule, opt, x, y)
    net, rule, opt, x, y = state[key]
    t = time.perf_counter()
    for _ in range(steps):
        rule.trial(net, x, y, train=True, batch_size=len(y))
        opt.step(net, 0.1)
    return (time.perf_counter() - t) / steps


def worker(impl, nets, steps):
    """In a process of its own: {net: seconds per step} for one implementation, and peak RSS."""
    from brainprop_np.kernels import threads as thr
    out, state = {}, {}
    if impl == "torch":                  # torch sets its own threads (numba's pool would start otherwise)
        import torch
        n_threads = thr.wanted_threads()
        torch.set_num_threads(n_threads)
        for model in nets:
            out[model] = time_torch(torch, model, steps, state)
    else:
        n_threads = thr.configure()
        for model in nets:
            out[model] = time_ours(model, impl, steps, state)
    out["_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["_threads"] = n_threads
    return out


def main(argv=None):
    import json
    import subprocess
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="dense,conv,loccon")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--kernels", default="fast,numpy", help="our kernel sets to time (fast, numpy)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    nets = args.nets.split(",")
    if args.worker:
        print(json.dumps(worker(args.worker, nets, args.steps)))
        return 0
    try:
        import torch
    except ImportError:
        print("bench/vs_pytorch.py: torch is not installed; nothing to compare (pip install torch)")
        return 0
    sets = args.kernels.split(",")
    rate = gemm_rate(bp.get_backend("cpu"))
    print(f"torch {torch.__version__}; brainprop_np kernel sets {sets}; {args.rounds} rounds × {args.steps} "
          f"steps, alternating, each side in its own process")
    print(f"float32 GEMM (2048^3): {rate:.1f} GFLOP/s")
    impls = ["torch"] + sets
    times, rss, n_threads = {}, {}, {}
    for _ in range(args.rounds):
        for impl in impls:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--nets", args.nets,
                   "--steps", str(args.steps)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            rss[impl] = max(rss.get(impl, 0), res.pop("_rss_mib"))
            n_threads[impl] = res.pop("_threads")
            for model, t in res.items():
                times.setdefault((model, impl), []).append(t)
    print(f"threads: {n_threads}")
    print(f"{'net':<8}{'impl':<8}{'ms/step':>9}{'s/epoch':>9}{'÷ torch':>9}{'of GEMM':>9}")
    for model in nets:
        flops = step_flops(bp.build_network(model, (28, 28, 1), 10, device="cpu"), BATCH[model])
        t_torch = float(np.median(times[(model, "torch")]))
        for impl in impls:
            t = float(np.median(times[(model, impl)]))
            print(f"{model:<8}{impl:<8}{t * 1e3:>9.2f}{EPOCH / BATCH[model] * t:>9.2f}"
                  f"{t / t_torch:>9.2f}{flops / t / 1e9 / rate:>9.0%}")
    print("peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
