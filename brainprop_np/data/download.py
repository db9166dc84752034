"""Download one file from a list of mirrors, verify its MD5, rename it into place.

Only urllib is used. The bytes go to a temporary file in the destination folder and are
renamed onto the official name only when the transfer is complete (Content-Length
honoured) and the checksum matches; on any failure the temporary file is deleted.
"downloading ..." is printed only once a server has answered (the connection is tried
with a short timeout, CONNECT_TIMEOUT), so an offline machine prints no progress-like
lines; the failure is one DataError line for the caller to report.
"""
import gzip
import hashlib
import http.client
import sys
import urllib.error
import urllib.request
import zlib

from ..files import atomic_path
from .errors import DataError

TIMEOUT = 60          # seconds, for each read once connected
CONNECT_TIMEOUT = 10  # seconds, for the connection (and the server's first answer)
CHUNK = 1 << 20       # bytes per read
VERBOSE = True        # one line on stderr per download


class _Failed(Exception):
    """One mirror did not give a verified file; the message says why (one line)."""


def _md5():
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # pragma: no cover (Python < 3.9)
        return hashlib.md5()


def md5_file(path):
    """MD5 hex digest of a file's bytes."""
    h = _md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def md5_gunzipped(path):
    """MD5 hex digest of a gzip file's decompressed bytes, or None if it is not valid gzip."""
    h = _md5()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()


def url_for(base, filename):
    """The URL of `filename` under the mirror `base` (a trailing '/' is optional)."""
    return base if base.endswith(filename) else base.rstrip("/") + "/" + filename


def _transfer(url, tmp, timeout, dest=None):
    """Copy `url` into `tmp`; return the MD5 of the bytes received. Raises _Failed.

    The connection gets min(CONNECT_TIMEOUT, timeout) seconds; each read `timeout`.
    """
    req = urllib.request.Request(url, headers={"User-Agent": "brainprop_np"})
    try:
        resp = urllib.request.urlopen(req, timeout=min(CONNECT_TIMEOUT, timeout))
    except urllib.error.HTTPError as e:
        raise _Failed(f"HTTP error {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise _Failed(f"unreachable ({reason})") from None
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:                   # connected: reads may wait longer
        sock.settimeout(timeout)
    if VERBOSE:
        print(f"brainprop_np: downloading {url} -> {dest or tmp}", file=sys.stderr, flush=True)
    h, n = _md5(), 0
    with resp, open(tmp, "wb") as f:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (http.client.HTTPException, OSError) as e:
                of = f" of {total}" if total is not None else ""
                raise _Failed(f"transfer interrupted after {n}{of} bytes ({type(e).__name__})") from None
            if not chunk:
                break
            f.write(chunk)
            h.update(chunk)
            n += len(chunk)
    if total is not None and n != total:
        raise _Failed(f"transfer interrupted: received {n} of {total} bytes")
    return h.hexdigest()


def _verify(tmp, got, md5, gunzip_md5):
    """Raise _Failed unless `got` (or the gunzipped bytes' MD5) is an accepted checksum."""
    if not md5 and not gunzip_md5:
        return
    if got in md5:
        return
    raw = md5_gunzipped(tmp) if gunzip_md5 else None
    if raw is not None and raw in gunzip_md5:
        return
    parts = ([f"md5 {' or '.join(md5)}"] if md5 else []) + \
        ([f"md5 of the gunzipped bytes {' or '.join(gunzip_md5)}"] if gunzip_md5 else [])
    got_txt = got + (f" (gunzipped: {raw})" if raw else "")
    raise _Failed(f"checksum mismatch: expected {' or '.join(parts)}, got md5 {got_txt}; "
                  "the download was deleted")


def fetch(filename, folder, mirrors, md5=(), gunzip_md5=(), hint="", timeout=None):
    """Download `filename` into `folder/filename` from the first mirror that serves it intact.

    mirrors: base URLs (the file's URL is base + filename) or full URLs ending in filename.
    md5: accepted MD5s of the file; gunzip_md5: accepted MD5s of its gunzipped bytes
    (either kind matching accepts the file). Returns the destination Path.
    Raises DataError naming the file, each URL tried and why it failed, then `hint`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / filename
    reasons = []
    for base in mirrors:
        url = url_for(base, filename)
        try:
            with atomic_path(dest) as tmp:
                got = _transfer(url, tmp, TIMEOUT if timeout is None else timeout, dest)
                _verify(tmp, got, tuple(md5), tuple(gunzip_md5))
            return dest
        except _Failed as e:
            reasons.append(f"{url}: {e}")
    if not reasons:
        reasons.append("no download URL is configured")
    raise DataError(f"cannot download {filename} into {folder}: {'; '.join(reasons)}. {hint}".strip())
