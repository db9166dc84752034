"""Time the training step of this checkout against that of another commit, in one process.

    BRAINPROP_THREADS=2 python bench/step_vs_commit.py [--base HEAD~1] [--nets conv,loccon,dense]
                                                       [--rounds 9] [--steps 20]

On a shared machine the time of a whole process drifts by more than a kernel change
moves it, so separate runs of bench/train_step.py from two checkouts rarely tell a change
apart from the noise. Here the base commit's package is unpacked (`git archive`) into a
temporary folder under the name `brainprop_base`, and both packages build the same
preset (the fast kernel set, random inputs, as bench/train_step.py) in one process; the
rounds of --steps steps then alternate between them (the base first in even rounds, this
checkout first in odd ones), so drift and a round's first place reach both alike. Prints,
per network, the median ms per step of each, base ÷ this, and the ratio of every round.
The base's kernels compile into the temporary folder first (outside the timing).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import brainprop_np as bp  # noqa: E402  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
from train_step import BATCH, SHAPE, rotated  # noqa: E402

BASE = "brainprop_base"


def unpack(commit, folder):
    """The package of `commit`, renamed BASE (its absolute imports too) in folder; imported."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "brainprop_np"], capture_output=True)
    if tar.returncode:
        sys.exit(f"--base {commit}: git archive failed: {tar.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", folder], input=tar.stdout, check=True)
    os.rename(os.path.join(folder, "brainprop_np"), os.path.join(folder, BASE))
    for path in Path(folder, BASE).rglob("*.py"):
        path.write_text(path.read_text().replace("brainprop_np", BASE))
    sys.path.insert(0, folder)
    return __import__(BASE)


def make(pkg, model):
    """(net, rule, opt, x, y) of `model` built by package pkg, warmed up by three steps."""
    net = pkg.build_network(model, SHAPE[model], 10, seed=1, device="cpu", kernels="fast")
    rule, opt = pkg.BrainProp(), pkg.SGD(lr=0.1)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH[model],) + SHAPE[model], dtype=np.float32)
    y = rng.integers(0, 10, BATCH[model])
    for _ in range(3):
        rule.trial(net, x, y, train=True, batch_size=len(y))
        opt.step(net, 0.1)
    return net, rule, opt, x, y


def ms_per_step(state, steps):
    net, rule, opt, x, y = state
    t = time.perf_counter()
    for _ in range(steps):
        rule.trial(net, x, y, train=True, batch_size=len(y))
        opt.step(net, 0.1)
    return (time.perf_counter() - t) / steps * 1e3


def compare(base, model, rounds, steps):
    """Median ms/step of the base and of this checkout over alternating rounds, and each round's ratio."""
    states = make(base, model), make(bp, model)
    times = ([], [])
    for r in range(rounds):
        for i in rotated([0, 1], r):
            times[i].append(ms_per_step(states[i], steps))
    b, t = (float(np.median(v)) for v in times)
    ratios = " ".join(f"{u / v:.2f}" for u, v in zip(*times))
    print(f"{model:<7}{b:>10.2f}{t:>10.2f}{b / t:>12.3f}   {ratios}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="the commit to compare with (default HEAD)")
    ap.add_argument("--nets", default="conv,loccon,dense", help="any of dense, conv, loccon")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args(argv)
    nets = a.nets.split(",")
    unknown = [n for n in nets if n not in ("dense", "conv", "loccon")]
    if unknown or a.rounds < 1 or a.steps < 1:
        ap.error(f"--nets {','.join(unknown)} is not allowed; use any of dense, conv, loccon" if unknown
                 else "--rounds and --steps must be at least 1")
    from brainprop_np.kernels import memory, threads
    with tempfile.TemporaryDirectory() as folder:
        base = unpack(a.base, folder)
        n = threads.configure()
        base.kernels.threads.configure(n)
        memory.keep_freed_memory()        # as a run does (brainprop_np/run/setup.py)
        print(f"{n} threads; base {a.base} against this checkout; {a.rounds} alternating rounds of {a.steps} steps")
        print(f"{'net':<7}{'base ms':>10}{'this ms':>10}{'base÷this':>12}   per round")
        for model in nets:
            compare(base, model, a.rounds, a.steps)


if __name__ == "__main__":
    main()
