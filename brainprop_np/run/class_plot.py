"""Per-class learning curves: a heat map of class × epoch accuracy per run, and the staircase.

    brainprop plot --classes RUN_DIR [RUN_DIR ...] [--threshold 0.5] [--out classes.png]

Top row: one heat map per run, side by side (e.g. BrainProp beside EBP): the validation
accuracy of each class (rows) after each epoch (columns), 0 to 1, from per_class.csv; a
red ring marks the epoch at which each class first reaches the threshold. Bottom: the
staircase, the number of classes that have reached it against epochs, one line per run.
Runs are labelled as in the curves plot (plot.run_labels). A sweep draws the same figure
of its cells' means (sweep/classes.py).
"""
import textwrap

import numpy as np

from .figures import epoch_axes, new_figure, save_png
from .per_class import first_passes, read_per_class


def class_grid(epochs, acc):
    """(C, E_max) accuracies with class c in row c and epoch e in column e − 1 (nan where unmeasured)."""
    n = int(epochs.max()) if len(epochs) else 0
    grid = np.full((acc.shape[1], n), np.nan)
    grid[:, epochs - 1] = acc.T
    return grid


def draw_heatmap(ax, grid, first, title):
    """grid: (C, E) accuracies; first: per class the (mean) first epoch at the threshold, or None."""
    n_classes, n_epochs = grid.shape
    im = ax.imshow(grid, aspect="auto", origin="upper", cmap="viridis", vmin=0.0, vmax=1.0,
                   interpolation="nearest", extent=(0.5, n_epochs + 0.5, n_classes - 0.5, -0.5))
    marks = [(f, c) for c, f in enumerate(first) if f is not None]
    if marks:
        ax.plot([m[0] for m in marks], [m[1] for m in marks], "o", mfc="none", mec="red", mew=1.5, ms=6)
    epoch_axes(ax, "class")
    ax.grid(False)
    if n_classes <= 20:
        ax.set_yticks(range(n_classes))
    ax.set_title(textwrap.fill(title, 44), fontsize=9)        # a long run label wraps, not overlaps
    return im


def staircase(first, n_epochs):
    """(epochs 1..E, number of classes whose first epoch at the threshold is <= each epoch)."""
    epochs = np.arange(1, n_epochs + 1)
    reached = np.array([f for f in first if f is not None], dtype=float)
    return epochs, (reached[None, :] <= epochs[:, None]).sum(axis=1)


def draw_figure(panels, threshold, out, what="per-class validation accuracy"):
    """panels: [(title, grid (C, E), first)]: the heat maps side by side, the staircases below."""
    n = len(panels)
    fig = new_figure((1.2 + 3.6 * n, 6.0))
    gs = fig.add_gridspec(2, n + 1, height_ratios=(3, 1.4), width_ratios=[1] * n + [0.06])
    im = None
    for i, (title, grid, first) in enumerate(panels):
        im = draw_heatmap(fig.add_subplot(gs[0, i]), grid, first, title)
    fig.colorbar(im, cax=fig.add_subplot(gs[0, n]), label="validation accuracy of the class")
    ax = fig.add_subplot(gs[1, :n])
    for i, (title, grid, first) in enumerate(panels):
        ep, count = staircase(first, grid.shape[1])
        ax.step(ep, count, where="post", color=f"C{i % 10}", label=title,
                marker="o" if len(ep) == 1 else None)           # one epoch: a dot, not an invisible step
    epoch_axes(ax, f"classes ≥ {threshold:g}")
    n_max = max(grid.shape[0] for _, grid, _ in panels)
    ax.set_ylim(-0.3, n_max + 0.3)
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{what} (ring: first epoch ≥ {threshold:g})", fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def plot_classes(run_dirs, out, threshold=0.5):
    """Draw the per-class figure of several run folders into `out` (PNG)."""
    from .plot import run_labels
    panels = []
    for run_dir, label in zip(run_dirs, run_labels(run_dirs)):
        epochs, acc = read_per_class(run_dir)
        if not len(epochs):
            raise ValueError(f"{run_dir}: per_class.csv has no epochs yet")
        panels.append((label, class_grid(epochs, acc), first_passes(epochs, acc, threshold)))
    return draw_figure(panels, threshold, out)
