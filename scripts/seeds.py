"""Superseded by the sweep on Ray; kept as a thin wrapper so that old commands still work.

    python scripts/seeds.py CONFIG --seeds 1-10 [key=value ...] [--out DIR]
    == python -m brainprop_np.sweep CONFIG --seeds 1-10 [key=value ...] [--out DIR]

Every option of the sweep passes through. Run folders are DIR/<config>/default/seed<k>
(the sweep's layout). See docs/sweeps.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import brainprop_np  # noqa: E402,F401  (first: sets the BLAS environment before NumPy loads)

if __name__ == "__main__":
    from brainprop_np.run.sweep import main
    sys.exit(main(sys.argv[1:]))
