"""Where the tests find the workspace's real data: $BRAINPROP_DATA, else ../shared."""
import os
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
KERAS_WEIGHTS = SHARED / "keras_weights"


def dataset_roots():
    """Candidate data roots, in order: $BRAINPROP_DATA (when set), ../shared/datasets."""
    env = os.environ.get("BRAINPROP_DATA")
    return ([Path(env).expanduser()] if env else []) + [SHARED / "datasets"]


def mnist_root():
    """The first root whose mnist/ (or itself) holds the MNIST test files, else None."""
    for root in dataset_roots():
        for folder in (root / "mnist", root):
            if (folder / "t10k-images-idx3-ubyte.gz").is_file() and (folder / "t10k-labels-idx1-ubyte.gz").is_file():
                return str(root)
    return None
