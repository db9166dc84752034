"""Write a file so that it appears complete or not at all."""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest):
    """Yield a temporary path beside `dest`; on success rename it onto `dest`.

    The temporary file lives in the same folder (so the rename is atomic) and is
    deleted when the block raises, so `dest` is never half-written.
    """
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
