"""Where a training step's time goes, step by step of the plan, and the floor its GEMMs set.

    BRAINPROP_THREADS=2 python bench/step_profile.py [--nets dense,conv,loccon] [--steps 30]
                                                     [--rounds 3] [--json PATH]

For each network (the paper's dense, conv and loccon for MNIST, batch 128, 128, 32; deep
for CIFAR-10's 32×32×3, batch 128; the fast kernel set; random inputs) it times a BrainProp step (trial and
SGD update) over --rounds rounds of --steps steps and, inside it, the forward and the
feedback of every step of the network's plan (blocks.py: one layer, or a fused block),
the rest of the trial (the output step: selection, reward, delta) and the update.

It then times the step's GEMMs alone: for every weight layer, the three products that
BLAS runs in the fast set (forward, tags and input feedback; the first weight layer has
no input feedback; the 1-channel conv runs as a direct kernel, not a GEMM, and is left
out), on arrays of the step's shapes (a tiled convolution's per tile), same rounds.
Their sum is the GEMM floor: the step if everything but the GEMMs took no time. Medians
over the rounds. With --json the figures go to PATH, for scripts/speed_page.py's
`step-profile` section.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import brainprop_np as bp  # noqa: E402  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
from brainprop_np import blocks  # noqa: E402
from train_step import BATCH, gemm_rate, make_net, step_flops  # noqa: E402


def timed(step, clock):
    """Wrap a plan step's forward and feedback so that each adds its seconds to clock[(first, name)]."""
    for name in ("forward", "feedback"):
        f = getattr(step, name)

        def run(*a, _f=f, _key=(step.first, name), **k):
            t = time.perf_counter()
            out = _f(*a, **k)
            clock[_key] = clock.get(_key, 0.0) + time.perf_counter() - t
            return out
        setattr(step, name, run)


def gemms(net, batch):
    """[(layer name, [thunk, ...])]: the BLAS products of every weight layer at the step's shapes
    (the plan's direct convolutions run none; a tiled convolution runs its products tile by
    tile; the first trained layer computes no input feedback)."""
    rng = np.random.default_rng(0)
    direct = {s.first for s in net.steps() if isinstance(s, (blocks.DirectConv, blocks.DirectConvReluBatchNorm))}
    tiled = {s.first for s in net.steps() if isinstance(s, blocks.TiledConv)}
    out, shape = [], (batch,) + tuple(net.input_shape)
    for i, layer in enumerate(net.layers):
        w = layer.params.get("kernel")
        if w is not None and i not in direct:
            tile = layer.k.conv_tile_images(shape, w.shape, layer.out_hw, 4) if i in tiled else batch
            thunks = _products(layer, (min(tile, batch),) + shape[1:], w, rng, need_input_fb=i > net.first_trained())
            out.append((layer.name, _tiles(thunks, batch, tile)))
        shape = (batch,) + tuple(layer.output_shape)
    return out


def _tiles(thunks, batch, tile):
    """The thunks run once per tile of `tile` images (the last tile timed as a full one)."""
    if tile >= batch:
        return thunks
    n = -(-batch // tile)
    return [lambda _f=f: [_f() for _ in range(n)] for f in thunks]


def _products(layer, in_shape, w, rng, need_input_fb):
    """The thunks of one layer's forward, tags and input feedback products."""
    k = layer.k
    if isinstance(layer, bp.layers.LocallyConnected2D):
        p, kk, f = w.shape
        cols = rng.random((p, in_shape[0], kk), dtype=np.float32)
        fb = rng.random((in_shape[0], p, f), dtype=np.float32)
        return [lambda: k.lc_forward(cols, w),
                lambda: k.lc_feedback(fb, cols, w if need_input_fb else None, need_input_fb)]
    if isinstance(layer, bp.layers.Conv2D):
        f = w.shape[-1]
        rows = in_shape[0] * layer.out_hw[0] * layer.out_hw[1]
        x, w2 = rng.random((rows, w.size // f), dtype=np.float32), w.reshape(-1, f)
    else:
        x, w2 = rng.random((in_shape[0], w.shape[0]), dtype=np.float32), w
    fb = rng.random((x.shape[0], w2.shape[1]), dtype=np.float32)
    return [lambda: x @ w2, lambda: x.T @ fb] + ([lambda: fb @ w2.T] if need_input_fb else [])


def profile(model, steps, rounds):
    """{'steps': [(first, describe, fwd ms, fb ms)], 'output_ms', 'update_ms', 'step_ms', 'gemm_ms', ...}."""
    batch = BATCH[model]
    net, rule, opt, x, y = make_net(model, bp.get_backend("cpu", "fast"), "fast")
    plan, clock = net.steps(), {}
    for step in plan:
        timed(step, clock)
    products = gemms(net, batch)
    per_round = []
    for _ in range(rounds):
        clock.clear()
        t_trial = t_update = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            rule.trial(net, x, y, train=True, batch_size=batch)
            t1 = time.perf_counter()
            opt.step(net, 0.1)
            t_trial, t_update = t_trial + t1 - t0, t_update + time.perf_counter() - t1
        gemm = {name: _time(thunks, steps) for name, thunks in products}
        per_round.append(_round(plan, clock, t_trial, t_update, gemm, steps))
    return dict(_medians(model, batch, plan, per_round), gflop=step_flops(net, batch) / 1e9)


def _time(thunks, steps):
    """Seconds per call of all thunks together."""
    for f in thunks:
        f()
    t = time.perf_counter()
    for _ in range(steps):
        for f in thunks:
            f()
    return (time.perf_counter() - t) / steps


def _round(plan, clock, t_trial, t_update, gemm, steps):
    ms = {key: v / steps * 1e3 for key, v in clock.items()}
    layers = sum(ms.values())
    return {"ms": ms, "output_ms": t_trial / steps * 1e3 - layers, "update_ms": t_update / steps * 1e3,
            "step_ms": (t_trial + t_update) / steps * 1e3, "gemm": {n: s * 1e3 for n, s in gemm.items()}}


def _medians(model, batch, plan, rounds):
    med = lambda f: float(np.median([f(r) for r in rounds]))            # noqa: E731
    rows = [{"first": s.first, "step": s.describe(), "kind": type(s).__name__,
             "forward_ms": med(lambda r: r["ms"].get((s.first, "forward"), 0.0)),
             "feedback_ms": med(lambda r: r["ms"].get((s.first, "feedback"), 0.0))} for s in plan]
    gemm = {n: med(lambda r: r["gemm"][n]) for n in rounds[0]["gemm"]}
    return {"net": model, "batch": batch, "steps": rows, "output_ms": med(lambda r: r["output_ms"]),
            "update_ms": med(lambda r: r["update_ms"]), "step_ms": med(lambda r: r["step_ms"]),
            "step_ms_rounds": [r["step_ms"] for r in rounds], "gemm_ms": gemm,
            "gemm_floor_ms": med(lambda r: sum(r["gemm"].values()))}


def print_profile(p):
    print(f"\n{p['net']} (batch {p['batch']}): {p['step_ms']:.1f} ms/step; GEMM floor {p['gemm_floor_ms']:.1f} ms "
          f"({p['gemm_floor_ms'] / p['step_ms']:.0%} of the step); {p['gflop']:.2f} GFLOP of GEMM work")
    print(f"  {'step of the plan':<48}{'forward':>9}{'feedback':>10}")
    for r in p["steps"]:
        print(f"  {r['step']:<48}{r['forward_ms']:>9.2f}{r['feedback_ms']:>10.2f}")
    print(f"  {'output step (selection, reward, delta)':<48}{p['output_ms']:>9.2f}")
    print(f"  {'update (SGD)':<48}{p['update_ms']:>9.2f}")
    print("  GEMMs alone: " + ", ".join(f"{n} {v:.2f} ms" for n, v in p["gemm_ms"].items()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="dense,conv,loccon", help="any of dense, conv, loccon, deep")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args(argv)
    nets = a.nets.split(",")
    unknown = [n for n in nets if n not in BATCH]
    if unknown or a.steps < 1 or a.rounds < 1:
        ap.error(f"--nets {','.join(unknown)} is not allowed; use any of {', '.join(BATCH)}" if unknown
                 else "--steps and --rounds must be at least 1")
    from brainprop_np.kernels import memory, threads
    n = threads.configure()
    memory.keep_freed_memory()        # as a run does (brainprop_np/run/setup.py)
    be = bp.get_backend("cpu", "fast")
    rate = gemm_rate(be)
    print(f"{n} threads; float32 GEMM (2048^3) {rate:.0f} GFLOP/s")
    out = {"threads": n, "gemm_gflops": rate, "started": time.strftime("%Y-%m-%d %H:%M"),
           "numpy": np.__version__, "profiles": []}
    for model in nets:
        p = profile(model, a.steps, a.rounds)
        print_profile(p)
        out["profiles"].append(p)
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
