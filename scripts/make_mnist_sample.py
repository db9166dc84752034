"""Make brainprop_np/data/sample/mnist_sample.npz: the first 5,000 training and the first
1,000 test images of MNIST, with their labels.

    python scripts/make_mnist_sample.py [MNIST_FOLDER]

MNIST_FOLDER holds the four official gzipped IDX files (default ../shared/datasets/mnist).
The file holds x_train uint8 (5000, 28, 28, 1), y_train uint8 (5000,), x_test uint8
(1000, 28, 28, 1), y_test uint8 (1000,), written with np.savez_compressed.
"""
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from brainprop_np.data.mnist import MNIST_CLASSES, SAMPLE, read_idx_folder  # noqa: E402

N_TRAIN, N_TEST = 5000, 1000


def main(argv):
    src = Path(argv[1]) if len(argv) > 1 else REPO.parent / "shared" / "datasets" / "mnist"
    ds = read_idx_folder(src, "mnist", MNIST_CLASSES)
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(SAMPLE,
                        x_train=ds.x_train[:N_TRAIN], y_train=ds.y_train[:N_TRAIN].astype(np.uint8),
                        x_test=ds.x_test[:N_TEST], y_test=ds.y_test[:N_TEST].astype(np.uint8))
    print(f"wrote {SAMPLE} ({SAMPLE.stat().st_size / 1e6:.2f} MB) from {src}")


if __name__ == "__main__":
    main(sys.argv)
