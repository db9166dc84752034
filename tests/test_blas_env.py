"""The threads' environment (BLAS_ENV) is set in one place, brainprop_np/__init__.py (BLAS_ENV), before NumPy
loads, for every entry point; an existing value wins; Ray workers of a sweep get the same."""
import os
import subprocess
import sys
from pathlib import Path

import brainprop_np

ROOT = Path(__file__).resolve().parents[1]


def _env_after(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in brainprop_np.BLAS_ENV}
    base.update(env, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_importing_the_package_sets_the_variable_before_numpy():
    code = ("import sys, os; import brainprop_np; "
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")
    assert _env_after(code) == brainprop_np.BLAS_ENV["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_numba_workers_sleep_when_idle():
    """OMP_WAIT_POLICY=PASSIVE is set before numba can start its OpenMP workers, whatever is
    imported first (threads.configure starts them before the fast kernels load)."""
    code = ("import os, brainprop_np; from brainprop_np.kernels import threads; threads.configure(1); "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    assert _env_after(code) == brainprop_np.BLAS_ENV["OMP_WAIT_POLICY"] == "PASSIVE"


def test_an_existing_value_wins():
    code = "import os, brainprop_np; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    assert _env_after(code, OPENBLAS_THREAD_TIMEOUT="9") == "9"


def test_entry_points_import_the_package_before_numpy():
    """run.py, scripts/seeds.py and the benchmarks import brainprop_np before NumPy."""
    for rel in ("run.py", "scripts/seeds.py", "bench/train_step.py", "bench/vs_pytorch.py", "bench/step_vs_commit.py",
                "bench/gpu_epoch.py", "bench/load_mnist.py"):
        lines = (ROOT / rel).read_text(encoding="utf-8").splitlines()
        imports = [i for i, l in enumerate(lines) if l.startswith(("import ", "from "))]
        first_bp = next(i for i in imports if "brainprop_np" in lines[i])
        numpy = [i for i in imports if lines[i].startswith(("import numpy", "from numpy"))]
        assert not numpy or first_bp < numpy[0], rel
        assert "OPENBLAS_THREAD_TIMEOUT\", \"" not in "\n".join(lines), rel


def test_ray_workers_get_the_same_value():
    from brainprop_np.run.sweep.cli import _runtime_env
    env = _runtime_env(1, 0)["env_vars"]
    assert all(env[k] == v for k, v in brainprop_np.BLAS_ENV.items())
