"""kernels/memory.py: with glibc, freed blocks stay in the process and the next allocation of
the same size reuses their pages (no page faults); a run sets it when it builds its network."""
import json
import subprocess
import sys
import textwrap

import pytest

from brainprop_np.kernels import memory

ALLOCATE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from brainprop_np.kernels import memory
    if sys.argv[1] == "keep":
        print(memory.keep_freed_memory())
    faults = []
    for _ in range(4):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(29 << 20, np.uint8)      # a conv step's im2col rows, then something larger
        del a
        b = np.ones(40 << 20, np.uint8)
        del b
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print(faults)
""")


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", ALLOCATE, mode], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_freed_blocks_are_reused_without_page_faults():
    lines = _faults("keep")
    if lines[0] != "True":
        pytest.skip("no glibc mallopt here")
    faults = json.loads(lines[1])
    assert max(faults[1:]) < 100, faults            # 69 MB of fresh pages would be ~17,000 faults


def test_setting_is_made_once_and_reported():
    first = memory.keep_freed_memory()
    assert memory.keep_freed_memory() is first and isinstance(first, bool)


def test_a_run_keeps_freed_memory(monkeypatch, tmp_path):
    from brainprop_np.run import setup
    calls = []
    monkeypatch.setattr(setup, "keep_freed_memory", lambda: calls.append(1))
    cfg = setup.as_config({"model": "dense", "device": "cpu", "data": {"name": "mnist_sample"}}, [])
    setup.build(cfg, (28, 28, 1), 10)
    assert calls == [1]


def test_an_older_glibc_refusing_1_gib_gets_32_mib(monkeypatch):
    taken = []

    def mallopt(param, value):
        ok = value <= 32 << 20
        taken.append((param, value, ok))
        return ok
    monkeypatch.setattr(memory, "_glibc_mallopt", lambda: mallopt)
    monkeypatch.setitem(memory._state, "set", None)
    assert memory.keep_freed_memory() is True
    assert [(p, v) for p, v, ok in taken if ok] == [(memory.M_MMAP_THRESHOLD, 32 << 20),
                                                    (memory.M_TRIM_THRESHOLD, 32 << 20)]


def test_no_glibc_leaves_malloc_alone(monkeypatch):
    monkeypatch.setattr(memory, "_glibc_mallopt", lambda: None)
    monkeypatch.setitem(memory._state, "set", None)
    assert memory.keep_freed_memory() is False
