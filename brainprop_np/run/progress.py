"""Progress bars for training and evaluation (tqdm), drawn on a terminal's stderr.

    bar = Progress(n_batches, "epoch 3/500", stats=lambda: "loss 0.0123 reward 0.912")
    bar.update(images=128)     # after each batch
    bar.close()                # erases the bar (the epoch line follows)

The bar shows batches done, elapsed time, the ETA, images/s and whatever `stats`
returns (running loss and reward rate while training). `stats` is called at most once a
second, since it reads numbers from the device. Silent when `enabled` is False, or when
None and the stream is not a terminal.
"""
import sys
import time

MININTERVAL = 0.25   # seconds between redraws of a bar
STATS_EVERY = 1.0    # seconds between calls of `stats` (each reads numbers from the device)


class Progress:
    """One bar: `update(images=...)` after each batch, `close()` at the end."""

    def __init__(self, total, label="", stream=None, enabled=None, stats=None, initial=0, unit="batch"):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled, self.stats = bool(enabled), stats
        self.n, self.images = int(initial), 0
        self.t0 = self.last = time.perf_counter()
        self.bar = None
        if self.enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=max(int(total), 1), initial=self.n, desc=label, file=self.stream, unit=unit,
                            leave=False, dynamic_ncols=True, mininterval=MININTERVAL, smoothing=0.1)

    def update(self, n=1, images=0):
        self.n += n
        self.images += images
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last >= STATS_EVERY or self.n >= self.bar.total or self.n == 1:
            self.last = now
            parts = [self.stats()] if self.stats is not None else []
            if self.images:
                parts.append(f"{self.images / max(now - self.t0, 1e-9):,.0f} img/s")
            self.bar.set_postfix_str("  ".join(p for p in parts if p), refresh=False)
        self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
