"""Mini-batches on the device that trains, scaled from uint8 to float per batch."""
import numbers

import numpy as np

from ..backend import check_dtype, get_backend, to_host


class BatchIterator:
    """A uint8 dataset resident on one backend, served as float mini-batches.

    x: uint8 (N, H, W, C) host (or device) array; y: integer (N,) labels; backend: a Backend
    or a device name ('cpu', 'gpu', 'auto'); dtype: 'float32' or 'float64'.
    The uint8 images and int64 labels move to the backend once (on the GPU they stay in
    device memory and batches are gathered there); `epoch` yields float batches.

    Contract: a yielded x is valid until the generator that yielded it advances or is
    closed. On the CPU it is a view of a float buffer that the next batch overwrites (one
    buffer per batch size, reused by later epochs, never shared by two live generators);
    copy it to keep it longer. A yielded y is never overwritten.
    """

    def __init__(self, x, y, backend="cpu", dtype="float32"):
        self.backend = get_backend(backend)
        self.dtype = check_dtype(dtype)
        if x.dtype != np.uint8 or x.ndim < 2:
            raise ValueError(f"x is {x.dtype} {x.shape}; BatchIterator takes uint8 images (N, H, W, C)")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y is {y.dtype} {y.shape}; BatchIterator takes integer labels ({len(x)},)")
        self.x = self.backend.asarray(x)               # uint8 on the backend (no copy on the CPU)
        self.y = self.backend.asarray(y, np.int64)     # int64 on the backend
        self.n = len(x)
        self._free = {}                                # batch size -> [float buffers] (CPU only)

    def __len__(self):
        return self.n

    def n_batches(self, batch_size):
        """Number of batches per epoch: ceil(n / batch_size) (the last may be partial)."""
        return -(-self.n // _batch_size(batch_size))

    def _order(self, perm):
        """Validated host permutation uploaded to the backend (None keeps the stored order)."""
        if perm is None:
            return None, self.n
        p = to_host(perm)
        if p.ndim != 1 or not np.issubdtype(p.dtype, np.integer):
            raise ValueError(f"perm is {p.dtype} {p.shape}; "
                             "use a 1-D integer array such as rng.permutation(n)")
        if len(p) and (p.min() < 0 or p.max() >= self.n):
            raise ValueError(f"perm holds indices {int(p.min())}..{int(p.max())}, outside 0..{self.n - 1}")
        return self.backend.asarray(p), len(p)

    def epoch(self, batch_size, perm=None):
        """Yield (x, y) batches: x float (B, H, W, C) = images / 255 in `dtype`, y int64 (B,).

        perm: a host permutation of the indices (e.g. rng.permutation(n)) giving the order;
        None keeps the stored order (for evaluation). Every batch has batch_size images
        except the last, which keeps the remainder. x is valid until the next batch.
        """
        b = _batch_size(batch_size)
        idx, m = self._order(perm)
        cpu = self.backend.name == "numpy"
        buf = None
        if cpu:
            pool = self._free.setdefault(b, [])
            buf = pool.pop() if pool else np.empty((b,) + self.x.shape[1:], self.dtype)
        try:
            for i in range(0, m, b):
                sel = slice(i, min(i + b, m)) if idx is None else idx[i:i + b]
                xb, yb = self.x[sel], self.y[sel]
                if cpu:
                    out = buf[:len(xb)]
                    np.divide(xb, self.dtype.type(255), out=out, dtype=self.dtype)
                else:
                    out = xb.astype(self.dtype)
                    out /= self.dtype.type(255)
                yield out, yb
        finally:
            if cpu:
                self._free[b].append(buf)


def _batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed; use an integer >= 1")
    return int(batch_size)
