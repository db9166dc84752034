"""Figures of one traced trial: where the attention-gated feedback goes (feedback_<layer>.png)."""
from pathlib import Path

import numpy as np

from ..files import write_bytes
from ..run.figures import figure_png, require_figure


def save_figures(trace, image, out_dir):
    """Save PNGs of where the attention-gated feedback goes; return the paths written.

    image: (H, W, C) input in [0, 1]. Writes `feedback_input.png` (the image beside
    Σ_c fb at the input) and `feedback_<layer>.png` for every convolutional or
    locally-connected layer (Σ_c fb at its output units: where the credit for this
    choice goes), in a signed colour map (red > 0, blue < 0) with δ in the title and a
    caption saying what the colours mean for the update. Each figure is 720×400 pixels.
    """
    Figure = require_figure()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    img = np.asarray(image, dtype=np.float64)
    img = img[..., 0] if img.shape[-1] == 1 else img
    maps = [("input", trace.input_fb_map)]
    maps += [(t.name, t.fb_map) for t in reversed(trace.layers)
             if t.fb_map is not None and t.kind in ("Conv2D", "LocallyConnected2D")]
    up, down = ("strengthened", "weakened") if trace.delta > 0 else ("weakened", "strengthened")
    outcome = "rewarded" if trace.reward else "not rewarded"
    paths = []
    for name, fmap in maps:
        fig = Figure(figsize=(7.2, 4.0), dpi=100)
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.03, right=0.92, top=0.86, bottom=0.24, wspace=0.15)
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[0].set_title(f"input: label {trace.label}, chose {trace.action} ({outcome})", fontsize=9)
        m = float(np.abs(fmap).max()) or 1.0
        im = axes[1].imshow(fmap, cmap="RdBu_r", vmin=-m, vmax=m)
        where = "at the input" if name == "input" else f"at {name}'s units"
        axes[1].set_title(f"feedback fb {where} (Σ over channels)\nδ = reward − q[action] = {trace.delta:+.4f}",
                          fontsize=8)
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.text(0.03, 0.03,
                 f"Attention-gated feedback sent down from the chosen output unit {trace.action} only. Red: fb > 0, "
                 f"blue: fb < 0.\nEach synapse changes by ΔW = lr·δ·pre·fb: with δ {'>' if trace.delta > 0 else '<='} 0, "
                 f"synapses from active inputs onto red units are {up},\nonto blue units {down}; white units "
                 "get (almost) no feedback and (almost) no change from this trial.", fontsize=7.5, va="bottom")
        path = out_dir / f"feedback_{name}.png"
        write_bytes(path, figure_png(fig))
        paths.append(str(path))
    return paths
