"""Time loading MNIST from a folder of the four official gzipped IDX files.

    python bench/load_mnist.py [FOLDER] [--repeat N]

FOLDER defaults to ../shared/datasets/mnist (relative to the repository root). Prints the
time of the first load and the best of N loads (target: under 2 s).
"""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from brainprop_np import data  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "mnist"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        ds = data.load("mnist", root=args.folder, download=False)
        times.append(time.perf_counter() - t0)
    print(f"{ds!r} from {args.folder}")
    print(f"load time: first {times[0]:.3f} s, best of {len(times)} {min(times):.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
