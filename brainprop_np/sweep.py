"""`python -m brainprop_np.sweep CONFIG ... --seeds 1-10`: the sweep command (see run/sweep/__init__.py)."""
import sys

from .run.sweep import main

if __name__ == "__main__":
    sys.exit(main())
