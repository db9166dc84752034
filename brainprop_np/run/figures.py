"""accuracy.png: training and validation accuracy against epochs, best epoch marked."""
import io

from ..files import write_bytes


def plot_accuracy(history, best_epoch, path, title=""):
    """Draw the curves of `history` (rows with epoch, train_acc, val_acc) into `path`.

    Returns False (and writes nothing) when matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure   # no pyplot: no GUI backend is touched
        from matplotlib.ticker import MaxNLocator
    except Exception:
        return False
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(epochs, [r["train_acc"] for r in history], label="train (chosen actions)")
    ax.plot(epochs, [r["val_acc"] for r in history], label="validation")
    best = [r for r in history if r["epoch"] == best_epoch]
    if best:
        ax.plot([best_epoch], [best[0]["val_acc"]], "o", color="black",
                label=f"best: epoch {best_epoch}, {best[0]['val_acc']:.4f}")
        ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))    # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes(path, buf.getvalue())
    return True


def require_figure():
    """matplotlib's Figure class (no pyplot, no GUI), or a one-line error saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("figures need matplotlib, which is not installed; "
                           "install it with: pip install matplotlib") from None
    return Figure


def figure_png(fig):
    """The PNG bytes of a matplotlib Figure."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
