"""Checkpoints (`checkpoint.npz`, read with allow_pickle=False).

The network's arrays under "weights/<layer>/<array>" (BatchNorm running statistics
included; the layout of weights.py), extra arrays under "arrays/<name>" (the epoch's
permutation and partial sums of an interrupted epoch), and "meta": a JSON text holding
the epoch, the batch index, the optimiser and early-stopping state, the history, the
shuffling generator's state (a numpy `bit_generator.state` dict) and the trial counter of
the draws (exploration and dropout are counter-based: no generator state to keep).

Format 2. Format 1 (brainprop_np 0.1 before counter-based draws) kept the generator
states of PCG64 (CPU) or none (GPU); its runs drew other numbers than this version draws,
so they cannot continue bit for bit and are refused: resume starts again, or a new run
takes the old weights with init_from=<checkpoint.npz>.
"""
import json
from collections import OrderedDict

import numpy as np

from ..files import write_bytes
from ..weights import arrays_to_weights, npz_bytes, read_npz, weights_to_arrays

FORMAT = "brainprop_np-checkpoint-2"
OLD_FORMATS = ("brainprop_np-checkpoint-1",)


def rng_state(gen):
    """The JSON-able state of a host (numpy) random generator: the shuffling one."""
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
    write_bytes(path, npz_bytes(out))


def load_checkpoint(path):
    """(weights, meta, arrays) of a checkpoint written by `save_checkpoint`."""
    raw = read_npz(path)
    if "meta" not in raw:
        raise ValueError(f"{path}: not a brainprop_np checkpoint (no 'meta' entry)")
    meta = json.loads(str(raw["meta"]))
    if meta.get("format") in OLD_FORMATS:
        raise ValueError(f"{path} has checkpoint format {meta['format']!r}, written before exploration and "
                         "dropout drew from counters (Philox): this version would draw other numbers, so the run "
                         f"cannot continue as it began; start it again, or start a new run from its weights with "
                         f"init_from={path}")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    arrays = OrderedDict((k[len("arrays/"):], a) for k, a in raw.items() if k.startswith("arrays/"))
    return arrays_to_weights(raw, "weights/"), meta, arrays
