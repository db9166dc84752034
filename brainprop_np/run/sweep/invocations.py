"""sweep.json's `invocations`: one entry per time the sweep command ran on a folder, and the
sweep's wall time summed over them (a sweep stopped and continued is one measurement).

An invocation's entry is written when it starts (`status: running`, or `finished` when
every run was) and replaced by its final state when it ends (`status` finished or
interrupted, the time it `finished`, `wall_seconds` = its end − its start). A driver
killed outright never writes its end: its time is not in the sum, nor is that of the
entries older than the newest KEEP.
"""
import time

KEEP = 50                       # the newest entries kept
STAMP = "%Y-%m-%d %H:%M:%S"     # the local-time format of `started` and `finished`


def record(old, entry):
    """old entries + entry, the entry replacing the one its invocation wrote at its start (the
    last entry, with the same `started` and no `finished`)."""
    old = list(old or [])
    if old and "finished" not in old[-1] and old[-1].get("started") == entry.get("started"):
        old = old[:-1]
    return (old + [entry])[-KEEP:]


def wall_seconds(entry):
    """An ended entry's wall time in seconds; None while it runs or when its end is unknown.
    Entries written before `wall_seconds` existed are read from `started` and `finished`."""
    if entry.get("wall_seconds") is not None:
        return float(entry["wall_seconds"])
    try:
        start, end = (time.mktime(time.strptime(entry[k], STAMP)) for k in ("started", "finished"))
    except (KeyError, TypeError, ValueError):
        return None
    return end - start


def total(entries):
    """(Σ wall seconds, number of ended invocations) over the entries."""
    walls = [w for w in map(wall_seconds, entries) if w is not None]
    return sum(walls), len(walls)


def duration_text(seconds):
    """3 h 52 min, 7 min 05 s, 12.3 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    return f"{m // 60} h {m % 60:02d} min"
