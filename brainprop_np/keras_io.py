"""Keras .h5 weight files: read and write the legacy HDF5 format of `model.save_weights("x.h5")`.

    import brainprop_np as bp
    net = bp.build_network("conv", input_shape=(28, 28, 1), n_classes=10, device="cpu")
    info = bp.load_keras_weights(net, "MNIST_conv_BrainProp_weights.h5")   # the original code's file
    print(info)                      # which file layer went into which network layer
    bp.save_keras_weights(net, "mine.h5")   # the original code's model.load_weights accepts it

The format (TF 2.x / Keras 2, `keras.src.saving.legacy.hdf5_format`):
- root attributes `layer_names` (every layer in order, weightless ones included),
  `backend` ("tensorflow") and `keras_version` ("2.15.0");
- one group per layer with attribute `weight_names` (e.g. `conv2d/kernel:0`; an empty
  float64 array for a layer without weights) and the arrays as float32 datasets at
  `<layer>/<weight name>`, i.e. `<layer>/<layer>/<var>:0`; BatchNorm's order is gamma,
  beta, moving_mean, moving_variance;
- a string-array attribute larger than HDF5's 64 KiB object-header limit is split into
  `<name>0`, `<name>1`, ... (read and written here as Keras does);
- an empty group `top_level_model_weights`, not listed in `layer_names`.
A full-model file (`model.save("x.h5")`) holds the same layout in its `model_weights`
group; it is read from there.

Matching, as Keras's own loader does it: the file's layers *with weights* are paired with
the network's layers with weights in order, not by name, and within a layer the arrays
in order. Every array's shape must fit; names only inform (a file written after other
models had been built in the same Keras session calls its layers `dense_3`, ...; a
BrainProp file's output layer is `brain_prop_layer`, an EBP file's `dense_N`, and either
loads into either kind of network, as both are one linear kernel). Any mismatch raises
`KerasWeightsError` (a ValueError) with a one-line message naming the layer, the expected
and the found shape; everything is read and checked before the network is touched, so a
failed load leaves it unchanged.

h5py is an optional extra (`pip install -e .[keras]`); it is imported on first use.
"""
import logging
import os
import re
import tempfile
from collections import OrderedDict

import numpy as np

__all__ = ["KerasWeightsError", "KerasLoadInfo", "load_keras_weights", "save_keras_weights"]

log = logging.getLogger(__name__)

# Keras's HDF5_OBJECT_HEADER_LIMIT: string-array attributes larger than this are chunked.
HDF5_OBJECT_HEADER_LIMIT = 64512
KERAS_VERSION = "2.15.0"
KERAS_BACKEND = "tensorflow"
INSTALL_HINT = "pip install -e .[keras] (or: pip install h5py)"


class KerasWeightsError(ValueError):
    """A Keras weight file that is unreadable, not in the Keras format, or does not fit the network."""


def _h5py():
    """Import h5py on first use, with an error that says how to install it."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"reading and writing Keras .h5 weight files needs h5py, which is not "
                          f"installed; install it with: {INSTALL_HINT}") from e
    return h5py


class KerasLoadInfo:
    """What `load_keras_weights` did: which file layer went into which network layer.

    Attributes: path, keras_version, backend (as the file states them, or None),
    pairs [(file layer, network layer)], renamed (the pairs whose names differ),
    notes (one line each, informational only).
    """

    def __init__(self, path, keras_version, backend, pairs, notes):
        self.path, self.keras_version, self.backend = path, keras_version, backend
        self.pairs, self.notes = pairs, notes

    @property
    def renamed(self):
        return [(f, n) for f, n in self.pairs if f != n]

    def __str__(self):
        head = (f"loaded {len(self.pairs)} layers with weights from {self.path} "
                f"(keras_version {self.keras_version}, backend {self.backend})")
        return "\n".join([head] + [f"  {n}" for n in self.notes])

    def __repr__(self):
        return f"KerasLoadInfo(path={self.path!r}, pairs={self.pairs!r})"


# ---------------------------------------------------------------------------- attributes

def _text(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf8")
    return str(v)


def _read_str_list(obj, name):
    """A string-list attribute as Keras's load_attributes_from_hdf5_group reads it
    (plain, or chunked into name0, name1, ...); None when absent."""
    attrs = obj.attrs
    if name in attrs:
        chunks = [attrs[name]]
    elif f"{name}0" in attrs:
        chunks, i = [], 0
        while f"{name}{i}" in attrs:
            chunks.append(attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    out = []
    for c in chunks:
        arr = np.asarray(c)
        if arr.size == 0:
            continue
        if arr.dtype.kind not in "OSU":
            raise KerasWeightsError(f"attribute {name!r} of {obj.name!r} holds {arr.dtype} values, not strings")
        out.extend(_text(v) for v in arr.reshape(-1))
    return out


def _write_str_list(h5py, obj, name, items):
    """Write a string-list attribute as Keras's save_attributes_to_hdf5_group does:
    an array of UTF-8 bytes (variable-length strings, as h5py stores a list of bytes),
    an empty list as an empty float64 array, chunked above the object-header limit."""
    data = [s.encode("utf8") for s in items]
    if not data:
        obj.attrs[name] = np.zeros((0,), dtype=np.float64)
        return
    too_long = [d for d in data if len(d) > HDF5_OBJECT_HEADER_LIMIT]
    if too_long:
        raise KerasWeightsError(f"name {too_long[0][:40]!r}... is longer than {HDF5_OBJECT_HEADER_LIMIT} bytes")
    fixed = np.asarray(data)   # what Keras measures to decide on chunking
    n = 1
    chunks = np.array_split(fixed, n)
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in chunks):
        n += 1
        chunks = np.array_split(fixed, n)
    if n == 1:
        obj.attrs[name] = np.array(data, dtype=h5py.string_dtype("ascii"))
    else:
        for i, c in enumerate(chunks):
            obj.attrs[f"{name}{i}"] = c


def _scalar_attr(obj, name):
    if name not in obj.attrs:
        return None
    v = obj.attrs[name]
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return _text(v)


# ---------------------------------------------------------------------------- reading

def _fmt_shape(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


def _var_name(weight_name):
    """'batch_normalization_1/moving_mean:0' → 'moving_mean'."""
    return re.sub(r":\d+$", "", weight_name.rsplit("/", 1)[-1])


def _open(h5py, path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Keras weight file {path} does not exist")
    if os.path.isdir(path):
        raise KerasWeightsError(f"{path} is a folder, not a Keras .h5 weight file")
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as e:
        raise KerasWeightsError(f"{path} cannot be read: {e}") from e
    if not is_h5:
        raise KerasWeightsError(f"{path} is not an HDF5 file, so not a Keras .h5 weight file "
                                f"(the legacy format that model.save_weights('x.h5') writes)")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise KerasWeightsError(f"{path} is not a readable HDF5 file: {e}") from e


def _read_file_layers(h5py, f, path):
    """[(layer name, [(weight name, float ndarray)])] for the file's layers with weights, in
    `layer_names` order, plus (keras_version, backend)."""
    root = f
    if _read_str_list(root, "layer_names") is None and "model_weights" in root:
        root = root["model_weights"]            # a full-model file from model.save("x.h5")
    names = _read_str_list(root, "layer_names")
    if names is None:
        hint = ""
        if "layers" in root and isinstance(root["layers"], h5py.Group):
            hint = "; it looks like a Keras 3 '.weights.h5' file, which this reader does not handle"
        raise KerasWeightsError(f"{path} is not a Keras weight file: it has no root attribute "
                                f"'layer_names' (the legacy format of model.save_weights('x.h5')){hint}")
    layers = []
    for lname in names:
        if lname not in root or not isinstance(root[lname], h5py.Group):
            raise KerasWeightsError(f"{path}: layer_names lists layer {lname!r}, but the file has no group {lname!r}")
        g = root[lname]
        wnames = _read_str_list(g, "weight_names") or []
        arrays = []
        for wn in wnames:
            if wn not in g or not isinstance(g[wn], h5py.Dataset):
                raise KerasWeightsError(f"{path}: layer {lname!r} lists weight {wn!r}, but the file has no dataset {g.name}/{wn}")
            ds = g[wn]
            if ds.dtype.kind != "f":
                raise KerasWeightsError(f"{path}: layer {lname!r} weight {wn!r} has dtype {ds.dtype}, not floating point")
            arrays.append((wn, np.asarray(ds[()])))
        if arrays:
            layers.append((lname, arrays))
    return layers, _scalar_attr(root, "keras_version"), _scalar_attr(root, "backend")


def _missing_message(path, file_layers, net_items):
    """One line naming the layer that has no counterpart, when the counts differ.

    When removing one layer from the longer list makes every shape fit, that layer is
    named as missing (or extra); otherwise the first pair that differs is named.
    """
    fshapes = [[a.shape for _, a in arrs] for _, arrs in file_layers]
    nshapes = [[a.shape for a in arrs.values()] for _, arrs in net_items]
    n_f, n_n = len(file_layers), len(net_items)
    short, long_ = (fshapes, nshapes) if n_f < n_n else (nshapes, fshapes)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    counts = (f"the file has {n_f} layers with weights ({', '.join(n for n, _ in file_layers)}), "
              f"the network {n_n} ({', '.join(n for n, _ in net_items)})")
    one_off = len(long_) == len(short) + 1 and long_[:i] + long_[i + 1:] == short
    if one_off and n_f < n_n:
        lname, arrs = net_items[i]
        exp = ", ".join(f"{k} {_fmt_shape(a.shape)}" for k, a in arrs.items())
        return (f"{path}: network layer {lname!r} is missing from the file: expected {exp}, "
                f"found no matching layer ({counts})")
    if one_off:
        lname, arrs = file_layers[i]
        found = ", ".join(f"{_var_name(w)} {_fmt_shape(a.shape)}" for w, a in arrs)
        return (f"{path}: file layer {lname!r} has no counterpart in the network: expected no layer, "
                f"found {found} ({counts})")
    if i >= min(n_f, n_n):     # the shorter list fits the longer one's start
        side, lname = ("network layer", net_items[i][0]) if n_f < n_n else ("file layer", file_layers[i][0])
        return f"{path}: {side} {lname!r} and the layers after it have no counterpart ({counts})"
    nname, narrs = net_items[i]
    fname, farrs = file_layers[i]
    exp = ", ".join(f"{k} {_fmt_shape(a.shape)}" for k, a in narrs.items())
    found = ", ".join(f"{_var_name(w)} {_fmt_shape(a.shape)}" for w, a in farrs)
    return (f"{path}: the layers do not match ({counts}); the first that differs is network layer "
            f"{nname!r}: expected {exp}, found file layer {fname!r} with {found}")


def load_keras_weights(net, path):
    """Load a legacy Keras .h5 weight file into `net`; return a `KerasLoadInfo`.

    The file's layers with weights are matched to the network's in order (as Keras's
    `model.load_weights` does) and every array's shape is checked; names that differ are
    reported in the returned info (and logged at INFO level), not treated as errors.
    Arrays are cast to the network's dtype and moved to its device. On any mismatch a
    `KerasWeightsError` (ValueError) names the layer, the expected and the found shape,
    and the network is left unchanged. Raises FileNotFoundError for a missing path and
    ImportError (saying how to install it) without h5py.
    """
    h5py = _h5py()
    path = os.fspath(path)
    with _open(h5py, path) as f:
        file_layers, keras_version, backend = _read_file_layers(h5py, f, path)
    net_items = list(net.get_weights(feedback=False).items())   # Keras files: forward weights only
    if len(file_layers) != len(net_items):
        raise KerasWeightsError(_missing_message(path, file_layers, net_items))
    new, pairs, notes = OrderedDict(), [], []
    for (fname, farrays), (nname, narrays) in zip(file_layers, net_items):
        where = f"layer {nname!r}" if fname == nname else f"layer {nname!r} (file layer {fname!r})"
        if len(farrays) != len(narrays):
            exp = ", ".join(f"{k} {_fmt_shape(a.shape)}" for k, a in narrays.items())
            got = ", ".join(f"{_var_name(w)} {_fmt_shape(a.shape)}" for w, a in farrays)
            raise KerasWeightsError(f"{path}: {where}: expected {len(narrays)} arrays ({exp}), "
                                    f"found {len(farrays)} ({got})")
        layer = OrderedDict()
        for (wname, arr), (aname, ref) in zip(farrays, narrays.items()):
            if arr.shape != ref.shape:
                raise KerasWeightsError(f"{path}: {where} {aname}: expected shape {_fmt_shape(ref.shape)}, "
                                        f"found {_fmt_shape(arr.shape)} ('{fname}/{wname}')")
            if _var_name(wname) != aname:
                notes.append(f"{where}: file array {wname!r} loaded as {aname!r} (matched by order)")
            if not np.all(np.isfinite(arr)):
                notes.append(f"{where} {aname}: the file's values include NaN or infinity")
            layer[aname] = arr
        new[nname] = layer
        pairs.append((fname, nname))
        if fname != nname:
            notes.append(f"file layer {fname!r} → network layer {nname!r} (matched by order, shapes fit)")
    if keras_version is not None and keras_version.startswith("1"):
        notes.append(f"the file was written by Keras {keras_version}; layouts were taken as Keras 2's")
    net.set_weights(new, keep_feedback=True)    # every array checked above: this cannot fail half-way
    info = KerasLoadInfo(path, keras_version, backend, pairs, notes)
    for n in notes:
        log.info("%s: %s", path, n)
    untied = [n for n, a in net.get_weights().items() if "feedback_kernel" in a]
    if untied:
        line = (f"{path}: a Keras file holds forward weights only; the untied feedback weights "
                f"(feedback_kernel of {', '.join(untied)}) stay as drawn")
        info.notes.append(line)
        log.warning("%s", line)
    return info


# ---------------------------------------------------------------------------- writing

def save_keras_weights(net, path, keras_version=KERAS_VERSION, backend=KERAS_BACKEND):
    """Write `net`'s weights as a legacy Keras .h5 weight file that the original code's
    `model.load_weights(path)` accepts; return the path.

    Every layer (weightless ones included) is listed in `layer_names` under its Keras
    name; arrays are stored as float32 (a float64 network is rounded). The file is written
    to a temporary name in the same folder and renamed into place when complete.
    """
    h5py = _h5py()
    path = os.fspath(path)
    weights = net.get_weights(feedback=False)     # forward weights only: what Keras knows
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".h5.tmp", dir=folder)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; give the usual permissions
        with h5py.File(tmp, "w") as f:
            names = [layer.name for layer in net.layers]
            if len(set(names)) != len(names):
                raise KerasWeightsError(f"layer names are not unique: {', '.join(names)}")
            _write_str_list(h5py, f, "layer_names", names)
            f.attrs["backend"] = str(backend).encode("utf8")
            f.attrs["keras_version"] = str(keras_version).encode("utf8")
            # Keras creates the groups in sorted order (no name is a prefix issue for HDF5).
            for lname in sorted(names):
                g = f.create_group(lname)
                arrays = weights.get(lname, {})
                wnames = [f"{lname}/{aname}:0" for aname in arrays]
                _write_str_list(h5py, g, "weight_names", wnames)
                for wn, arr in zip(wnames, arrays.values()):
                    val = np.asarray(arr, dtype=np.float32)
                    ds = g.create_dataset(wn, val.shape, dtype=np.float32)
                    if val.shape:
                        ds[...] = val
                    else:
                        ds[()] = val
            top = f.create_group("top_level_model_weights")
            _write_str_list(h5py, top, "weight_names", [])
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    return path
