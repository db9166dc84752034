"""The run folder: where a run writes, and its lock while a process trains in it. Every
file in it is written atomically (files.py), the lock file aside."""
import csv
import io
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:         # not on POSIX: runs are not locked
    fcntl = None

from ..files import atomic_open, write_bytes, write_json, write_text  # noqa: F401  (one helper, re-exported)
from .config import ConfigError


def write_csv(path, header, rows):
    """A CSV with `header` and one row per dict in `rows`; floats written with repr (exact)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([repr(row[k]) if isinstance(row[k], float) else row[k] for k in header])
    write_text(path, buf.getvalue())


def new_run_dir(name, out=None, base="runs"):
    """Create and return the run folder: `out`, else runs/<name>/<YYYYmmdd-HHMMSS>[-n]."""
    if out is not None:
        path = Path(out).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    parent = Path(base) / name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new run folder under {parent}")


def refuse_used_folder(out):
    """ConfigError when the folder named by --out already holds a run (its checkpoint.npz)."""
    if out is not None and (Path(out) / "checkpoint.npz").exists():
        raise ConfigError(f"--out {out} is not allowed: it already holds a run; continue it with "
                          f"--resume {out} or choose another folder")


LOCK_NAME = "run.lock"      # in the run folder; holds "pid N on host H" of the process training there


class FolderInUse(ConfigError):
    """Another process trains in this run folder (exit status 2, like any bad argument)."""


class RunLock:
    """An OS lock on a run folder while a process trains in it: `fcntl.flock` on
    FOLDER/run.lock, exclusive and non-blocking. The kernel drops it when the process ends,
    however it ends, so a killed run never leaves a stale lock; the file itself stays.

        with RunLock(folder) as lock:     # FolderInUse naming the other process, else held
            lock.claim()                  # write our pid and host (before writing anything else)

    The lock file is written in place (not through files.py): replacing it by a rename
    would give it a new inode, and a second process would lock that one instead. It is
    emptied again when the holder lets go; a process that only looks (a resume of a
    finished run) locks without claiming and changes nothing.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd = None
        self._claimed = False

    def __enter__(self):
        if fcntl is None:                       # no flock on this platform: no lock
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise FolderInUse(f"run folder {self.folder} is in use: {holder} is training in it "
                              f"(lock {self.path}); wait until it ends, or choose another folder") from None
        self._fd = fd
        return self

    def claim(self):
        """Write this process's pid and host into the lock file, so that a second process can name it."""
        if self._fd is not None:
            text = f"pid {os.getpid()} on host {socket.gethostname()}\n".encode()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text, 0)
            self._claimed = True

    def __exit__(self, *exc):
        if self._fd is not None:
            if self._claimed:                   # no stale name for the next holder to show
                os.ftruncate(self._fd, 0)
            os.close(self._fd)                  # closing the file releases the lock
            self._fd = None
        return False
