"""`python -m brainprop_np COMMAND ...`: the console command `brainprop`."""
import sys

from brainprop_np.cli import main

if __name__ == "__main__":
    sys.exit(main())
