"""The run folder: where a run writes. Every file in it is written atomically (files.py)."""
import csv
import io
import time
from pathlib import Path

from ..files import atomic_open, write_bytes, write_json, write_text  # noqa: F401  (one helper, re-exported)


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
