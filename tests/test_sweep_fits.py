"""A sweep whose runs no node can hold: on a local Ray instance one line and exit 2 before any
run is submitted (they would wait forever); `fits` is the rule."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brainprop_np.run.sweep.cli import fits

ROOT = Path(__file__).resolve().parents[1]


def test_fits_needs_one_node_with_both():
    assert fits((1, 0), [(2, 0)]) and fits((2, 0.5), [(1, 1), (2, 1)])
    assert not fits((4, 0), [(2, 0), (2, 0)])               # CPUs are not added across nodes
    assert not fits((1, 1), [(16, 0)]) and not fits((1, 0), [])


def test_a_local_sweep_asking_more_than_the_machine_is_one_line(tmp_path):
    """In a process of its own: a Ray instance started and shut down in the test process would
    keep the next test module's ray.init from starting one."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[sweep])")
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "brainprop_np", "sweep", str(ROOT / "configs" / "mnist_dense.yaml"),
                           "--seeds", "1", "--cpus-per-run", "512", "data.limit_train=100", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path / "home")))
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert "--cpus-per-run 512" in err[0] and "no node of the local Ray instance holds a run" in err[0], err[0]
    assert "Traceback" not in proc.stderr and not out.exists()
