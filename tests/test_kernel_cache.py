"""The fast set's numba cache is dropped when any of its sources changes (kernels/fast/jit.py):
numba checks a cached kernel against its own file only, and kernels inline helpers of others."""
import os
from pathlib import Path

import pytest

jit = pytest.importorskip("brainprop_np.kernels.fast.jit")


def _touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"x")


def test_stale_cache_of_the_set_is_dropped_and_the_rest_kept(tmp_path):
    ours = ["conv_direct._forward-60.py311.nbi", "conv_direct._forward-60.py311.1.nbc",
            "conv_direct_block._tags_of_fb_in_serial-98.py311.nbi"]
    others = ["elsewhere._f-3.py311.nbi", "conv_direct.cpython-311.pyc", "notes.txt"]
    _touch(tmp_path, *ours, *others)
    assert jit.drop_stale_cache(tmp_path, "d1", {"conv_direct", "conv_direct_block"}) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + [jit.STAMP])
    assert (tmp_path / jit.STAMP).read_text() == "d1"
    _touch(tmp_path, *ours)                                   # compiled again from these sources
    assert jit.drop_stale_cache(tmp_path, "d1", {"conv_direct"}) == 0
    assert all((tmp_path / n).exists() for n in ours)
    assert jit.drop_stale_cache(tmp_path, "d2", {"conv_direct"}) == 2     # a source changed
    assert (tmp_path / jit.STAMP).read_text() == "d2" and not list(tmp_path.glob("*.tmp"))


def test_digest_follows_every_source_of_the_set(tmp_path):
    for path in jit.HERE.glob("*.py"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    before = jit.sources_digest(tmp_path)
    assert before == jit.sources_digest(jit.HERE)
    helper = tmp_path / "relu_batchnorm_lean.py"               # a file whose helpers others inline
    helper.write_text(helper.read_text() + "\n# edited\n")
    assert jit.sources_digest(tmp_path) != before


def test_a_kernels_cache_folder_is_checked_and_stamped():
    from brainprop_np.kernels.fast import conv_direct
    f = conv_direct._forward.parallel
    folder = f._cache._cache_path                        # numba's internals that the check reads
    jit._check_cache_once(f)
    assert str(folder) in jit._compile["checked"] and os.path.isdir(folder)
    assert Path(folder, jit.STAMP).read_text() == jit.sources_digest()
