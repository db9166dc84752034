"""Where datasets live: `root` argument, else $BRAINPROP_DATA, else ~/.cache/brainprop_np."""
import os
from pathlib import Path

ENV_VAR = "BRAINPROP_DATA"


def default_root():
    """$BRAINPROP_DATA when set, else ~/.cache/brainprop_np (a Path; not created)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/brainprop_np").expanduser()


def candidate_folders(base, folders, other_folders=()):
    """Folders that may hold a dataset, in order of preference.

    `base/<name>` for each of the dataset's folder names, then `base` itself (a root that
    points straight at the files) unless `base` is named after another dataset (MNIST and
    Fashion-MNIST share file names, so `.../mnist` must not serve as Fashion-MNIST).
    """
    base = Path(base).expanduser()
    out = [base / f for f in folders]
    if base.name not in other_folders or base.name in folders:
        out.append(base)
    return out
