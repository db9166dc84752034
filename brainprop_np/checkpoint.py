"""Weights files and checkpoints (.npz, read with allow_pickle=False).

Weights file (`weights_best.npz`, or any file `save_weights` writes): one array per
"<layer>/<array>" key in Keras names and layouts, e.g. "conv2d/kernel",
"batch_normalization/moving_mean", "brain_prop_layer/kernel".

Checkpoint (`checkpoint.npz`): the same arrays under "weights/<layer>/<array>" (BatchNorm
running statistics included), extra arrays under "arrays/<name>" (the epoch's
permutation and partial sums of an interrupted epoch), and "meta": a JSON text holding
the epoch, the batch index, the optimiser and early-stopping state, the history, and
the random states (numpy `bit_generator.state` dicts).
"""
import io
import json
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .runfolder import write_bytes

FORMAT = "brainprop_np-checkpoint-1"


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


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _read_npz(path):
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return OrderedDict((k, z[k]) for k in z.files)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def save_weights(path, net):
    """Write the network's weights (BatchNorm running statistics included), atomically."""
    write_bytes(path, _npz_bytes(weights_to_arrays(net.get_weights())))


def read_weights(path):
    """{layer: {name: ndarray}} from a weights .npz, or the weights of a checkpoint .npz."""
    arrays = _read_npz(path)
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
            raise FileNotFoundError(f"{path}: no such file")
        from .keras_io import load_keras_weights
        load_keras_weights(net, str(path))
    else:
        raise ValueError(f"{path}: unknown weights format {suffix or '(no extension)'!r}; use .npz or .h5")


def rng_state(gen):
    """The JSON-able state of a random generator (None where it cannot be read, e.g. CuPy)."""
    bitgen = getattr(gen, "bit_generator", None)
    try:
        state = bitgen.state
    except Exception:
        return None
    return json.loads(json.dumps(state)) if isinstance(state, dict) else None


def set_rng_state(gen, state):
    """Restore a state from `rng_state` in place; False when this generator cannot take it."""
    if state is None:
        return False
    bitgen = getattr(gen, "bit_generator", None)
    try:
        if bitgen.state.get("bit_generator") != state.get("bit_generator"):
            return False
        bitgen.state = state
    except Exception:
        return False
    return True


def save_checkpoint(path, weights, meta, arrays=None):
    """Write a checkpoint atomically: weights dict, JSON-able meta, extra named arrays."""
    out = weights_to_arrays(weights, "weights/")
    for k, a in (arrays or {}).items():
        out[f"arrays/{k}"] = np.asarray(a)
    out["meta"] = np.array(json.dumps(dict(meta, format=FORMAT)))
    write_bytes(path, _npz_bytes(out))


def load_checkpoint(path):
    """(weights, meta, arrays) of a checkpoint written by `save_checkpoint`."""
    raw = _read_npz(path)
    if "meta" not in raw:
        raise ValueError(f"{path}: not a brainprop_np checkpoint (no 'meta' entry)")
    meta = json.loads(str(raw["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    arrays = OrderedDict((k[len("arrays/"):], a) for k, a in raw.items() if k.startswith("arrays/"))
    return arrays_to_weights(raw, "weights/"), meta, arrays
