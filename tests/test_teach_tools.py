"""The shared pieces of the teaching tools: one finite-difference routine (with kinks), one
history.csv reader, the feedback figures (colour-bar labels, captions, nothing clipped), and
the test isolation (every test has its own HOME)."""
import os
from pathlib import Path

import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np.run.history import read_history
from brainprop_np.teach.gradcheck import numerical_grad
from brainprop_np.teach.trace import explain_trial

CONV = [{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"}, {"type": "relu"},
        {"type": "flatten"}]


def test_numerical_grad_marks_kinks_nan():
    x = np.array([1.0, -2.0, 1e-9])
    g = numerical_grad(lambda: float(np.maximum(x, 0).sum()), x, [0, 1, 2], eps=1e-6,
                       smooth=lambda: bool((x > 0).tolist() == [True, False, True]))
    assert g[0] == pytest.approx(1.0) and g[1] == 0.0 and np.isnan(g[2])
    assert x.tolist() == [1.0, -2.0, 1e-9]                       # restored


def test_read_history_rows_of_floats_and_the_missing_file(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,val_acc,mean_delta\n1,0.5,nan\n2,0.75,\n")
    rows = read_history(tmp_path)
    assert rows[0]["epoch"] == 1.0 and rows[1] == {"epoch": 2.0, "val_acc": 0.75} and np.isnan(rows[0]["mean_delta"])
    with pytest.raises(FileNotFoundError, match="no history.csv"):
        read_history(tmp_path / "nothing")


def test_every_test_has_its_own_home():
    assert "pytest" in os.environ["HOME"] and "pytest" in os.environ["BRAINPROP_CACHE"]
    assert "pytest" in os.environ["XDG_CACHE_HOME"] and "pytest" in os.environ["MPLCONFIGDIR"]


@pytest.fixture
def trace():
    net = bp.build_network(CONV, (6, 6, 1), 3, seed=1, device="cpu", dtype="float64", init_std=0.3)
    x = np.random.default_rng(0).random((1, 6, 6, 1))
    return explain_trial(net, x, 1, epsilon=0.0), x[0]


def _drawn_texts(fig):
    """(renderer, every visible non-empty text of the figure) after drawing it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    texts = fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible() and bool(a.get_text()))
    return canvas.get_renderer(), texts


def test_colour_bar_labels_show_significant_digits_and_are_not_clipped(trace):
    pytest.importorskip("matplotlib")
    from brainprop_np.teach.figures import feedback_figure
    t, img = trace
    fmap = np.linspace(-1e-3, 1e-3, 36).reshape(6, 6)          # the old labels: 0.001, −0.000
    fig = feedback_figure(t, img[..., 0], "conv2d", fmap)
    bar = [tl.get_text() for tl in fig.axes[-1].get_yticklabels()]
    assert bar == ["−1.0e-03", "−5.0e-04", "0", "5.0e-04", "1.0e-03"]
    renderer, texts = _drawn_texts(fig)
    assert len(texts) > 8
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= 720 and box.y1 <= 400, (text.get_text(), box)


def test_captions_explain_fb_and_pre_and_the_input_changes_nothing(trace, tmp_path):
    pytest.importorskip("matplotlib")
    from brainprop_np.teach.figures import caption, save_figures
    t, img = trace
    layer, inp = caption(t, "conv2d"), caption(t, "input")
    for text in (layer, inp):
        assert "fb: the attention-gated feedback" in text and "presynaptic" in text and "(pre" in text
    assert "strengthened" in layer and "weakened" in layer
    assert "strengthened" not in inp and "weakened" not in inp and "nothing changes here" in inp
    paths = save_figures(t, img, tmp_path)
    assert [Path(p).name for p in paths] == ["feedback_input.png", "feedback_conv2d.png"]
