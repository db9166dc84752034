"""Read files of an extracted dataset tree from a zip archive or a folder, alike.

Paths are relative to the tree's top (e.g. 'train/n01443537/images/x.JPEG'); the zip may
hold them under a top folder (e.g. 'tiny-imagenet-200/'), found from a marker file.
"""
import zipfile
import zlib
from pathlib import Path

from .errors import DataError


class ZipTree:
    """The files of `path` (a .zip) under the folder holding `marker`."""

    def __init__(self, path, top, marker):
        self.path = Path(path)
        try:
            self.zf = zipfile.ZipFile(self.path)
            names = self.zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"{self.path}: not a valid zip file ({e})") from None
        if f"{top}/{marker}" in names:
            self.prefix = top + "/"
        elif marker in names:
            self.prefix = ""
        else:
            raise DataError(f"{self.path}: {top}/{marker} is missing from the archive")
        self._dirs = {}
        n = len(self.prefix)
        for name in names:
            if name.startswith(self.prefix) and not name.endswith("/"):
                d, _, f = name[n:].rpartition("/")
                self._dirs.setdefault(d, []).append(f)

    def where(self, rel):
        """How messages name the file `rel`."""
        return f"{self.path}:{self.prefix}{rel}"

    def exists(self, rel):
        d, _, f = rel.rpartition("/")
        return f in self._dirs.get(d, ())

    def files(self, rel_dir):
        """Names of the files directly in `rel_dir` (unsorted; [] when absent)."""
        return list(self._dirs.get(rel_dir, ()))

    def subdirs(self, rel_dir):
        """Names of the folders directly in `rel_dir` that hold files somewhere below."""
        p = rel_dir + "/"
        return sorted({d[len(p):].split("/")[0] for d in self._dirs if d.startswith(p)})

    def read(self, rel):
        try:
            return self.zf.read(self.prefix + rel)
        except KeyError:
            raise DataError(f"{self.where(rel)}: missing from the archive") from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{self.where(rel)}: corrupt member ({e})") from None

    def close(self):
        self.zf.close()


class DirTree:
    """The files under the folder `path`."""

    def __init__(self, path):
        self.path = Path(path)

    def where(self, rel):
        return str(self.path / rel)

    def exists(self, rel):
        return (self.path / rel).is_file()

    def files(self, rel_dir):
        d = self.path / rel_dir
        return [p.name for p in d.iterdir() if p.is_file()] if d.is_dir() else []

    def subdirs(self, rel_dir):
        d = self.path / rel_dir
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def read(self, rel):
        try:
            return (self.path / rel).read_bytes()
        except OSError as e:
            raise DataError(f"{self.where(rel)}: cannot be read ({e.strerror or e})") from None

    def close(self):
        pass
