"""The run folder: where a run writes, and atomic writes (temporary name, then os.replace).

Every file of a run folder is written to a temporary file in the same folder and renamed
onto its final name only when complete, so a crash or Ctrl-C leaves either the previous
version or the new one, never a half-written file.
"""
import contextlib
import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


_MODE = 0o666 & ~_umask()   # what open() would give a new file


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside `path` for writing; on success rename it onto `path`.

    When the block raises, the temporary file is deleted and `path` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _MODE)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_bytes(path, data):
    with atomic_open(path, "wb") as f:
        f.write(data)


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
