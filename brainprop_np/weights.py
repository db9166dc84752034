"""Weights files (.npz, read with allow_pickle=False; Keras .h5 through keras_io).

Weights file (`weights_best.npz`, or any file `save_weights` writes): one array per
"<layer>/<array>" key in Keras names and layouts, e.g. "conv2d/kernel",
"batch_normalization/moving_mean", "brain_prop_layer/kernel". A checkpoint (run/checkpoint.py)
keeps the same arrays under "weights/<layer>/<array>"; `read_weights` reads both.
"""
import io
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .files import write_bytes


def weights_to_arrays(weights, prefix=""):
    """{layer: {name: array}} → {"<prefix><layer>/<name>": array}."""
    return OrderedDict((f"{prefix}{layer}/{name}", np.asarray(a))
                       for layer, arrays in weights.items() for name, a in arrays.items())


def arrays_to_weights(arrays, prefix=""):
    """The inverse of `weights_to_arrays` for the keys that start with `prefix`."""
    out = OrderedDict()
    for key, a in arrays.items():
        if not key.startswith(prefix):
            continue
        layer, _, name = key[len(prefix):].rpartition("/")
        if not layer:
            raise ValueError(f"array {key!r} is not named '<layer>/<array>'")
        out.setdefault(layer, OrderedDict())[name] = a
    return out


def npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # a .npz is a zip archive (the second: an empty one)


def no_such_file(path):
    """The one line for a weights or checkpoint file that is not there."""
    return f"{path}: no such file"


def read_npz(path):
    """{name: ndarray} of a .npz file; one-line errors for a missing, empty or truncated file or
    another kind of file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise FileNotFoundError(no_such_file(path)) from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if not head:
        raise ValueError(f"{path}: empty file (a write that did not finish?)")
    if head not in ZIP_MAGIC:
        raise ValueError(f"{path}: not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return OrderedDict((k, z[k]) for k in z.files)
    except FileNotFoundError:
        raise FileNotFoundError(no_such_file(path)) from None
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def save_weights(path, net):
    """Write the network's weights (BatchNorm running statistics included), atomically."""
    write_bytes(path, npz_bytes(weights_to_arrays(net.get_weights())))


def read_weights(path):
    """{layer: {name: ndarray}} from a weights .npz, or the weights of a checkpoint .npz."""
    arrays = read_npz(path)
    if "meta" in arrays and any(k.startswith("weights/") for k in arrays):
        return arrays_to_weights(arrays, "weights/")
    return arrays_to_weights(arrays)


def load_weights_file(net, path):
    """Set the network's weights from `path`: .npz (this project) or .h5 (Keras, via keras_io)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        weights = read_weights(path)
        net.set_weights(weights, keep_feedback=True)
        kept = [n for n, a in net.get_weights().items() if "feedback_kernel" in a
                and "feedback_kernel" not in weights.get(n, {})]
        if kept:      # e.g. a symmetric run's weights in an untied network
            logging.getLogger(__name__).warning(
                "%s holds no feedback weights for %s; they stay as drawn", path, ", ".join(kept))
    elif suffix in (".h5", ".hdf5"):
        if not path.is_file():
            raise FileNotFoundError(no_such_file(path))
        from .keras_io import load_keras_weights
        load_keras_weights(net, str(path))
    else:
        raise ValueError(f"{path}: unknown weights format {suffix or '(no extension)'!r}; use .npz or .h5")
