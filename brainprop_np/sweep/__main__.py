"""python -m brainprop_np.sweep ... (see brainprop_np/sweep/__init__.py)."""
import os
import sys

# as run.py: OpenBLAS's idle threads must not spin against the driver (set before NumPy loads)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from . import main  # noqa: E402

sys.exit(main())
