"""Unpickle the official CIFAR batches without running arbitrary code.

The CIFAR pickles hold dicts of numpy arrays, lists, ints and strings; anything that
would import another callable is refused.
"""
import codecs
import io
import pickle

import numpy as np

try:  # NumPy >= 2
    from numpy._core import multiarray as _ma, numeric as _nm
except ImportError:  # pragma: no cover (NumPy 1.x)
    from numpy.core import multiarray as _ma, numeric as _nm

_ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(_mod + ".multiarray", "_reconstruct")] = _ma._reconstruct
    _ALLOWED[(_mod + ".multiarray", "scalar")] = _ma.scalar
    if hasattr(_nm, "_frombuffer"):
        _ALLOWED[(_mod + ".numeric", "_frombuffer")] = _nm._frombuffer


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def loads(data):
    """The object pickled in `data` (bytes), read with encoding='bytes' as in the official loader."""
    return _Unpickler(io.BytesIO(data), encoding="bytes").load()
