#!/usr/bin/env python3
"""Command line of brainprop_np (a thin wrapper of the console command `brainprop train`).

    python run.py CONFIG.yaml [key.path=value ...] [--out DIR] [--init-from WEIGHTS] [--print-config]
    python run.py --resume RUN_DIR [key.path=value ...]
    python run.py CONFIG.yaml --load WEIGHTS            (or: python run.py --load RUN_DIR/weights_best.npz)
    python run.py CONFIG.yaml --explain [--load WEIGHTS | --train-steps N] [--figures DIR]

Exit status: 0 done; 1 runtime failure; 2 bad config, key, value or command line; 130
interrupted (see brainprop_np/run/cli.py).
"""
import os
import sys

# OpenBLAS's idle threads otherwise spin for ~0.1 s after each GEMM and slow down the
# element-wise work that brainprop_np spreads over the cores (kernels/threads.py); this
# must be set before NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def main(argv=None):
    from brainprop_np.run.cli import run_main
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main())
