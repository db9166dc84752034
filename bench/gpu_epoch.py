"""Seconds per training epoch with the data resident on the device.

    PYTHONPATH=. python bench/gpu_epoch.py [--device gpu|cpu|auto] [--nets dense,conv,loccon,deep]
        [--epochs-frac F] [--warmup N] [--graph] [--tf32] [--torch] [--data MNIST_FOLDER] [--csv FILE]

Training only — forward, selection, feedback, update (BrainProp, `rule.trial` + `SGD.step`,
with their fused kernels: the output step and each array's SGD update in one launch each,
BatchNorm's running statistics inside its statistics kernel, the L2 term inside the SGD
kernels, the locally-connected GEMMs on views through cuBLAS's transpose flags)
— for MNIST `dense` (batch 128), `conv` (128), `loccon` (32) on 60,000 images, and
`deep` (128) on CIFAR-shaped data (32×32×3, 50,000 images). The uint8 images and the labels
are copied to the device once; every step gathers its batch there (a permutation uploaded
once per epoch), scales it to float, and the epoch's loss and reward count are summed on
the device: nothing synchronises with the host inside the timed steps. Warm-up steps come
first (kernel compilation, cuBLAS, memory pool); then `--epochs-frac` of an epoch is timed
(CUDA events on the GPU, a host timer on the CPU) and extrapolated to the whole epoch.

Columns: s/epoch, images/s, the target on one H100, and `submit` = the share of the time
the host needed just to enqueue the work (≈ 100 %: launch-bound, the GPU waits for Python;
well below: the GPU is the bottleneck).

--graph   capture one training step in a CUDA graph (stream capture on a non-blocking stream,
          after a device-wide synchronise: that stream does not wait for the default one)
          and replay it per batch; the batch is copied into fixed input buffers first. If capture fails (e.g.
          CuPy refuses cuBLAS or the generator during capture) the reason is printed and the
          eager timing stands. Graph replays reuse the captured learning rate.
--tf32    let cuBLAS use TF32 tensor cores for float32 GEMMs (sets CUPY_TF32=1 before CuPy
          is imported; results differ from float32 in the 4th digit).
--torch   also time the same networks in PyTorch on the same device (autograd: the BrainProp
          loss ½·Σ delta²/B of the ε-greedy choice, backward, torch.optim.SGD with the same L2;
          channels-last memory, Keras's padding and flatten order; the locally-connected
          layer as unfold + a batched GEMM), so that the figure reads as a ratio
          (`vs torch` = ours / PyTorch's; ≤ 1 is the target). Skipped, with one line, when
          torch is not importable or cannot use the device.
--data    folder with MNIST's IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]);
          random images of the right shape otherwise (timing does not depend on the values).
"""
import argparse
import contextlib
import gzip
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import brainprop_np  # noqa: E402,F401  (first: sets the BLAS environment before NumPy loads)
import numpy as np  # noqa: E402
from brainprop_np.backend import DEVICES  # noqa: E402

NETS = {   # name: (input shape, images per epoch, batch, target s/epoch on one H100)
    "dense": ((28, 28, 1), 60_000, 128, 0.4),
    "conv": ((28, 28, 1), 60_000, 128, 0.5),
    "loccon": ((28, 28, 1), 60_000, 32, 1.5),
    "deep": ((32, 32, 3), 50_000, 128, 2.5),
}


# ---- data ------------------------------------------------------------------------------

def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    return None


def load_data(name, folder, n, shape, seed=0):
    """(uint8 images (n, *shape), int64 labels (n,), where they came from) on the host."""
    if folder and shape == (28, 28, 1):
        xi, yi = _find(folder, "train-images-idx3-ubyte"), _find(folder, "train-labels-idx1-ubyte")
        if xi and yi:
            x = _read_idx(xi).reshape((-1,) + shape)[:n]
            y = _read_idx(yi).astype(np.int64)[:n]
            return np.ascontiguousarray(x), y, f"MNIST from {folder}"
    r = np.random.default_rng(seed)
    return r.integers(0, 256, (n,) + shape, dtype=np.uint8), r.integers(0, 10, n), "random"


class DeviceBatches:
    """The dataset on the device; batches gathered there (as brainprop_np.data.BatchIterator)."""

    def __init__(self, be, x, y, dtype):
        self.be, self.xp, self.dtype = be, be.xp, np.dtype(dtype)
        self.x = be.asarray(x)                   # uint8, once
        self.y = be.asarray(y, "int64")
        self.n = len(x)
        self.scale = self.dtype.type(1.0 / 255.0)
        self.perm = self.xp.empty(self.n, np.int64)   # allocated once: a CUDA graph's inputs
                                                      # must not move, nor share memory with its temporaries

    def permutation(self, rng):
        """A host permutation, uploaded once per epoch (before the timed steps), into self.perm."""
        self.perm[...] = self.be.asarray(rng.permutation(self.n))
        return self.perm

    def batch(self, perm, i, b, out_x=None, out_y=None):
        idx = perm[i * b:(i + 1) * b]
        xb = self.x[idx].astype(self.dtype)
        xb *= self.scale
        yb = self.y[idx]
        if out_x is None:
            return xb, yb
        out_x[...] = xb                      # fixed buffers (CUDA graph inputs)
        out_y[...] = yb
        return out_x, out_y


# ---- timing ----------------------------------------------------------------------------

class Timer:
    """CUDA events on the GPU (plus the host's enqueue time), a host timer on the CPU."""

    def __init__(self, be):
        self.be = be
        self.gpu = be.name == "cupy"

    def __enter__(self):
        self.be.synchronize()
        if self.gpu:
            self.start, self.end = self.be.xp.cuda.Event(), self.be.xp.cuda.Event()
            self.start.record()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.submit = time.perf_counter() - self.t0
        if self.gpu:
            self.end.record()
            self.end.synchronize()
            self.seconds = self.be.xp.cuda.get_elapsed_time(self.start, self.end) / 1e3
        else:
            self.seconds = time.perf_counter() - self.t0
        return False


def make_step(net, rule, opt, lr, batch, acc):
    def step(x, y):
        trial = rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, lr)
        acc[0] += trial.loss            # device scalars: no host sync
        acc[1] += trial.n_correct
    return step


def _why(e):
    return f"{type(e).__name__}: {e}".splitlines()[0][:200]


def capture_graph(be, step, x_static, y_static):
    """Capture one step on a fresh non-blocking stream: (graph, stream, None) or (None, None, reason).

    Everything that outlives a replay (weights, work buffers, the static inputs, the
    permutation, the accumulators) is allocated before the capture; the step's temporaries
    come from the capture stream's memory pool, primed by two eager steps on that stream.
    """
    cp = be.xp
    stream = cp.cuda.Stream(non_blocking=True)
    probe = cp.ones((8, 8), dtype=cp.float32)
    # A non-blocking stream does not wait for the default (legacy) stream: the weights, the
    # static inputs and the warm-up steps were enqueued there, so wait for all of it first.
    cp.cuda.Device().synchronize()
    with stream:                  # CuPy refuses cuBLAS during capture (cupy/cupy#6290): ask first
        try:
            stream.begin_capture()
            probe @ probe
        except Exception as e:
            error = "a cuBLAS GEMM during capture: " + _why(e)
        else:
            error = None
        finally:
            try:
                stream.end_capture()
            except Exception:
                pass
    if error is not None:
        return None, None, error
    try:
        with stream:
            for _ in range(2):
                step(x_static, y_static)
        stream.synchronize()
    except Exception as e:
        return None, None, "eager steps on the capture stream: " + _why(e)
    error, graph = None, None
    with stream:
        try:
            stream.begin_capture()
        except Exception as e:
            return None, None, "begin_capture: " + _why(e)
        try:
            step(x_static, y_static)
        except Exception as e:   # e.g. CuPy refusing a library call while capturing
            error = "during capture: " + _why(e)
        try:
            graph = stream.end_capture()
        except Exception as e:
            error = error or "end_capture: " + _why(e)
    if error is not None:
        return None, None, error
    try:
        if hasattr(graph, "upload"):
            graph.upload(stream)
        graph.launch(stream)      # one replay to check that it runs
        stream.synchronize()
    except Exception as e:
        return None, None, "first replay: " + _why(e)
    return graph, stream, None


def time_net(bp, be, name, args, data_dir):
    shape, n_images, batch, target = NETS[name]
    dtype = "float32"
    x, y, source = load_data(name, data_dir, n_images, shape)
    data = DeviceBatches(be, x, y, dtype)
    del x, y
    from brainprop_np.presets import PRESET_SETTINGS
    net = bp.build_network(name, shape, 10, seed=1, device=be, dtype=dtype)
    rule = bp.BrainProp(epsilon=0.02)
    opt = bp.SGD(lr=0.1, l2=PRESET_SETTINGS[name]["l2"])
    lr = opt.lr_at(0)
    acc = [be.xp.zeros((), dtype), be.xp.zeros((), dtype)]
    step = make_step(net, rule, opt, lr, batch, acc)
    host_rng = np.random.default_rng(0)
    steps_per_epoch = n_images // batch
    timed = max(1, min(steps_per_epoch, int(round(args.epochs_frac * steps_per_epoch))))
    perm = data.permutation(host_rng)
    for i in range(args.warmup):
        step(*data.batch(perm, i % steps_per_epoch, batch))

    note = ""
    graph = stream = None
    if args.graph:
        if be.name != "cupy":
            note = (note + "; " if note else "") + "graph: needs the GPU"
        else:
            xs = be.xp.empty((batch,) + shape, dtype)
            ys = be.xp.empty((batch,), np.int64)
            data.batch(perm, 0, batch, xs, ys)          # on the default stream: capture_graph syncs first
            graph, stream, why = capture_graph(be, step, xs, ys)
            note = (note + "; " if note else "") + ("graph" if graph is not None else f"graph failed ({why}); eager")

    # everything on the stream that does the work (the capture stream for graphs),
    # the timing events included
    with (stream if graph is not None else contextlib.nullcontext()):
        perm = data.permutation(host_rng)      # uploaded before the timer starts
        with Timer(be) as t:
            if graph is not None:
                for i in range(timed):
                    data.batch(perm, i, batch, xs, ys)
                    graph.launch(stream)
            else:
                for i in range(timed):
                    step(*data.batch(perm, i, batch))
    seconds_per_step = t.seconds / timed
    epoch_s = seconds_per_step * n_images / batch
    loss = float(bp.to_host(acc[0]))             # read once, after timing
    return {
        "net": name, "batch": batch, "s_epoch": epoch_s, "images_s": batch / seconds_per_step,
        "target": target, "submit": t.submit / max(t.seconds, 1e-12), "steps": timed,
        "ms_step": seconds_per_step * 1e3, "data": source, "note": note,
        "finite": math.isfinite(loss),
    }


# ---- the same networks in PyTorch (autograd), for the ratio ----------------------------

def torch_or_reason(be):
    """(torch, device string, None) when PyTorch can run on the backend's device, else (None, None, reason)."""
    try:
        import torch
    except Exception as e:
        return None, None, f"torch is not importable ({_why(e)})"
    if be.name == "cupy":
        if not torch.cuda.is_available():
            return None, None, f"torch {torch.__version__} sees no CUDA device"
        return torch, f"cuda:{be.xp.cuda.Device().id}", None
    return torch, "cpu", None


def torch_network(torch, name, shape, n_classes=10):
    """The preset `name` as a torch.nn.Module taking NCHW views of NHWC (channels-last) images."""
    from brainprop_np.presets import PRESET_SETTINGS, preset
    nn = torch.nn
    std = PRESET_SETTINGS[name]["init_std"]
    layers, state = [], {"hwc": shape, "flat": None}
    for spec in preset(name):
        layers += _torch_layers(torch, spec, state, std)
    out = nn.Linear(state["flat"], n_classes, bias=False)
    nn.init.normal_(out.weight, 0.0, std)
    return nn.Sequential(*layers, out)


def _torch_layers(torch, spec, state, std):
    """The torch modules of one layer spec; state holds the (H, W, C) or flat size it sees."""
    from brainprop_np.layers.geometry import window_2d
    nn, kind = torch.nn, spec["type"]
    (h, w, c), flat = state["hwc"], state["flat"]
    if kind in ("conv2d", "locally_connected2d"):
        k, s, f = spec.get("kernel", 3), spec.get("stride", 1), spec["filters"]
        out_hw, pads = window_2d(h, w, k, s, spec.get("padding", "same" if kind == "conv2d" else "valid"))
        state["hwc"] = out_hw + (f,)
        if kind == "locally_connected2d":
            return [_torch_locally_connected(torch, c, f, k, s, pads, out_hw, std)]
        conv = nn.Conv2d(c, f, k, stride=s, bias=False)
        nn.init.normal_(conv.weight, 0.0, std)
        top, bottom, left, right = pads
        return ([nn.ZeroPad2d((left, right, top, bottom))] if any(pads) else []) + [conv]
    if kind == "relu":
        return [nn.ReLU()]
    if kind == "batchnorm":
        bn, dim = (nn.BatchNorm2d, c) if flat is None else (nn.BatchNorm1d, flat)
        return [bn(dim, eps=spec.get("epsilon", 1e-3), momentum=1.0 - spec.get("momentum", 0.99))]
    if kind == "maxpool2d":
        p = spec.get("pool", 2)
        state["hwc"] = (h // p, w // p, c)
        return [nn.MaxPool2d(p)]
    if kind == "dropout":
        return [nn.Dropout(spec["rate"])]
    if kind == "flatten":
        state["flat"] = h * w * c
        return [_nhwc_flatten(torch)]
    if kind == "dense":
        lin = nn.Linear(flat, spec["units"], bias=False)
        nn.init.normal_(lin.weight, 0.0, std)
        state["flat"] = spec["units"]
        return [lin]
    raise ValueError(f"torch comparison: no torch layer for {kind!r}")


def _nhwc_flatten(torch):
    """Flatten in Keras's order: rows, columns, channels."""
    class NHWCFlatten(torch.nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x
    return NHWCFlatten()


def _torch_locally_connected(torch, c, f, k, stride, pads, out_hw, std):
    """A locally-connected layer as unfold + one batched GEMM over the positions."""
    nn, F = torch.nn, torch.nn.functional

    class LocallyConnected2d(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(out_hw[0] * out_hw[1], c * k * k, f) * std)

        def forward(self, x):
            top, bottom, left, right = pads
            if any(pads):
                x = F.pad(x, (left, right, top, bottom))
            cols = F.unfold(x, k, stride=stride)                              # (B, C·k·k, P)
            y = torch.bmm(cols.permute(2, 0, 1), self.weight)                 # (P, B, F)
            return y.permute(1, 2, 0).reshape(x.shape[0], f, *out_hw)
    return LocallyConnected2d()


def time_torch(torch, dev, name, args, data_dir):
    """Seconds per epoch of the same BrainProp training in PyTorch on device `dev` (as time_net)."""
    from brainprop_np.presets import PRESET_SETTINGS
    shape, n_images, batch, target = NETS[name]
    torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    x, y, _ = load_data(name, data_dir, n_images, shape)
    xd = torch.from_numpy(x).to(dev)                       # uint8 (N, H, W, C), once
    yd = torch.from_numpy(y).to(dev)
    del x, y
    model = torch_network(torch, name, shape).to(dev).to(memory_format=torch.channels_last)
    model.train()
    l2 = PRESET_SETTINGS[name]["l2"]
    kernels = [p for n, p in model.named_parameters() if p.dim() > 1]
    others = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": kernels, "weight_decay": 2.0 * l2},      # Keras l2(λ): 2λW
                           {"params": others, "weight_decay": 0.0}], lr=0.1, momentum=0.0)
    eps, scale = 0.02, 1.0 / 255.0
    acc = torch.zeros(2, device=dev)

    def step(idx):
        xb = (xd[idx].to(torch.float32) * scale).permute(0, 3, 1, 2)          # NCHW view, channels-last memory
        yb = yd[idx]
        q = model(xb)
        with torch.no_grad():                                               # ε-greedy Boltzmann choice
            greedy = q.argmax(1)
            sampled = torch.multinomial(torch.softmax(q, 1), 1).squeeze(1)
            explore = torch.rand(q.shape[0], device=dev) < eps
            action = torch.where(explore, sampled, greedy)
            reward = (action == yb).to(q.dtype)
        delta = reward - q.gather(1, action[:, None]).squeeze(1)
        loss = 0.5 * (delta * delta).sum() / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc[0] += loss.detach()
        acc[1] += reward.sum()

    return _time_torch_steps(torch, dev, step, acc, n_images, batch, args)


def _time_torch_steps(torch, dev, step, acc, n_images, batch, args):
    """Warm up, then time args.epochs_frac of an epoch of step(indices) (CUDA events on a GPU);
    acc: the device sums the steps add their loss to."""
    cuda = dev.startswith("cuda")
    steps_per_epoch = n_images // batch
    timed = max(1, min(steps_per_epoch, int(round(args.epochs_frac * steps_per_epoch))))
    perm = torch.randperm(n_images, device=dev)
    for i in range(args.warmup):
        step(perm[(i % steps_per_epoch) * batch:((i % steps_per_epoch) + 1) * batch])
    perm = torch.randperm(n_images, device=dev)
    if cuda:
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
    t0 = time.perf_counter()
    for i in range(timed):
        step(perm[i * batch:(i + 1) * batch])
    submit = time.perf_counter() - t0
    if cuda:
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3
    else:
        seconds = time.perf_counter() - t0
    per_step = seconds / timed
    return {"s_epoch": per_step * n_images / batch, "ms_step": per_step * 1e3,
            "submit": submit / max(seconds, 1e-12), "finite": math.isfinite(float(acc[0]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=DEVICES)
    ap.add_argument("--nets", default="dense,conv,loccon,deep")
    ap.add_argument("--epochs-frac", type=float, default=1.0,
                    help="fraction of an epoch to time, extrapolated to a whole one (default 1)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--graph", action="store_true", help="replay one captured CUDA graph per step")
    ap.add_argument("--tf32", action="store_true", help="TF32 tensor cores for float32 GEMMs (CUPY_TF32=1)")
    ap.add_argument("--torch", action="store_true", help="also time the same networks in PyTorch (the ratio)")
    ap.add_argument("--data", default=None, help="folder with MNIST IDX files (else random data)")
    ap.add_argument("--csv", default=None, help="also write the table as CSV to this file")
    args = ap.parse_args(argv)
    if not 0 < args.epochs_frac <= 1:
        ap.error("--epochs-frac must be in (0, 1]")
    if args.tf32:
        os.environ["CUPY_TF32"] = "1"            # read once, when CuPy is imported
    import brainprop_np as bp

    be = bp.get_backend(args.device)
    print(f"backend {be.name} on {be.device_name()}; tf32 {'on' if args.tf32 else 'off'}; "
          f"graph {'on' if args.graph else 'off'}; "
          f"timing {args.epochs_frac:g} of an epoch", flush=True)
    if be.name == "cupy":
        from brainprop_np.kernels import cuda_module
        t0 = time.perf_counter()
        cuda_module.compile_all()
        print(f"CUDA kernels compiled/loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    torch = torch_dev = None
    if args.torch:
        torch, torch_dev, why = torch_or_reason(be)
        print(f"torch comparison: {'on ' + torch_dev + ' (torch ' + torch.__version__ + ')' if torch else 'skipped: ' + why}",
              flush=True)
    rows = []
    for name in args.nets.split(","):
        if name not in NETS:
            ap.error(f"unknown net {name!r}; use some of {', '.join(NETS)}")
        rows.append(_time_both(bp, be, name, args, torch, torch_dev))
    print_table(rows, args.torch)
    if args.csv:
        write_csv(args.csv, rows)
    bad = [r["net"] for r in rows if not r["finite"]]
    if bad:
        print(f"non-finite loss in {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _time_both(bp, be, name, args, torch, torch_dev):
    """One row: ours, and PyTorch's s/epoch (torch_s) when torch is given and does not fail."""
    r = time_net(bp, be, name, args, args.data)
    print(f"  {name}: {r['ms_step']:.3f} ms/step over {r['steps']} steps ({r['data']}) {r['note']}", flush=True)
    r["torch_s"] = None
    if torch is not None:
        try:
            t = time_torch(torch, torch_dev, name, args, args.data)
        except Exception as e:       # one network failing in torch does not stop the benchmark
            print(f"  {name} in torch: failed ({_why(e)})", flush=True)
        else:
            r["torch_s"] = t["s_epoch"]
            r["finite"] = r["finite"] and t["finite"]
            print(f"  {name} in torch: {t['ms_step']:.3f} ms/step, submit {t['submit']:.0%}", flush=True)
    return r


def _ratio(r):
    return r["s_epoch"] / r["torch_s"] if r["torch_s"] else None


def print_table(rows, with_torch):
    head = (f"{'network':<8}{'batch':>6}{'s/epoch':>10}{'images/s':>11}{'target':>8}{'ok':>4}{'submit':>8}"
            + (f"{'torch s':>9}{'vs torch':>9}" if with_torch else ""))
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        ok = "yes" if r["s_epoch"] <= r["target"] else "no"
        line = (f"{r['net']:<8}{r['batch']:>6}{r['s_epoch']:>10.3f}{r['images_s']:>11.0f}{r['target']:>8.2f}"
                f"{ok:>4}{r['submit']:>8.0%}")
        if with_torch:
            line += (f"{r['torch_s']:>9.3f}{_ratio(r):>8.2f}x" if r["torch_s"] else f"{'-':>9}{'-':>9}")
        print(line)


def write_csv(path, rows):
    """The table as CSV, written to a temporary name and renamed into place."""
    import csv
    from brainprop_np.files import atomic_open
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["network", "batch", "s_per_epoch", "images_per_s", "target", "submit_share",
                    "ms_per_step", "steps", "note", "torch_s_per_epoch", "ratio_vs_torch"])
        for r in rows:
            w.writerow([r["net"], r["batch"], f"{r['s_epoch']:.4f}", f"{r['images_s']:.0f}", r["target"],
                        f"{r['submit']:.3f}", f"{r['ms_step']:.4f}", r["steps"], r["note"],
                        f"{r['torch_s']:.4f}" if r["torch_s"] else "",
                        f"{_ratio(r):.3f}" if r["torch_s"] else ""])


if __name__ == "__main__":
    sys.exit(main())
