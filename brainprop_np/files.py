"""Atomic writes: a file appears complete or not at all (temporary name, fsync, os.replace).

Every file this package writes (run folders, weights, checkpoints, downloads, caches) goes
through here, so a crash or Ctrl-C leaves either the previous version or the new one,
never a half-written file.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


_MODE = 0o666 & ~_umask()   # what open() would give a new file


@contextlib.contextmanager
def atomic_path(dest):
    """Yield a temporary path beside `dest` for a writer that takes a path; on success
    fsync it and rename it onto `dest`. When the block raises, `dest` is left untouched."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, _MODE)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside `path` for writing; on success fsync and rename it onto `path`."""
    with atomic_path(path) as tmp:
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **text) as f:
            yield f


def write_bytes(path, data):
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path, text):
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")
