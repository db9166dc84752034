#!/usr/bin/env python3
"""Command line of brainprop_np (a thin wrapper of the console command `brainprop train`).

    python run.py CONFIG.yaml [key.path=value ...] [--out DIR] [--init-from WEIGHTS] [--print-config]
    python run.py --resume RUN_DIR [key.path=value ...]
    python run.py CONFIG.yaml --load WEIGHTS            (or: python run.py --load RUN_DIR/weights_best.npz)
    python run.py CONFIG.yaml --explain [--load WEIGHTS | --train-steps N] [--figures DIR]

Exit status: 0 done; 1 runtime failure; 2 bad config, key, value or command line; 130
interrupted (see brainprop_np/cli.py).
"""
import sys

import brainprop_np  # noqa: F401  (first: sets the BLAS environment before NumPy loads)


def main(argv=None):
    from brainprop_np.cli import run_main
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main())
