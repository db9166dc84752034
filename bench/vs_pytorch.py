"""brainprop_np against PyTorch at its best (eager and torch.compile), timed alternately in one run.

    python bench/vs_pytorch.py [--nets dense,conv,loccon] [--rounds 3] [--steps 40]
                               [--kernels fast,numpy] [--compile auto|model|step|none]
                               [--variant NET=VARIANT,...] [--pick-steps 5] [--json PATH]
    python bench/vs_pytorch.py --pick                 # the pick phase alone
    python bench/vs_pytorch.py --per-core [--cores 2] # images/s per core: 1×2 threads, 2×1 thread
    python bench/vs_pytorch.py --check                # do the torch variants compute the same step?

The networks are the paper's dense, conv and loccon for 28×28×1 MNIST (batch 128, 128,
32), float32, on random inputs of MNIST's shape (timing does not depend on pixel values).
The PyTorch side (bench/torch_nets.py) trains them with the BrainProp step by autograd:
q = net(x); action = argmax q, or with probability ε = 0.02 a sample of softmax(q);
reward = [action = label]; delta = reward − q[action]; loss = ½·Σ delta² / B; backward;
W ← W − lr·∂L/∂W for every parameter (one torch._foreach_add_). Our side is
brainprop_np's BrainProp.trial and SGD.step, with each kernel set of --kernels.

Every measurement runs in a fresh process (torch's OpenMP threads keep spinning after its
work and would slow whatever ran next in the same process) on the same number of threads
(BRAINPROP_THREADS, else the cores free when the script starts; torch.set_num_threads and
OMP_NUM_THREADS for torch, numba and BLAS through threadpoolctl for ours). Each process
builds its network, runs 3 warm-up steps, then times --steps steps (seconds per step).

1. Pick. For each network, one process times every eager variant of
   torch_nets.VARIANTS (nchw or channels_last memory format; for loccon's locally-connected
   layer also the GEMM: einsum on unfold's columns, bmm on them permuted to (P, B, K), or
   bmm on a strided window view without im2col) for --pick-steps steps, in 2 rounds
   alternating, and keeps the one with the least time. Then torch.compile of that variant,
   each mode in a process of its own with a fresh, empty inductor cache (so its compile
   seconds are a cold compile: tracing, AOTAutograd and inductor's C++ code generation):
   "model" (torch.compile(net) called by the eager step) and "step" (torch.compile of the
   whole step function: selection, loss, backward, update). After its timing, a compiled
   step is compared with the eager reference on one deterministic batch (as --check); one
   that differs or fails is not used, and the next eager variant in order of speed is
   compiled instead. --compile auto keeps the faster mode; model or step forces one, none
   leaves torch.compile out. --variant NET=VARIANT fixes a variant and skips the eager pick.
2. Rounds (--rounds). Each round, one process measures the float32 GEMM rate
   (train_step.gemm_rate, 2048³); then, per network, one process per implementation —
   torch eager (the picked variant), torch.compile (the picked variant and mode, with the
   pick's cache, so warm; its compile time, the warm-up's seconds less three steady
   steps, is left out of the step time and reported apart) and each of our kernel sets —,
   in an order rotated by one every round, so that all see the same machine load.
3. The table: median ms/step over the rounds, seconds per 60,000-image epoch,
   ours ÷ torch eager, ours ÷ torch.compile, the share of the GEMM rate (the step's
   floating-point operations — train_step.step_flops: the GEMMs, forward, input gradient
   and weight gradient, of every weight layer, the first without its input gradient — per second, over the median of
   the rounds' GEMM rates), and the process's peak RSS (the largest over the rounds;
   torch.compile's includes the compiler's).

--per-core (after the eager pick; no torch.compile): for torch eager and our fast set,
per network and round, (a) one process on --cores threads, (b) --cores processes on 1
thread each at the same time (each warms up, then all start timing on one signal; what a
sweep of one-thread runs does). Images per second per core: (a) batch / step time /
cores, (b) the sum of the processes' batch / step time / cores; medians over the rounds,
and (b) ÷ (a).

--check: on one batch with ε = 0 and dropout off (so deterministic), every eager variant,
and torch.compile of one variant (--variant's, else the reference) in each mode, each in a
process of its own, against the reference variant's eager step (the first of VARIANTS),
from the same weights: max |Δq| and the largest max |Δ weight update| over the parameters,
compared in the reference's order. Exit 1 when a case fails or exceeds its bound
(torch_nets.TOL): 1e-4·max|q| for q; for each parameter 1e-3·max|update| plus 4 units in
the last place of max|W| (the update is W_after − W_before, so W's own rounding shows).

--json PATH writes every measured figure (pick, rounds, table, per-core, check; written to
a temporary name, then renamed). Skips with one line when torch is not installed.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import brainprop_np as bp  # noqa: E402  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
import torch_nets as tn  # noqa: E402
from train_step import BATCH, EPOCH, gemm_rate, rotated, step_flops  # noqa: E402

WARMUP = 3


# ---- in a worker process ----------------------------------------------------------------

def _go(sync):
    """With --sync: say ready, then wait for the parent's signal (per-core runs start together)."""
    if sync:
        print("ready", flush=True)
        sys.stdin.readline()


def _steady(step, x, y, steps):
    t = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return (time.perf_counter() - t) / steps


def time_torch(model, variant, compile_mode, steps, threads, sync=False, gate=False):
    """Seconds per step of torch's step, and compile seconds (warm-up less 3 steady steps).
    gate: then probe the compiled step against eager (after the timing, so that the compile
    timed is the process's first); a step that differs is an error, its time not used."""
    import torch
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    step, _, x, y = tn.setup(torch, model, variant, compile_mode)
    for _ in range(WARMUP):
        step(x, y)
    warm = time.perf_counter() - t0
    _go(sync)
    dt = _steady(step, x, y, steps)
    out = {"s_step": dt, "compile_s": max(0.0, warm - WARMUP * dt) if compile_mode else None}
    if gate and compile_mode:
        out["gate"] = tn.probe(torch, model, variant, compile_mode)
        if not out["gate"]["ok"]:
            out["error"] = f"the compiled step differs from eager: {_deviation(out['gate'])}"
    return out


def time_ours(model, kernels, steps, threads, sync=False):
    """Seconds per step of brainprop_np's trial + SGD step with kernel set `kernels`."""
    from brainprop_np.kernels import threads as thr
    thr.configure(threads)
    batch = BATCH[model]
    net = bp.build_network(model, (28, 28, 1), 10, seed=1, device="cpu", kernels=kernels)
    rng = np.random.default_rng(0)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    rule, opt = bp.BrainProp(), bp.SGD(lr=0.1)

    def step(x, y):
        rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, 0.1)
    for _ in range(WARMUP):
        step(x, y)
    _go(sync)
    return {"s_step": _steady(step, x, y, steps)}


def pick_eager(model, steps, threads, rounds=2):
    """{variant: seconds per step, the least of its rounds} of every eager variant, alternating."""
    import torch
    torch.set_num_threads(threads)
    runs = {}
    for v in tn.VARIANTS[model]:
        step, _, x, y = tn.setup(torch, model, v)
        for _ in range(2):
            step(x, y)
        runs[v] = (step, x, y)
    times = {v: [] for v in runs}
    for r in range(rounds):
        for v in rotated(list(runs), r):
            step, x, y = runs[v]
            times[v].append(_steady(step, x, y, steps))
    return {"eager": {v: min(t) for v, t in times.items()}}


def worker(a):
    """The measurement named by --worker, as one JSON-able dict (peak RSS added)."""
    from brainprop_np.kernels import memory
    memory.keep_freed_memory()         # as a run does (brainprop_np/run/setup.py), for both libraries
    n, mode = a.threads, (None if a.compile == "none" else a.compile)
    if a.worker == "gemm":
        from brainprop_np.kernels import threads as thr
        thr.configure(n)
        out = {"gflops": gemm_rate(bp.get_backend("cpu"))}
    elif a.worker == "pick":
        out = pick_eager(a.nets, a.steps, n)
    elif a.worker == "probe":
        import torch
        torch.set_num_threads(n)
        out = {"cases": [tn.probe(torch, a.nets, v, mode) for v in a.variant.split(",")]}
    elif a.worker == "torch":
        out = time_torch(a.nets, a.variant, mode, a.steps, n, a.sync, a.gate)
    else:
        out = time_ours(a.nets, a.worker, a.steps, n, a.sync)
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = n
    return out


# ---- in the parent ----------------------------------------------------------------------

def _cmd(impl, model, steps, threads, variant=None, mode=None, sync=False, gate=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--nets", model or "-",
           "--steps", str(steps), "--threads", str(threads)]
    if variant:
        cmd += ["--variant", variant]
    cmd += ["--compile", mode or "none"]
    return cmd + (["--sync"] if sync else []) + (["--gate"] if gate else [])


def _env(threads, cache):
    env = dict(os.environ, BRAINPROP_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    if cache:
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
    return env


def _result(rc, out, err):
    """The worker's JSON line, or {"error": its last line of stderr}."""
    lines = [s for s in out.splitlines() if s.startswith("{")]
    if rc == 0 and lines:
        return json.loads(lines[-1])
    tail = [s for s in err.strip().splitlines() if s.strip()]
    return {"error": f"exit {rc}: " + (tail[-1][:300] if tail else "no output")}


def run_one(impl, model, steps, threads, cache, variant=None, mode=None, gate=False):
    """One measurement in a fresh process."""
    p = subprocess.run(_cmd(impl, model, steps, threads, variant, mode, gate=gate), capture_output=True,
                       text=True, env=_env(threads, cache))
    return _result(p.returncode, p.stdout, p.stderr)


def run_together(impl, model, steps, n, cache, variant=None):
    """n processes of 1 thread each, warmed up, then timed from one signal: their results."""
    procs = []
    for _ in range(n):
        err = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen(_cmd(impl, model, steps, 1, variant, sync=True), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=err, text=True, env=_env(1, cache))
        procs.append((p, err))
    for p, _ in procs:                       # wait until every one has warmed up
        for line in p.stdout:
            if line.strip() == "ready":
                break
    for p, _ in procs:
        if p.poll() is None:
            p.stdin.write("go\n")
            p.stdin.flush()
    out = []
    for p, err in procs:
        stdout, _ = p.communicate()
        err.seek(0)
        out.append(_result(p.returncode, stdout, err.read()))
        err.close()
    return out


def _parse_variants(text):
    out = {}
    for item in filter(None, (text or "").split(",")):
        net, _, v = item.partition("=")
        if net not in tn.VARIANTS or v not in tn.VARIANTS[net]:
            raise SystemExit(f"--variant {item!r}: use NET=VARIANT with one of {tn.VARIANTS}")
        out[net] = v
    return out


def pick(nets, a, threads, cache, modes):
    """{net: {"eager": {variant: s}, "variant", "compile_tries", "compile_variant", "mode"}}."""
    fixed, out = _parse_variants(a.variant), {}
    for model in nets:
        if model in fixed:
            res = {"eager": {}, "variant": fixed[model], "note": "given by --variant"}
        else:
            res = run_one("pick", model, a.pick_steps, threads, cache)
            if "error" in res:
                raise SystemExit(f"pick {model}: {res['error']}")
            res["variant"] = min(res["eager"], key=res["eager"].get)
        times = ", ".join(f"{v} {t * 1e3:.1f}" for v, t in res["eager"].items()) or res["note"]
        print(f"pick {model}: eager ms/step {times} -> {res['variant']}", flush=True)
        order = sorted(res["eager"], key=res["eager"].get) or [res["variant"]]
        res.update(pick_compile(model, order, a, threads, cache, modes))
        out[model] = res
    return out


def pick_compile(model, order, a, threads, cache, modes):
    """torch.compile of the fastest eager variant whose compiled step equals eager (probed
    first), in every mode; the faster mode that works. Prints each try."""
    tries, caches = [], {}
    for v in order if modes else []:
        res = {}
        for m in modes:                         # each in a fresh cache: a cold compile
            caches[v, m] = tempfile.mkdtemp(dir=cache)
            res[m] = run_one("torch", model, a.pick_steps, threads, caches[v, m], v, m, gate=True)
        tries.append({"variant": v, "modes": res})
        for m, r in res.items():
            got = r["error"] if "error" in r else (f"{r['s_step'] * 1e3:.1f} ms/step, compile {r['compile_s']:.1f} s "
                                                   f"(cold cache), same step as eager ({_deviation(r['gate'])})")
            print(f"pick {model}: torch.compile mode {m} of {v}: {got}", flush=True)
        ok = {m: r["s_step"] for m, r in res.items() if "error" not in r}
        if ok:
            mode = min(ok, key=ok.get)
            print(f"pick {model}: torch.compile -> {v}, mode {mode}", flush=True)
            return {"compile_tries": tries, "compile_variant": v, "mode": mode, "cache": caches[v, mode]}
    if modes:
        print(f"pick {model}: torch.compile -> none works; no torch-compile row", flush=True)
    return {"compile_tries": tries, "compile_variant": None, "mode": None, "cache": None}


def _deviation(r):
    return (f"max|Δq| {r['dq']:.1e} (bound {r['bound_q']:.1e}), max|Δupdate| {r['du']:.1e} "
            f"(bound {r['bound_update']:.1e}, {r['worst']})")


def _impls(model, picked, sets):
    """[(name, worker impl, variant, compile mode)] timed for one network."""
    p = picked[model]
    out = [("torch-eager", "torch", p["variant"], None)]
    if p["mode"]:
        out.append(("torch-compile", "torch", p["compile_variant"], p["mode"]))
    return out + [(k, k, None, None) for k in sets]


def rounds(nets, a, threads, caches, picked, sets):
    """{"gemm_gflops": [...], net: {impl: [result per round]}}, alternating, order rotated;
    torch.compile with the cache of its pick (caches[net]), so warm."""
    out = {"gemm_gflops": []}
    for r in range(a.rounds):
        g = run_one("gemm", None, 0, threads, None)
        out["gemm_gflops"].append(g.get("gflops"))
        out.setdefault("gemm_rss_mib", g.get("rss_mib"))
        for model in nets:
            for name, impl, variant, mode in rotated(_impls(model, picked, sets), r):
                res = run_one(impl, model, a.steps, threads, caches[model], variant, mode)
                out.setdefault(model, {}).setdefault(name, []).append(res)
                if "error" in res:
                    print(f"round {r + 1} {model} {name}: {res['error']}")
    return out


def _median(results, key):
    vals = [r[key] for r in results if "error" not in r and r.get(key) is not None]
    return float(np.median(vals)) if vals else None


def table(nets, measured, picked, rate):
    """Rows of the table (dicts), one per network and implementation."""
    rows = []
    for model in nets:
        flops = step_flops(bp.build_network(model, (28, 28, 1), 10, device="cpu"), BATCH[model])
        base = {n: _median(measured[model].get(n, []), "s_step") for n in ("torch-eager", "torch-compile")}
        for name, results in measured[model].items():
            t = _median(results, "s_step")
            ours = not name.startswith("torch")
            p = picked[model]
            what = f"{p['compile_variant']} ({p['mode']})" if name == "torch-compile" else p["variant"]
            rss = max((r["rss_mib"] for r in results if "error" not in r), default=None)
            rows.append({
                "net": model, "impl": name, "torch_variant": None if ours else what,
                "ms_step": t and t * 1e3, "s_epoch": t and EPOCH / BATCH[model] * t,
                "ours_over_eager": t / base["torch-eager"] if ours and t and base["torch-eager"] else None,
                "ours_over_compile": t / base["torch-compile"] if ours and t and base["torch-compile"] else None,
                "of_gemm": t and flops / t / 1e9 / rate, "gflop_step": flops / 1e9, "rss_mib": rss,
                "compile_s": _median(results, "compile_s"),
                "ms_rounds": [r["s_step"] * 1e3 if "s_step" in r else None for r in results],
            })
    return rows


def _f(v, fmt, width):
    return f"{'–' if v is None else format(v, fmt):>{width}}"


def print_table(rows):
    print(f"{'net':<7}{'impl':<14}{'torch variant':<20}{'ms/step':>9}{'s/epoch':>9}{'ours÷eager':>11}"
          f"{'ours÷compile':>13}{'of GEMM':>8}{'RSS MiB':>8}")
    for r in rows:
        print(f"{r['net']:<7}{r['impl']:<14}{r['torch_variant'] or '':<20}{_f(r['ms_step'], '.2f', 9)}"
              f"{_f(r['s_epoch'], '.2f', 9)}{_f(r['ours_over_eager'], '.2f', 11)}"
              f"{_f(r['ours_over_compile'], '.2f', 13)}{_f(r['of_gemm'], '.0%', 8)}{_f(r['rss_mib'], '.0f', 8)}")
    comp = [r for r in rows if r["impl"] == "torch-compile"]
    if comp:
        print("torch.compile seconds per process with the cache warm (median over rounds, left out of "
              "ms/step): " + ", ".join(f"{r['net']} {_f(r['compile_s'], '.1f', 0)}" for r in comp))


def per_core(nets, a, threads, cache, picked):
    """{net: {impl: {"one": [result], "many": [[result] * cores]}}}: see the module's docstring."""
    out = {}
    for r in range(a.rounds):
        for model in nets:
            impls = [("torch-eager", "torch", picked[model]["variant"]), ("fast", "fast", None)]
            for name, impl, variant in rotated(impls, r):
                res = out.setdefault(model, {}).setdefault(name, {"one": [], "many": []})
                res["one"].append(run_one(impl, model, a.steps, a.cores, cache, variant))
                res["many"].append(run_together(impl, model, a.steps, a.cores, cache, variant))
    return out


def per_core_rows(measured, cores):
    """Images/s per core: (a) one process on `cores` threads, (b) `cores` 1-thread processes."""
    rows = []
    for model, impls in measured.items():
        for name, res in impls.items():
            one = [BATCH[model] / x["s_step"] / cores for x in res["one"] if "error" not in x]
            many = [sum(BATCH[model] / x["s_step"] for x in run) / cores for run in res["many"]
                    if all("error" not in x for x in run)]
            a_, b_ = (float(np.median(v)) if v else None for v in (one, many))
            rows.append({"net": model, "impl": name, "img_s_core_one": a_, "img_s_core_many": b_,
                         "many_over_one": b_ / a_ if a_ and b_ else None,
                         "errors": [x["error"] for x in res["one"] + sum(res["many"], []) if "error" in x]})
    return rows


def print_per_core(rows, cores):
    print(f"{'net':<7}{'impl':<13}{f'1×{cores} threads':>14}{f'{cores}×1 thread':>14}{'ratio':>7}"
          "   images/s per core")
    for r in rows:
        print(f"{r['net']:<7}{r['impl']:<13}{_f(r['img_s_core_one'], '.0f', 14)}"
              f"{_f(r['img_s_core_many'], '.0f', 14)}{_f(r['many_over_one'], '.2f', 7)}")
        for e in r["errors"][:1]:
            print(f"    {r['net']} {r['impl']}: {e}")


def check(nets, a, threads, cache, data):
    """--check: every eager variant, and the compiled modes of one, against the reference
    variant's eager step on one deterministic batch (each in a process of its own); exit status."""
    fixed, modes, bad = _parse_variants(a.variant), _modes(a.compile), 0
    data["check"] = found = []
    print(f"check: one batch, ε = 0, dropout off, against the first variant in eager mode; bounds: "
          f"max|Δq| ≤ {tn.TOL['q']:g}·max|q|; per parameter max|Δupdate| ≤ {tn.TOL['update']:g}·max|update| "
          f"+ {tn.TOL['ulps']} ulp of max|W|")
    for model in nets:
        v_c = fixed.get(model, tn.VARIANTS[model][0])
        runs = [(",".join(tn.VARIANTS[model]), None)] + [(v_c, m) for m in modes]
        for variants, mode in runs:
            res = run_one("probe", model, 0, threads, cache, variants, mode)
            found.append(dict(res, net=model, variants=variants, mode=mode))
            if "error" in res:
                print(f"check {model:<7}{variants if mode else 'eager variants':<14}{mode or 'eager':<7} "
                      f"failed: {res['error']}")
                bad += 1
                continue
            for c in res["cases"]:
                print(f"check {model:<7}{c['variant']:<14}{mode or 'eager':<7} {_deviation(c)}   "
                      f"{'ok' if c['ok'] else 'EXCEEDS'}", flush=True)
                bad += not c["ok"]
    print("check: all within tolerance" if not bad else f"check: {bad} case(s) failed or exceeded")
    data["check_ok"] = not bad
    return 1 if bad else 0


def _modes(compile_arg):
    return {"auto": tn.COMPILE_MODES, "none": []}.get(compile_arg, [compile_arg])


def write_json(path, data):
    """Atomically: a temporary name in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".vs_pytorch.", suffix=".json", dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    print(f"wrote {path}")


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="dense,conv,loccon")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--kernels", default="fast,numpy", help="our kernel sets to time (fast, numpy)")
    ap.add_argument("--compile", default="auto", choices=["auto", "none"] + tn.COMPILE_MODES,
                    help="torch.compile mode(s) to try; auto: both, the faster that works is timed")
    ap.add_argument("--variant", help="NET=VARIANT,... : skip the eager pick for these nets")
    ap.add_argument("--pick-steps", type=int, default=5, help="steps per variant in the pick phase")
    ap.add_argument("--pick", action="store_true", help="run the pick phase only")
    ap.add_argument("--check", action="store_true", help="compare the variants' q and update on one batch")
    ap.add_argument("--per-core", action="store_true", help="images/s per core: 1 process × N threads "
                    "against N processes × 1 thread")
    ap.add_argument("--cores", type=int, default=2, help="N of --per-core")
    ap.add_argument("--json", help="write every measured figure to this file")
    for hidden in ("--worker", "--threads"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    for hidden in ("--sync", "--gate"):
        ap.add_argument(hidden, action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        return None


def _header(a, threads):
    import importlib.metadata as md
    if not a.check:
        print(f"torch {md.version('torch')}, numpy {np.__version__}; {threads} threads per process; pick "
              f"{a.pick_steps} steps per variant; {a.rounds} rounds × {a.steps} steps; each measurement in a "
              f"process of its own", flush=True)
    return {"script": "bench/vs_pytorch.py", "argv": sys.argv[1:], "torch": md.version("torch"),
            "numpy": np.__version__, "numba": md.version("numba"), "cpu": _cpu_name(),
            "cores": os.cpu_count(), "threads": threads, "rounds": a.rounds, "steps": a.steps,
            "warmup_steps": WARMUP, "pick_steps": a.pick_steps, "epoch_images": EPOCH,
            "batch": {m: BATCH[m] for m in tn.BATCH}, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def measure(a, nets, threads, cache, data):
    """The pick, then the rounds or --per-core; fills `data`; the exit status."""
    data["pick"] = pick(nets, a, threads, cache, [] if a.per_core else _modes(a.compile))
    caches = {m: p.pop("cache") or cache for m, p in data["pick"].items()}   # temporary folders
    if a.pick:
        return 0
    if a.per_core:
        data["per_core_cores"] = a.cores
        data["per_core_raw"] = per_core(nets, a, threads, cache, data["pick"])
        data["per_core"] = per_core_rows(data["per_core_raw"], a.cores)
        print_per_core(data["per_core"], a.cores)
        return 0
    sets = a.kernels.split(",")
    data["raw"] = rounds(nets, a, threads, caches, data["pick"], sets)
    rates = [g for g in data["raw"]["gemm_gflops"] if g]
    data["gemm_gflops_median"] = rate = float(np.median(rates))
    print(f"float32 GEMM (2048³), median of {len(rates)}: {rate:.1f} GFLOP/s")
    data["table"] = table(nets, {m: data["raw"][m] for m in nets}, data["pick"], rate)
    print_table(data["table"])
    return 0


def main(argv=None):
    import importlib.util
    import shutil
    a = _args(argv)
    if a.worker:
        a.threads = int(a.threads)
        print(json.dumps(worker(a)))
        return 0
    if importlib.util.find_spec("torch") is None:
        print("bench/vs_pytorch.py: torch is not installed; nothing to compare (pip install torch)")
        return 0
    from brainprop_np.kernels import threads as thr
    nets, threads = a.nets.split(","), thr.wanted_threads()
    if not set(nets) <= set(tn.VARIANTS):
        raise SystemExit(f"--nets {a.nets!r}: use a comma-separated list of {', '.join(tn.VARIANTS)}")
    cache = tempfile.mkdtemp(prefix="vs_pytorch_inductor_")     # torch.compile's cache: cold, then warm
    data = _header(a, threads)
    try:
        rc = check(nets, a, threads, cache, data) if a.check else measure(a, nets, threads, cache, data)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if a.json:
        write_json(a.json, data)
    return rc


if __name__ == "__main__":
    sys.exit(main())
