"""A sweep whose runs no node can hold: on a local Ray instance one line and exit 2 before any
run is submitted (they would wait forever); `fits` is the rule."""
from pathlib import Path

import pytest

from brainprop_np.run.sweep.cli import fits

ROOT = Path(__file__).resolve().parents[1]


def test_fits_needs_one_node_with_both():
    assert fits((1, 0), [(2, 0)]) and fits((2, 0.5), [(1, 1), (2, 1)])
    assert not fits((4, 0), [(2, 0), (2, 0)])               # CPUs are not added across nodes
    assert not fits((1, 1), [(16, 0)]) and not fits((1, 0), [])


def test_a_local_sweep_asking_more_than_the_machine_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[sweep])")
    import ray
    from brainprop_np.run import sweep
    if ray.is_initialized():                                # this test needs its own local instance
        ray.shutdown()
    out = tmp_path / "sweep"
    code = sweep.main([str(ROOT / "configs" / "mnist_dense.yaml"), "--seeds", "1", "--cpus-per-run", "512",
                       "data.limit_train=100", "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1, err
    assert "--cpus-per-run 512" in err[0] and "no node of the local Ray instance holds a run" in err[0], err[0]
    assert not ray.is_initialized() and not out.exists()
