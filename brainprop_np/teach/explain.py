"""The explain command: one learning trial of a config's network, step by step (trace.py), with figures.

Weights: untrained weights (q ≈ 0, tiny activations) show δ ≈ 0 and ΔW ≈ 1e-10, which
teaches nothing, so the command line first trains the config's network for a few hundred
BrainProp steps on the dataset's training images (`pretrain`, cached under
~/.cache/brainprop_np/explain or $BRAINPROP_CACHE) and says so; `--load` takes your
weights, `--train-steps 0` the initial ones.
"""
import numpy as np

from .figures import save_figures
from .trace import explain_trial, format_trace


def cache_dir():
    """Where pretrained explain weights are kept: $BRAINPROP_CACHE, else ~/.cache/brainprop_np/explain."""
    import os
    from pathlib import Path
    env = os.environ.get("BRAINPROP_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/brainprop_np/explain").expanduser()


def pretrain(cfg, ds, steps, batch_size=32, progress=None):
    """Train the config's network (float32, CPU, its seed) for `steps` BrainProp steps of
    `batch_size` images drawn from ds's training images; return (net, seconds, cache path or None).

    The result is cached by (model, seed, settings, dataset, steps) so that a second
    `--explain` starts at once; a cache that cannot be written is simply not used.
    """
    import hashlib
    import json
    import time
    from .. import __version__
    from ..weights import load_weights_file, save_weights
    from ..network import build_network
    from ..optim import SGD
    from ..run.progress import Progress
    from ..rules import BrainProp
    t = cfg["train"]
    net = build_network(cfg["model"], ds.input_shape, ds.n_classes, seed=cfg["seed"], device="cpu",
                        dtype="float32", algorithm="brainprop", init_std=t["init_std"])
    key = json.dumps([__version__, cfg["model"], cfg["seed"], t["init_std"], t["lr"], t["l2"],
                      cfg["brainprop"]["epsilon"], ds.name, len(ds.x_train), steps, batch_size], sort_keys=True)
    path = cache_dir() / f"{cfg['name']}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            load_weights_file(net, path)
            return net, 0.0, path
        except Exception:
            pass
    rule, opt = BrainProp(cfg["brainprop"]["epsilon"]), SGD(lr=t["lr"], l2=t["l2"], halve_every=0)
    rng = np.random.default_rng([cfg["seed"], 2])
    order = rng.permutation(len(ds.x_train))
    bar = Progress(steps, "training before the trial", enabled=progress)
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        for step in range(steps):
            idx = order[(np.arange(batch_size) + step * batch_size) % len(order)]
            x = ds.x_train[idx].astype(np.float32) / 255.0
            rule.trial(net, x, ds.y_train[idx], train=True, batch_size=batch_size)
            opt.step(net, t["lr"])
            bar.update(images=batch_size)
    bar.close()
    seconds = time.perf_counter() - t0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, net)
    except OSError:
        path = None
    return net, seconds, path


def explain_config(config, overrides=(), weights=None, image_index=0, figures=None, seed=0, say=print,
                   train_steps=0, progress=False):
    """What `brainprop explain CONFIG` does: one trial on test image `image_index` of the
    configured dataset (the bundled MNIST sample when the data are absent).

    The network is built from the config (seed, architecture) in float64 on the CPU, so that
    the finite-difference check is exact. Its weights: `weights` (.npz or Keras .h5) when
    given, else the config's network after `train_steps` BrainProp steps on the dataset's
    training images (`pretrain`; the command line's default is 200), else (0) the initial
    weights. Returns (trace, text, figure paths); the text says which weights were used.
    """
    from .. import data
    from ..backend import BackendError
    from ..weights import load_weights_file
    from ..network import build_network
    from ..run.train import _as_config, feedback_args

    cfg = _as_config(config, list(overrides) + ["device=cpu", "dtype=float64"])
    if cfg["algorithm"] != "brainprop":
        raise ValueError(f"algorithm={cfg['algorithm']!r} is not allowed with --explain: it traces one BrainProp "
                         "trial (choice, reward, delta, attention-gated feedback); EBP has no choice to explain")
    if train_steps < 0:
        raise ValueError(f"--train-steps {train_steps} is not allowed; use an integer >= 0 (0: untrained weights)")
    try:
        ds = data.load(cfg["data"]["name"], root=cfg["data"]["root"], download=False,
                       label_mode=cfg["data"]["label_mode"])
    except data.DataError as e:
        first = str(e).split(";")[0]
        say(f"note: {first[:90]}; explaining on the bundled MNIST sample instead")
        ds = data.load("mnist_sample")
    if not 0 <= image_index < len(ds.x_test):
        raise ValueError(f"--image {image_index} is not allowed; use 0..{len(ds.x_test) - 1}")
    try:
        net = build_network(cfg["model"], ds.input_shape, ds.n_classes, seed=cfg["seed"], device="cpu",
                            dtype="float64", algorithm="brainprop", init_std=cfg["train"]["init_std"],
                            **feedback_args(cfg))
    except BackendError:
        raise
    if weights:
        load_weights_file(net, weights)
        which = f"weights {weights}"
    elif train_steps:
        trained, seconds, path = pretrain(cfg, ds, train_steps, progress=progress)
        net.set_weights(trained.get_weights())
        how = f"trained now in {seconds:.0f} s" if seconds else "read from the cache"
        which = (f"weights: the seed-{cfg['seed']} network after {train_steps} BrainProp steps of 32 {ds.name} "
                 f"training images ({how}{', ' + str(path) if path else ''}); --train-steps 0: untrained, "
                 "--load W: yours")
    else:
        which = f"initial weights, seed {cfg['seed']} (untrained: q ≈ 0, so δ and ΔW are tiny)"
    x = ds.x_test[image_index:image_index + 1].astype(np.float64) / 255.0
    label = int(ds.y_test[image_index])
    trace = explain_trial(net, x, label, epsilon=cfg["brainprop"]["epsilon"], lr=cfg["train"]["lr"], seed=seed)
    names = list(ds.classes) if getattr(ds, "classes", None) is not None else None
    text = (f"dataset {ds.name}, test image {image_index}, network {cfg['name']}\n{which}\n\n"
            + format_trace(trace, names))
    paths = save_figures(trace, x[0], figures) if figures else []
    return trace, text, paths
