"""The element-wise kernels give the same bits whether or not their rows are split over threads."""
import numpy as np
import pytest

from brainprop_np.kernels import cpu, threads


@pytest.fixture
def split_everything(monkeypatch):
    """Force the threaded path (3 chunks) on any size."""
    monkeypatch.setattr(threads, "N_THREADS", 3)
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(threads, "_pool", None)


def run_all(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((7, 9, 10, 6)).astype(np.float32)
    fb = rng.standard_normal(x.shape).astype(np.float32)
    g, b = rng.uniform(0.5, 1.5, 6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    out = {"relu": cpu.relu_forward(x), "relu_fb": cpu.relu_feedback(fb, np.maximum(x, 0))}
    xhat, y, mean, var, inv = cpu.batchnorm_train_forward(x, g, b, 1e-3)
    out.update(xhat=xhat, y=y, mean=mean, var=var)
    out["bn_fb"] = cpu.batchnorm_feedback_train(fb, xhat, g, inv)[0]
    out["bn_inf"] = cpu.batchnorm_forward(x, mean, inv, g, b)[1]
    out["bn_inf_fb"] = cpu.batchnorm_feedback_inference(fb, xhat, g, inv)[0]
    for pf in (False, True):
        cols = cpu.im2col(x, 3, 3, 2, (0, 1, 1, 1), (4, 5), positions_first=pf, ws={})
        out[f"im2col{pf}"] = cols.copy()
        out[f"col2im{pf}"] = cpu.col2im(cols * 1.5, x.shape, 3, 3, 2, (0, 1, 1, 1), (4, 5),
                                        positions_first=pf, ws={}).copy()
    return out


def test_threaded_kernels_are_bit_identical(monkeypatch):
    single = run_all()
    monkeypatch.setattr(threads, "N_THREADS", 3)
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(threads, "_pool", None)
    calls = []
    real = threads.chunked
    monkeypatch.setattr(threads, "chunked", lambda fn, n, size: calls.append(n) or real(fn, n, size))
    split = run_all()
    assert len(calls) >= 8 and all(n >= 3 for n in calls)
    for key in single:
        assert np.array_equal(single[key], split[key]), key


def test_chunks_cover_the_rows_once(split_everything):
    seen = np.zeros(10, int)

    def mark(a, b):
        seen[a:b] += 1

    threads.chunked(mark, 10, 10)
    assert seen.tolist() == [1] * 10
