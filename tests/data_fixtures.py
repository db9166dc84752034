"""Small files in the official dataset formats, and a local HTTP server, for the data tests.

Every writer returns the arrays it wrote, so tests compare what `load` returns with
exactly what went into the files.
"""
import contextlib
import gzip
import http.server
import io
import pickle
import struct
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)
def idx_bytes(a):
    """The IDX encoding of a uint8 array: magic 0x000008<ndim>, big-endian dims, data."""
    a = np.asarray(a, np.uint8)
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx_gz(path, a):
    Path(path).write_bytes(gzip.compress(idx_bytes(a)))


def make_idx_folder(folder, seed=0, n_train=30, n_test=12, n_classes=10):
    """Write the four gzipped IDX files; return (x_train (N, 28, 28), y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              rng.integers(0, n_classes, n_train).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              rng.integers(0, n_classes, n_test).astype(np.uint8))
    for name, a in zip(IDX_FILES, arrays):
        write_idx_gz(folder / name, a)
    return arrays


# ---------------------------------------------------------------- CIFAR python tarballs
CIFAR10_MEMBERS = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_rows(rng, n):
    """Random CIFAR data rows: uint8 (n, 3072), channel-first (1024 R, 1024 G, 1024 B)."""
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def rows_to_images(rows):
    """Expected (n, 32, 32, 3) images written index by index from the row layout."""
    r, c, ch = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return rows[:, ch * 1024 + r * 32 + c]


def _add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _pickle(obj):
    return pickle.dumps(obj, protocol=2)


def make_cifar10_tar(path, seed=0, n=6, skip=(), extra=None):
    """Write cifar-10-python.tar.gz (6 batches of n images); return (rows_train, y_train,
    rows_test, y_test, label_names). Members in `skip` are left out; `extra` {member: bytes}
    replaces or adds members."""
    rng = np.random.default_rng(seed)
    names = [f"class{i}" for i in range(10)]
    batches = {m: (cifar_rows(rng, n), rng.integers(0, 10, n).tolist()) for m in CIFAR10_MEMBERS}
    members = {m: _pickle({b"batch_label": m.encode(), b"labels": y, b"data": x,
                           b"filenames": [f"img{i}.png".encode() for i in range(n)]})
               for m, (x, y) in batches.items()}
    members["batches.meta"] = _pickle({b"label_names": [s.encode() for s in names],
                                       b"num_cases_per_batch": n, b"num_vis": 3072})
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tf:
        for m, data in members.items():
            if m not in skip:
                _add(tf, f"cifar-10-batches-py/{m}", data)
    train = CIFAR10_MEMBERS[:5]
    return (np.concatenate([batches[m][0] for m in train]), np.concatenate([batches[m][1] for m in train]),
            batches["test_batch"][0], np.array(batches["test_batch"][1]), names)


def make_cifar100_tar(path, seed=0, n_train=10, n_test=4, skip=()):
    """Write cifar-100-python.tar.gz; return dict of rows/fine/coarse arrays and names."""
    rng = np.random.default_rng(seed)
    out = {"fine_names": [f"fine{i}" for i in range(100)], "coarse_names": [f"coarse{i}" for i in range(20)]}
    members = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rows, fine, coarse = cifar_rows(rng, n), rng.integers(0, 100, n), rng.integers(0, 20, n)
        out.update({f"rows_{split}": rows, f"fine_{split}": fine, f"coarse_{split}": coarse})
        members[split] = _pickle({b"filenames": [b"x.png"] * n, b"batch_label": split.encode(),
                                  b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist(),
                                  b"data": rows})
    members["meta"] = _pickle({b"fine_label_names": [s.encode() for s in out["fine_names"]],
                               b"coarse_label_names": [s.encode() for s in out["coarse_names"]]})
    with tarfile.open(path, "w:gz") as tf:
        for m, data in members.items():
            if m not in skip:
                _add(tf, f"cifar-100-python/{m}", data)
    return out


# ---------------------------------------------------------------- Tiny ImageNet
def jpeg_bytes(a, quality=90):
    """JPEG bytes of a uint8 (H, W, 3) RGB or (H, W) greyscale image."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def pillow_rgb(data):
    """What Pillow decodes from JPEG bytes, as RGB uint8 (H, W, 3): the expected pixels."""
    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def tiny_members(seed=0, wnids=("n03000000", "n01000000", "n02000000"), per_class=2, n_val=5,
                 annotations=None):
    """The files of a small Tiny ImageNet tree {relative path: bytes} and the expected arrays.

    wnids.txt deliberately lists classes out of sorted order (it fixes the label order);
    the second training image of the first class and the first val image are greyscale
    JPEGs. Expected pixels are Pillow's decoding of the same bytes (exact comparison).
    """
    rng = np.random.default_rng(seed)
    files = {"wnids.txt": ("\n".join(wnids) + "\n").encode(),
             "words.txt": "".join(f"{w}\tname of {w}, alias\n" for w in wnids + ("n09999999",)).encode()}
    x_train, y_train = [], []
    for label, w in enumerate(wnids):
        boxes = []
        for k in range(per_class):
            grey = label == 0 and k == 1
            img = rng.integers(0, 256, (64, 64) if grey else (64, 64, 3), dtype=np.uint8)
            data = jpeg_bytes(img)
            files[f"train/{w}/images/{w}_{k}.JPEG"] = data
            boxes.append(f"{w}_{k}.JPEG\t0\t0\t63\t63\n")
            x_train.append(pillow_rgb(data))
            y_train.append(label)
        files[f"train/{w}/{w}_boxes.txt"] = "".join(boxes).encode()
    x_val, y_val, lines = [], [], []
    for k in range(n_val):
        label = int(rng.integers(0, len(wnids)))
        img = rng.integers(0, 256, (64, 64) if k == 0 else (64, 64, 3), dtype=np.uint8)
        data = jpeg_bytes(img)
        files[f"val/images/val_{k}.JPEG"] = data
        lines.append(f"val_{k}.JPEG\t{wnids[label]}\t1\t2\t60\t61\n")
        x_val.append(pillow_rgb(data))
        y_val.append(label)
    files["val/val_annotations.txt"] = ("".join(lines) if annotations is None else annotations).encode()
    files["test/images/test_0.JPEG"] = jpeg_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    expected = {"x_train": np.stack(x_train), "y_train": np.array(y_train), "x_test": np.stack(x_val),
                "y_test": np.array(y_val), "classes": [f"name of {w}, alias" for w in wnids],
                "wnids": list(wnids)}
    return files, expected


def write_tiny_zip(path, files):
    """Write the tree under tiny-imagenet-200/ in a zip, as the official archive does."""
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"tiny-imagenet-200/{rel}", data)


def write_tiny_folder(folder, files):
    for rel, data in files.items():
        p = Path(folder) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


# ---------------------------------------------------------------- a local HTTP server
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        srv.requests.append(self.path)
        name = self.path.lstrip("/")
        if name in srv.short:  # declare the full length, send a part, then hang up
            data = srv.short[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if name not in srv.files:
            self.send_error(404, "not found")
            return
        data = srv.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def local_server(files=None, short=None):
    """Serve {name: bytes} at http://127.0.0.1:<port>/<name>; names in `short` are cut off
    half way (Content-Length says more). Yields the server: .url (base URL), .requests."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.short, srv.requests = dict(files or {}), dict(short or {}), []
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join()
