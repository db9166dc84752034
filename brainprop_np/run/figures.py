"""The one figure set-up of the package, and accuracy.png.

    fig = new_figure((6.4, 4.0))      # a matplotlib Figure, no pyplot (no GUI backend touched)
    save_png(fig, path)               # its PNG bytes, written atomically (files.py)

Every figure (accuracy.png, brainprop plot, a sweep's curves.png, the feedback figures
of explain) is made here; without matplotlib `new_figure` raises one RuntimeError line
that says how to install it.
"""
import io

from ..files import write_bytes

INSTALL_HINT = "figures need matplotlib, which is not installed; install it with: pip install matplotlib"


def require_figure():
    """matplotlib's Figure class (no pyplot, no GUI), or a one-line error saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    return Figure


def new_figure(figsize, dpi=100):
    """A Figure of figsize inches (width, height) at dpi: (100·w × 100·h) pixels by default."""
    return require_figure()(figsize=figsize, dpi=dpi)


def save_png(fig, path):
    """Write the figure as PNG to `path`, atomically (a crash leaves the old file or none)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes(path, buf.getvalue())
    return path


def epoch_axes(ax, ylabel, xlabel="epoch"):
    """Label an axes whose x is the epoch: whole-number ticks (one epoch: half an epoch either
    side, not 0.945 … 1.055), a light grid. Call it once the data are drawn."""
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))    # epochs are whole numbers
    lo, hi = ax.get_xlim()
    if hi - lo < 1:
        ax.set_xlim((lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def plot_accuracy(history, best_epoch, path, title=""):
    """Draw the curves of `history` (rows with epoch, train_acc, val_acc) into `path`.

    Returns False (and writes nothing) when matplotlib is not installed.
    """
    try:
        fig = new_figure((6.4, 4.0))
    except RuntimeError:
        return False
    epochs = [r["epoch"] for r in history]
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(epochs, [r["train_acc"] for r in history], label="train (chosen actions)")
    ax.plot(epochs, [r["val_acc"] for r in history], label="validation")
    best = [r for r in history if r["epoch"] == best_epoch]
    if best:
        ax.plot([best_epoch], [best[0]["val_acc"]], "o", color="black",
                label=f"best: epoch {best_epoch}, {best[0]['val_acc']:.4f}")
        ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1)
    epoch_axes(ax, "accuracy")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_png(fig, path)
    return True
