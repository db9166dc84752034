"""Figures of one traced trial: where the attention-gated feedback goes (feedback_<layer>.png).

Each figure (720×400 pixels) shows the input image beside Σ_c fb, the feedback fb that
reached the units of one layer (or the pixels), in a signed colour map: red fb > 0,
blue fb < 0, white none. Its caption says what fb and pre are and what the colours
mean for the update ΔW = lr·δ·pre·fb of this trial.
"""
from pathlib import Path

import numpy as np

from ..run.figures import new_figure, save_png

FB = "fb: the attention-gated feedback reaching a unit, sent down from the chosen output unit {} only"
PRE = "pre: the activity of the presynaptic unit of a synapse"


def tick_label(v, _pos=None):
    """A colour-bar label with two significant digits in any range: 1.0e-03, −2.5e-01, 0."""
    if v == 0:
        return "0"
    return ("−" if v < 0 else "") + f"{abs(v):.1e}"


def signed(v):
    """δ with its sign and four significant digits: +0.7312, −6.150e-06 (never −0.0000)."""
    text = f"{abs(v):.4f}" if abs(v) >= 1e-3 else f"{abs(v):.3e}"
    return ("−" if v < 0 else "+") + text


def caption(trace, name):
    """The figure's caption: fb and pre, and what the colours mean (the input has no synapses)."""
    a = trace.action
    if name == "input":
        how = (f"with the paper's symmetric feedback, fb = ∂q[{a}]/∂pixel" if not trace.feedback
               else "untied feedback weights: fb is not ∂q/∂pixel")
        return (f"{FB.format(a)} (red: fb > 0, blue: fb < 0),\nhere all the way down to the pixels ({how}).\n"
                "No synapse ends on the input, so nothing changes here. The pixels are the presynaptic activity "
                "(pre)\nof the first layer's synapses, which change by ΔW = lr·δ·pre·fb with the fb at that "
                "layer's units.")
    up, down = ("strengthened", "weakened") if trace.delta > 0 else ("weakened", "strengthened")
    sign = ">" if trace.delta > 0 else "<="
    return (f"{FB.format(a)} (red: fb > 0, blue: fb < 0);\n{PRE}. Each synapse changes by "
            f"ΔW = lr·δ·pre·fb: with δ {sign} 0, synapses\nfrom active inputs (pre > 0) onto red units are {up}, "
            f"onto blue units {down}; white units get\n(almost) no feedback and (almost) no change from this trial.")


def feedback_figure(trace, img, name, fmap):
    """The Figure of one layer's (or the input's) Σ_c fb map (H, W) beside the image (H, W[, 3])."""
    fig = new_figure((7.2, 4.0))
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.03, right=0.86, top=0.86, bottom=0.30, wspace=0.15)
    outcome = "rewarded" if trace.reward else "not rewarded"
    axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
    axes[0].set_title(f"input: label {trace.label}, chose {trace.action} ({outcome})", fontsize=9)
    m = float(np.abs(fmap).max()) or 1.0
    im = axes[1].imshow(fmap, cmap="RdBu_r", vmin=-m, vmax=m)
    where = "at the input" if name == "input" else f"at {name}'s units"
    axes[1].set_title(f"feedback fb {where} (Σ over channels)\nδ = reward − q[action] = {signed(trace.delta)}",
                      fontsize=8)
    bar = fig.colorbar(im, ax=axes[1], fraction=0.046, ticks=np.linspace(-m, m, 5))
    bar.ax.yaxis.set_major_formatter(tick_label)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("Σ_c fb", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.03, 0.03, caption(trace, name), fontsize=7.5, va="bottom")
    return fig


def save_figures(trace, image, out_dir):
    """Save PNGs of where the attention-gated feedback goes; return the paths written.

    image: (H, W, C) input in [0, 1]. Writes `feedback_input.png` (the image beside
    Σ_c fb at the input) and `feedback_<layer>.png` for every convolutional or
    locally-connected layer (Σ_c fb at its output units: where the credit for this
    choice goes), with δ in the title and a caption saying what the colours mean.
    """
    out_dir = Path(out_dir)
    img = np.asarray(image, dtype=np.float64)
    img = img[..., 0] if img.shape[-1] == 1 else img
    maps = [("input", trace.input_fb_map)]
    maps += [(t.name, t.fb_map) for t in reversed(trace.layers)
             if t.fb_map is not None and t.kind in ("Conv2D", "LocallyConnected2D")]
    figs = [(name, feedback_figure(trace, img, name, fmap)) for name, fmap in maps]
    out_dir.mkdir(parents=True, exist_ok=True)
    return [str(save_png(fig, out_dir / f"feedback_{name}.png")) for name, fig in figs]
