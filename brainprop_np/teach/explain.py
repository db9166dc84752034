"""The explain command: one learning trial of a config's network, step by step (trace.py), with figures.

Weights: untrained weights (q ≈ 0, tiny activations) show δ ≈ 0 and ΔW ≈ 1e-10, which
teaches nothing, so the command line first trains the config's network for a few hundred
BrainProp steps on the dataset's training images (`pretrain`: the set-up and training step
of run/, cached under ~/.cache/brainprop_np/explain or $BRAINPROP_CACHE) and says so; `--load` takes your
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


def cache_key(cfg, ds, steps, batch_size):
    """16 hex digits of a hash of everything that builds and pre-trains the network: the
    version, model, seed, init_std, lr, l2, epsilon, feedback mode and its settings, the
    dataset and its size, steps and batch size (not the dtype or the kernel set)."""
    import hashlib
    import json
    from .. import __version__
    t = cfg["train"]
    key = {"version": __version__, "model": cfg["model"], "seed": cfg["seed"], "algorithm": cfg["algorithm"],
           "init_std": t["init_std"], "lr": t["lr"], "l2": t["l2"], "lr_halve_every": t["lr_halve_every"],
           "epsilon": cfg["brainprop"]["epsilon"], "feedback": cfg["feedback"],
           "feedback_decay": cfg["feedback_decay"], "feedback_sign": cfg["feedback_sign"],
           "dataset": ds.name, "label_mode": cfg["data"]["label_mode"], "n_train": len(ds.x_train),
           "steps": steps, "batch_size": batch_size}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def pretrain(cfg, ds, steps, progress=None):
    """Train the config's network for `steps` steps of its train.batch_size images drawn
    from ds's training images, as training does: the network built by run/setup (its seed,
    init_std and feedback settings; float32 on the CPU), the config's rule and SGD, and
    run/loop's training step. Returns (net, seconds, cache path or None).

    The result is cached under cache_key (a second `explain` starts at once), written
    atomically; a cache that cannot be written is simply not used. Weights that became
    non-finite (the training diverged) raise Diverged and are not cached.
    """
    import time
    from ..data import BatchIterator
    from ..rules import make_rule
    from ..run.failures import quiet_fp
    from ..run.loop import step
    from ..run.progress import Progress
    from ..run.setup import build, make_optimiser
    from ..weights import load_weights_file, save_weights
    cfg, batch_size = dict(cfg, device="cpu", dtype="float32"), cfg["train"]["batch_size"]
    net = build(cfg, ds.input_shape, ds.n_classes)
    path = cache_dir() / f"{cfg['name']}-{cache_key(cfg, ds, steps, batch_size)}.npz"
    if path.is_file():
        try:
            load_weights_file(net, path)
            _check_finite(net, cfg, steps, batch_size)      # (one written before this check existed)
            return net, 0.0, path
        except Exception:                                   # unreadable or non-finite: trained anew
            path.unlink(missing_ok=True)
            net = build(cfg, ds.input_shape, ds.n_classes)
    rule, opt = make_rule(cfg["algorithm"], cfg["brainprop"]["epsilon"]), make_optimiser(cfg)
    order = np.random.default_rng([cfg["seed"], 2]).permutation(len(ds.x_train))
    images = BatchIterator(ds.x_train, ds.y_train, net.backend, "float32")
    batches = images.epoch(batch_size, order[np.arange(steps * batch_size) % len(order)])
    bar = Progress(steps, "training before the trial", enabled=progress)
    t0 = time.perf_counter()
    with quiet_fp():
        for x, y in batches:
            step(rule, opt, net, x, y, opt.lr_at(0), batch_size)
            bar.update(images=batch_size)
    bar.close()
    seconds = time.perf_counter() - t0
    _check_finite(net, cfg, steps, batch_size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, net)
    except OSError:
        path = None
    return net, seconds, path


class Diverged(ValueError):
    """Pre-training made the weights non-finite; one line naming the settings and the ways out."""


def _check_finite(net, cfg, steps, batch_size):
    """Diverged when a weight of net is not finite after the `steps` pre-training steps."""
    bad = [f"{layer}/{name}" for layer, params in net.get_weights().items() for name, w in params.items()
           if not np.all(np.isfinite(w))]
    if bad:
        raise Diverged(f"the network's weights became non-finite ({bad[0]}) in the {steps} BrainProp steps of "
                       f"{batch_size} images that train it before the trial (lr {cfg['train']['lr']}): the training "
                       "diverged; use --train-steps N with a smaller N, --train-steps 0 (untrained weights) "
                       "or --load WEIGHTS")


def _dataset(cfg, say):
    """The config's dataset without downloading, else the bundled MNIST sample with a note."""
    from .. import data
    from ..data.paths import default_root
    from ..run.setup import data_folder
    d = cfg["data"]
    try:
        return data.load(d["name"], root=d["root"], download=False, label_mode=d["label_mode"])
    except data.DataError:
        folder = data_folder(cfg)[0] or default_root()
        say(f"note: no usable {d['name']} data in {folder}; explaining on the bundled MNIST sample instead "
            "(set data.root=DIR or $BRAINPROP_DATA)")
        return data.load("mnist_sample")


def explain_config(config, overrides=(), weights=None, image_index=0, figures=None, seed=0, say=print,
                   train_steps=0, progress=False):
    """What `brainprop explain CONFIG` does: one trial on test image `image_index` of the
    configured dataset (the bundled MNIST sample when the data are absent).

    The network is built from the config by run/setup (seed, architecture, feedback) in
    float64 on the CPU, so that the finite-difference check is exact. Its weights: `weights`
    (.npz or Keras .h5) when given, else the config's network after `train_steps` BrainProp
    steps on the dataset's training images (`pretrain`; the command line's default is 200),
    else (0) the initial weights. Returns (trace, text, figure paths); the text says which
    weights were used.
    """
    from ..run.setup import as_config, build, load_weights
    cfg = as_config(config, list(overrides) + ["device=cpu", "dtype=float64"])
    if cfg["algorithm"] != "brainprop":
        raise ValueError(f"algorithm={cfg['algorithm']!r} is not allowed with --explain: it traces one BrainProp "
                         "trial (choice, reward, delta, attention-gated feedback); EBP has no choice to explain")
    if train_steps < 0:
        raise ValueError(f"--train-steps {train_steps} is not allowed; use an integer >= 0 (0: untrained weights)")
    ds = _dataset(cfg, say)
    if not 0 <= image_index < len(ds.x_test):
        raise ValueError(f"--image {image_index} is not allowed; use 0..{len(ds.x_test) - 1}")
    net = build(cfg, ds.input_shape, ds.n_classes)
    if weights:
        load_weights(net, weights, "--load")       # TrainingError naming the file, as eval's
        which = f"weights {weights}"
    elif train_steps:
        trained, seconds, path = pretrain(cfg, ds, train_steps, progress=progress)
        net.set_weights(trained.get_weights())
        how = f"trained now in {seconds:.0f} s" if seconds else "read from the cache"
        which = (f"weights: the seed-{cfg['seed']} network after {train_steps} BrainProp steps of "
                 f"{cfg['train']['batch_size']} {ds.name} "
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
