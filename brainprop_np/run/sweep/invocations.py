"""sweep.json's `invocations`: one entry per time the sweep command ran on a folder, and the
sweep's wall time summed over them (a sweep stopped and continued is one measurement).

An invocation's entry is written when it starts (`status: running`, or `finished` when
every run was), rewritten with its time so far (`seen_seconds`) at every progress line
while runs are in flight (at least every HEARTBEAT_S of cli.py), and replaced by its final
state when it ends (`status` finished or interrupted, the time it `finished`,
`wall_seconds` = its end − its start). A driver killed outright never writes its end: its
time counts to its last progress line. Entries older than the newest KEEP are not in the sum.
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
    """An entry's wall time in seconds: an ended entry's whole time (entries written before
    `wall_seconds` existed are read from `started` and `finished`); for one without an end
    (running, or its driver was killed) its `seen_seconds`; None when it has neither."""
    if entry.get("wall_seconds") is not None:
        return float(entry["wall_seconds"])
    if "finished" not in entry:
        return None if entry.get("seen_seconds") is None else float(entry["seen_seconds"])
    try:
        start, end = (time.mktime(time.strptime(entry[k], STAMP)) for k in ("started", "finished"))
    except (KeyError, TypeError, ValueError):
        return None
    return end - start


def total(entries):
    """(Σ wall seconds, how many entries it sums, how many have no time and are left out). A start
    entry that a later entry of the same invocation (same `started`) ended is not counted: sweeps
    written before entries were replaced kept both."""
    ended = {e.get("started") for e in entries if "finished" in e}
    walls = [wall_seconds(e) for e in entries if "finished" in e or e.get("started") not in ended]
    timed = [w for w in walls if w is not None]
    return sum(timed), len(timed), len(walls) - len(timed)


def duration_text(seconds):
    """3 h 52 min, 7 min 05 s, 12.3 s."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    return f"{m // 60} h {m % 60:02d} min"
