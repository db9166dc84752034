"""Config → data → network: the set-up that train, eval and explain share.

    cfg = resolve_config("configs/mnist_conv.yaml", ["train.epochs=2"])
    split, info = prepare_data(cfg, "training")     # the split images and their provenance
    net = build(cfg, split.input_shape, split.n_classes)

Data come from data.root, else $BRAINPROP_DATA, else the per-user cache (downloaded
when allowed). The bundled MNIST sample stands in for MNIST only when no folder was
named and nothing could be downloaded, and says so. The network is the config's model
with its seed, dtype, kernels, init_std and untied-feedback settings (`feedback_args`).
"""
import os
import sys
from pathlib import Path

from ..backend import BackendError
from ..kernels.memory import keep_freed_memory
from ..network import build_network
from ..optim import SGD
from ..weights import load_weights_file
from .config import ConfigError, check_resume_overrides, load_config, read_yaml, resolve
from .console import configure_threads
from .failures import TrainingError, out_of_memory


def as_config(config, overrides):
    """The resolved config of a YAML path or a dict, with dotted overrides applied."""
    if isinstance(config, (str, Path)):
        return load_config(config, overrides)
    if isinstance(config, dict):
        return resolve(config, overrides)
    raise ConfigError(f"config={type(config).__name__} is not allowed; use a path to a YAML file or a dict")


def resolve_config(config=None, overrides=(), resume=None):
    """The resolved config a run would use (what --print-config prints); no data, no files."""
    if resume is not None:
        from .resume import check_resume_folder
        check_resume_folder(resume)
        old = resolve(read_yaml(Path(resume) / "config.yaml"))
        cfg = resolve(old, overrides)
        check_resume_overrides(old, cfg)
        return cfg
    if config is None:
        raise ConfigError("config=None is not allowed; give a YAML path or a dict (or resume=RUN_DIR)")
    return as_config(config, overrides)


def check_device(cfg, missing=None):
    """Before any data is loaded: device=gpu without a GPU, or kernels=fast without numba, is
    a TrainingError (its text missing(e) when given, else the BackendError's own), a bad
    $BRAINPROP_KERNELS a ConfigError."""
    from ..backend import get_backend
    try:
        get_backend(cfg["device"], cfg["kernels"])
    except BackendError as e:
        raise TrainingError(missing(e) if missing else str(e)) from None
    except ValueError as e:
        raise ConfigError(str(e)) from None


# ---- data

def sample_line(doing="training"):
    """The one-line warning printed when the bundled MNIST sample stands in for MNIST."""
    return ("warning: MNIST not found (set data.root=DIR or $BRAINPROP_DATA): "
            f"{doing} on the bundled MNIST SAMPLE (5,000 images)")



def data_folder(cfg):
    """(folder, where) when the data folder was named (data.root, else $BRAINPROP_DATA), else (None, None)."""
    from ..data.paths import ENV_VAR
    if cfg["data"]["root"] not in (None, ""):
        return cfg["data"]["root"], "data.root"
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR], f"${ENV_VAR}"
    return None, None


def load_data(cfg, force=None, doing="training"):
    """(Dataset, info dict) for the config, with the MNIST-sample fallback.

    A named folder (data.root or $BRAINPROP_DATA) that lacks the files is an error naming
    the folder and the files, never a fallback: the sample stands in for MNIST only when
    no folder was named and nothing could be downloaded; then sample_line(doing) is
    printed (also when not verbose). force: the dataset a checkpoint used (resume uses that one).
    """
    from .. import data
    d = cfg["data"]
    name = force or d["name"]
    info = {"requested": d["name"], "used": name, "fallback": False, "fallback_reason": None}
    folder, where = data_folder(cfg)
    spec = data.dataset_info(name)
    if folder is not None and not spec.builtin and not Path(folder).expanduser().is_dir():
        raise TrainingError(f"{where}={folder}: no such folder; it should hold the {name} files "
                            f"({', '.join(spec.files)}) or a '{spec.folders[0]}' subfolder with them")
    sample = d["fallback"] == "mnist_sample" and name == "mnist"
    try:
        ds = data.load(name, root=d["root"], download=d["download"], label_mode=d["label_mode"])
    except data.DataError as e:
        if sample and force is None and folder is None:
            print(sample_line(doing), file=sys.stderr, flush=True)         # printed with -q too
            ds = data.load("mnist_sample")
            info.update(used="mnist_sample", fallback=True, fallback_reason=str(e))
        elif folder is not None:
            raise TrainingError(f"{e} ({where} names this folder, so the MNIST sample is not used instead)"
                                if sample else str(e)) from None
        else:
            raise TrainingError(str(e)) from None
    except ValueError as e:
        raise ConfigError(f"data: {e}") from None
    return ds, info


def on_sample(info):
    """' [MNIST SAMPLE]' when the run fell back to the bundled sample, else ''."""
    return " [MNIST SAMPLE]" if info.get("fallback") else ""


def data_text(info):
    """The data of the start line: 'mnist', with the fallback and a class subset said
    ('mnist classes [3, 8] as 0..1')."""
    text = info["used"] + (" (THE BUNDLED SAMPLE, not full MNIST)" if info["fallback"] else "")
    if info.get("classes"):
        labels = info["classes"]["labels"]
        text += f" classes {labels} as 0..{len(labels) - 1}"
    return text


def split_data(cfg, ds):
    """The train / validation / test split of the config (classes, holdout, limits)."""
    from .. import data
    d = cfg["data"]
    try:
        return data.prepare(ds, limit_train=d["limit_train"], limit_test=d["limit_test"], holdout=d["holdout"],
                            classes=d["classes"])
    except ValueError as e:
        raise ConfigError(f"data.{e}") from None


def prepare_data(cfg, doing="training", checkpoint_data=None):
    """(split, info): the config's data, split, and where they came from (summary.json's
    "dataset"). checkpoint_data: a resumed run's record; it trains on that dataset and
    keeps its provenance (the MNIST-sample fallback)."""
    keep = checkpoint_data or {}
    ds, info = load_data(cfg, force=keep.get("used"), doing=doing)
    info.update({k: keep[k] for k in ("requested", "fallback", "fallback_reason") if k in keep})
    split = split_data(cfg, ds)
    info.update(n_train=len(split.x_train), n_val=len(split.x_val), n_test=len(split.x_test),
                n_classes=split.n_classes)
    if split.labels is not None:            # the dataset's labels and names of the classes, in their new order
        info["classes"] = {"labels": split.labels, "names": split.classes}
    return split, info


def device_batches(cfg, split, backend):
    """(train, validation, alignment batch): the split's images on the network's device, once.

    The alignment batch (untied feedback, cfg["alignment"]) is the first training images;
    out of memory here is OutOfMemory naming the copy."""
    from ..data import BatchIterator
    x, y, dtype = split.x_train, split.y_train, cfg["dtype"]
    try:
        train_it = BatchIterator(x, y, backend, dtype)
        align = None
        if cfg["alignment"]:
            n = min(cfg["train"]["batch_size"], len(x))    # the first training images, every epoch
            align = next(BatchIterator(x[:n], y[:n], backend, dtype).epoch(n))
        return train_it, BatchIterator(split.x_val, split.y_val, backend, dtype), align
    except MemoryError as e:
        raise out_of_memory(e, "copying the data to the device", cfg) from e


def check_batch(cfg, n_train):
    """ConfigError when train.batch_size exceeds the training images."""
    bs = cfg["train"]["batch_size"]
    if bs > n_train:
        raise ConfigError(f"train.batch_size={bs} is not allowed: it exceeds the {n_train:,} training images; "
                          f"use at most {n_train}")


# ---- the network and its learning

def feedback_args(cfg):
    """build_network's untied-feedback arguments from a resolved config."""
    return {"feedback": cfg["feedback"], "feedback_decay": cfg["feedback_decay"],
            "feedback_sign": cfg["feedback_sign"]}


def network_args(cfg, input_shape, n_classes, device=None):
    """build_network's arguments for the config (device: a Backend, else the config's device)."""
    return dict(model=cfg["model"], input_shape=input_shape, n_classes=n_classes, seed=cfg["seed"],
                device=cfg["device"] if device is None else device, dtype=cfg["dtype"],
                algorithm=cfg["algorithm"], init_std=cfg["train"]["init_std"], kernels=cfg["kernels"],
                **feedback_args(cfg))


def build(cfg, input_shape, n_classes, threads=None):
    """The config's network (threads set first: `threads` those of a resumed run): model,
    seed, device, dtype, kernels, init_std and feedback; a model that does not fit the data
    is a ConfigError."""
    configure_threads(threads)
    keep_freed_memory()                  # each step reuses the last one's pages (kernels/memory.py)
    try:
        return build_network(**network_args(cfg, input_shape, n_classes))
    except BackendError as e:
        raise TrainingError(str(e)) from None
    except (ValueError, TypeError) as e:
        msg = str(e)
        msg = msg if msg.startswith("model") else f"model: {msg}"    # no "model: model layer 0 ..."
        raise ConfigError(f"{msg} (input {input_shape}, {n_classes} classes)") from None


def make_optimiser(cfg):
    """Plain SGD of the config: lr(epoch) = lr·0.5^(epoch // lr_halve_every), L2 l2."""
    t = cfg["train"]
    return SGD(lr=t["lr"], l2=t["l2"], halve_every=t["lr_halve_every"])


def check_weights_file(path):
    """TrainingError when the weights file `path` is not there: said before the data are loaded
    (or downloaded: CIFAR and Tiny ImageNet are hundreds of MB)."""
    from ..weights import no_such_file
    if path and not Path(path).exists():
        raise TrainingError(no_such_file(path))


def load_weights(net, path, what):
    """Load a weights file (.npz, a checkpoint, or Keras .h5) into `net`; TrainingError naming it."""
    try:
        load_weights_file(net, path)
    except ImportError as e:                    # h5py missing: the message says how to install it
        raise TrainingError(f"{what} {path}: {e}") from None
    except (OSError, ValueError, KeyError) as e:
        msg = str(e).strip("'")                 # (a KeyError's text comes quoted)
        named = str(path) in msg or str(Path(path)) in msg
        raise TrainingError(msg if named else f"{what} {path}: {msg}") from None
