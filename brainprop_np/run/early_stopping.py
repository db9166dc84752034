"""Early stopping: Keras's EarlyStopping(monitor='val_accuracy', patience, min_delta).

An epoch improves when acc − min_delta > best, where acc is val_acc rounded to float32
(Keras's val_accuracy is a float32 turned into a Python float, so a gain of exactly
min_delta sometimes counts) and best is that rounded value of the last improving epoch
(not the maximum). After an improvement the wait counter is 0, otherwise it grows by
one; training stops once wait ≥ patience (patience null: never). This is independent of
the best weights (weights_best.npz: the first epoch with the highest val_acc).
"""
import numpy as np
from . import stop_reasons as R


class EarlyStopping:
    """The rule's state: `best` (float32-rounded val_acc of the last improving epoch) and `wait`."""

    def __init__(self, patience, min_delta, best=None, wait=0):
        self.patience, self.min_delta = patience, min_delta
        self.best = None if best is None else float(np.float32(best))   # a no-op for this version's checkpoints
        self.wait = int(wait)

    def update(self, val_acc):
        """Count one epoch's validation accuracy; True when the run should stop now."""
        acc = float(np.float32(val_acc))          # the comparison (in float64) is on the float32 value
        if self.best is None or acc - self.min_delta > self.best:
            self.best, self.wait = acc, 0
        else:
            self.wait += 1
        return self.stopped

    @property
    def stopped(self):
        """`patience` epochs have passed without a gain (never with patience null)."""
        return self.patience is not None and self.wait > 0 and self.wait >= self.patience

    def text(self):
        """The counter for the epoch line: 'es 2/45' (epochs without a gain / patience) or 'es off'."""
        return "es off" if self.patience is None else f"es {self.wait}/{self.patience}"

    def state(self):
        """What summary.json records under "early_stopping"."""
        return {"best": self.best, "wait": self.wait, "patience": self.patience, "min_delta": self.min_delta}


def stop_reason(stop, epochs_run, epochs):
    """Why a run stops before its next epoch: 'early_stopping', 'max_epochs', or None."""
    if stop.stopped:
        return R.EARLY_STOPPING
    if epochs_run >= epochs:
        return R.MAX_EPOCHS
    return None
