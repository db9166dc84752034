"""How far two backends drift apart in one epoch from the same seed, now that they draw the same
numbers: the NumPy reference on the CPU against the GPU code path (kernels/gpu.py and the .cu
sources) on the CUDA emulator (tests/cuda_emulator.py; cuBLAS's GEMMs modelled by NumPy),
or against a real GPU with --gpu.

Both networks start from the same weights, see the same images in the same order and draw the
same dropout masks and exploration uniforms (brainprop_np/philox.py); what differs is float
rounding (sums in another order). Prints, per weight array, max |W_a − W_b| / max |W_a| after
the epoch, and how many of the epoch's actions differed.

    python scripts/backend_difference.py --model dense --images 60000 --dtype float64
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import brainprop_np as bp  # noqa: E402
from brainprop_np.backend import to_host  # noqa: E402
from brainprop_np.presets import PRESET_SETTINGS  # noqa: E402
from brainprop_np.run.loop import step  # noqa: E402


def gpu_backend(real_gpu):
    """The GPU code path: the device, or kernels/gpu.py on the emulator (a patched module)."""
    if real_gpu:
        return "gpu"
    import pytest
    import cuda_emulator
    return cuda_emulator.patch_gpu_kernels(pytest.MonkeyPatch(), cuda_emulator.Emulator())


def epoch(device, args, x, y, order):
    """One epoch of BrainProp trials and SGD steps; returns (weights, actions of every trial)."""
    shape = x.shape[1:]
    net = bp.build_network(args.model, shape, 10, seed=args.seed, device=device, dtype=args.dtype,
                           kernels="numpy" if device == "cpu" else None)
    rule = bp.BrainProp(epsilon=0.02)
    opt = bp.SGD(lr=0.1, l2=PRESET_SETTINGS[args.model]["l2"])
    be, bs, actions = net.backend, args.batch, []
    metrics = be.xp.zeros(5, np.float64)
    for i in range(0, len(order), bs):
        idx = order[i:i + bs]
        trial, _ = step(rule, opt, net, be.asarray(x[idx] / 255.0, args.dtype), be.asarray(y[idx], "int64"),
                        0.1, bs, metrics)
        actions.append(to_host(trial.actions).copy())
    return net.get_weights(), np.concatenate(actions), to_host(metrics)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dense", choices=("dense", "conv", "loccon", "deep"))
    p.add_argument("--images", type=int, default=60000, help="training images of the epoch (MNIST)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gpu", action="store_true", help="compare with the real GPU instead of the emulator")
    args = p.parse_args(argv)
    ds = bp.data.load("mnist", download=False)
    n = min(args.images, len(ds.x_train))
    x, y = ds.x_train[:n], ds.y_train[:n]
    order = np.random.default_rng([args.seed, 1]).permutation(n)
    wa, acts_a, ma = epoch("cpu", args, x, y, order)
    wb, acts_b, mb = epoch(gpu_backend(args.gpu), args, x, y, order)
    print(f"{args.model}, {n} MNIST images, batch {args.batch}, {args.dtype}, seed {args.seed}: "
          f"CPU NumPy vs the GPU code path ({'GPU' if args.gpu else 'CUDA emulator'}) after one epoch")
    worst = 0.0
    for lname, arrays in wa.items():
        for aname, w in arrays.items():
            rel = float(np.abs(wb[lname][aname] - w).max() / max(np.abs(w).max(), 1e-300))
            worst = max(worst, rel)
            print(f"  {lname + '.' + aname:<30} max |ΔW| / max |W| = {rel:.2e}")
    print(f"largest: {worst:.2e}; actions that differed: {int((acts_a != acts_b).sum())} of {len(acts_a)}; "
          f"train loss {ma[0] / n:.6f} vs {mb[0] / n:.6f}")


if __name__ == "__main__":
    main()
