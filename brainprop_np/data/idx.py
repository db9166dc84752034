"""Gzipped IDX files (MNIST, Fashion-MNIST): one decompress, then np.frombuffer."""
import gzip
import zlib

import numpy as np

from .errors import DataError


def read_idx_gz(path, ndim):
    """The uint8 array stored in the gzipped IDX file `path`.

    ndim: the number of dimensions the file must declare (3 for images (N, H, W), 1 for
    labels (N,)). Checks the magic number 0x000008<ndim> (unsigned bytes) and that the
    declared sizes match the bytes present. Returns a writable uint8 array of that shape.
    Raises DataError naming `path` and what is wrong.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    if raw[:2] != b"\x1f\x8b":
        raise DataError(f"{path}: not a gzip file (expected a gzipped IDX file)")
    try:
        data = gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (the compressed stream ends early); "
                        "delete it and download it again") from None
    except (OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip file ({e})") from None
    head = 4 + 4 * ndim
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != ndim:
        raise DataError(f"{path}: wrong magic number 0x{data[:4].hex()}, expected 0x000008{ndim:02x} "
                        f"(IDX of unsigned bytes with {ndim} dimension{'s' * (ndim > 1)})")
    if len(data) < head:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, expected {head})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - head != size:
        raise DataError(f"{path}: the header declares {'x'.join(map(str, dims))} = {size} bytes of data "
                        f"but the file holds {len(data) - head}")
    return np.frombuffer(data, np.uint8, size, head).reshape(dims).copy()
