"""A small progress bar for one epoch, drawn on a terminal's stderr (silent otherwise)."""
import sys
import time


class Progress:
    """`Progress(total, label)`; `update(n)` after each batch; `close()` erases the bar.

    Draws only when `stream` is a terminal (or `enabled=True`), at most ~10 times a second.
    """

    def __init__(self, total, label="", stream=None, enabled=None, width=30):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled, self.total, self.label, self.width = enabled, max(int(total), 1), label, width
        self.n, self.t0, self.last = 0, time.perf_counter(), 0.0

    def update(self, n=1):
        self.n += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and self.n < self.total:
            return
        self.last = now
        frac = min(self.n / self.total, 1.0)
        done = int(frac * self.width)
        elapsed = now - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * done + "." * (self.width - done)
        self.stream.write(f"\r{self.label} [{bar}] {self.n}/{self.total} {elapsed:6.1f}s eta {eta:5.1f}s ")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + self.width + 48) + "\r")
            self.stream.flush()
