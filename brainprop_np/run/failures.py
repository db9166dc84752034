"""How a run fails: TrainingError (a runtime failure, one line), OutOfMemory (naming the
phase and the setting to lower), and the two guards around training and evaluation.

NumPy's floating-point warnings are silenced inside training and evaluation (`quiet_fp`):
a diverging run ends with the one-line non-finite-loss error, not a page of
RuntimeWarnings. A ValueError raised inside (a kernel's, say) becomes a TrainingError
(`runtime`); MemoryError (CuPy's OutOfMemoryError included) passes through.

A CUDA error (an illegal address, a `__trap`, a failed cuBLAS call: CuPy's
CUDARuntimeError, CUDADriverError, CUBLASError, ...) is a DeviceFault: one line with the
hint CUDA_HINT, exit status 1. Such errors are recognised by type name and module
(`is_device_fault`), so nothing here imports CuPy. After a device fault the device's
state is lost: no checkpoint is attempted, and the last good one is kept.
"""
import contextlib
import warnings

import numpy as np

from .config import ConfigError


class TrainingError(RuntimeError):
    """A runtime failure (missing data, no GPU, non-finite loss, unreadable weights); one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


CUDA_HINT = "rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel"
_CUDA_ERRORS = ("CUDARuntimeError", "CUDADriverError", "CUBLASError", "CURANDError", "CUSOLVERError",
                "CUSPARSEError", "CUFFTError")


class DeviceFault(TrainingError):
    """A CUDA error while the device computed (the device's state is lost); one line, with CUDA_HINT."""


def is_device_fault(e):
    """Whether `e` is one of CuPy's CUDA errors (by type name and module; CuPy not imported).
    CuPy's OutOfMemoryError is a MemoryError, not a device fault."""
    if isinstance(e, (MemoryError, TrainingError)):
        return False
    return any(t.__name__ in _CUDA_ERRORS and (t.__module__ or "").startswith(("cupy", "cupy_backends"))
               for t in type(e).__mro__)


def device_fault(e, where, note=None):
    """The DeviceFault for CUDA error `e`: `where: device fault (Type: message)[; note]; CUDA_HINT`."""
    what = " ".join(f"{type(e).__name__}: {e}".split())
    return DeviceFault(f"{where}: device fault ({what})" + (f"; {note}" if note else "") + f"; {CUDA_HINT}")


def failure_text(e):
    """The one line of a runtime failure: a CUDA error with CUDA_HINT, anything else as it reads."""
    return str(device_fault(e, "on the GPU")) if is_device_fault(e) else str(e)


class OutOfMemory(MemoryError):
    """Out of memory in one phase ('training', 'evaluation', 'copying the data to the device');
    `hint` says which setting to lower."""

    def __init__(self, message, phase, hint):
        super().__init__(" ".join(str(message).split()) or "MemoryError")
        self.phase, self.hint = phase, hint


_OOM_HINTS = {
    "training": lambda t: f"try a smaller train.batch_size (now {t['batch_size']}), "
                          f"e.g. train.batch_size={max(1, t['batch_size'] // 2)}",
    "evaluation": lambda t: f"try a smaller train.eval_batch_size (now {t['eval_batch_size']}), "
                            f"e.g. train.eval_batch_size={max(1, t['eval_batch_size'] // 2)}",
    "copying the data to the device": lambda t: "try data.limit_train=N or device=cpu",
}


def out_of_memory(e, phase, cfg):
    """The OutOfMemory for MemoryError `e` in `phase`, with the hint for the config's settings."""
    return OutOfMemory(str(e), phase, _OOM_HINTS[phase](cfg["train"]))


@contextlib.contextmanager
def quiet_fp():
    """No NumPy floating-point warnings (overflow, invalid value in matmul, ...) while inside.

    A diverging run would print them before its one-line error; the loss check after each
    epoch reports a non-finite loss instead. np.errstate covers this thread; the warnings
    filter covers any other thread (which does not inherit errstate).
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message=r"(overflow|invalid value|divide by zero|underflow) encountered")
        yield


def _now(text):
    return text() if callable(text) else text


@contextlib.contextmanager
def runtime(where):
    """Raise a ValueError from inside training or evaluation (a kernel's, say) as TrainingError.

    where: text (or a callable returning it) that starts the message. ConfigError and
    MemoryError pass through unchanged.
    """
    try:
        yield
    except ConfigError:
        raise
    except ValueError as e:
        raise TrainingError(f"{_now(where)}: {e}") from e


@contextlib.contextmanager
def guarded(where, phase, cfg, fault_note=None):
    """quiet_fp and runtime(where) together; a MemoryError becomes OutOfMemory naming `phase`
    (a callable is asked when the error happens: training or evaluation); a CUDA error
    becomes a DeviceFault, with `fault_note` (text or a callable: what was kept) in its line."""
    try:
        with quiet_fp(), runtime(where):
            yield
    except MemoryError as e:
        if isinstance(e, OutOfMemory):
            raise
        raise out_of_memory(e, _now(phase), cfg) from e
    except Exception as e:
        if not is_device_fault(e):
            raise
        raise device_fault(e, _now(where), _now(fault_note)) from e
