"""The network's plan (blocks.py): every fused block of the fast set against the layer-by-layer
path of the same set, for every preset, both rules, every feedback mode, train and inference.

  ReluBatchNorm (ReLU → BatchNorm → Dropout): the same operations in the same order and
      the same fixed chunks as the layers: the same bits, float32 and float64.
  DirectConv (a 1-channel convolution without im2col): other summation orders than BLAS's
      GEMMs — against the reference kernels in float64 at rtol 1e-12 (the products' own
      rounding: |Δ| ≤ K·eps·Σ|a·b|, K ≤ 25 terms here); whole networks with it at rtol 1e-4
      in float32 after three training steps (those roundings carried through every layer).
  DirectConvReluBatchNorm (DirectConv joined with the lean ReluBatchNorm after it): the
      same operations in the same order and chunks as those two blocks: the same bits,
      float32 and float64, with and without dropout, stride 1 and 2.
  TiledConv (a Conv2D's GEMMs a tile of images at a time): the tags sum the tiles in
      another order than one GEMM — the same bounds as DirectConv, with the bound that
      keeps a batch whole lowered so that the tests' small batches are tiled.
  FoldedTags (a Dense layer's tags kept as pre and fb, multiplied into W by the update's
      GEMM): W rounds once per update instead of twice — whole networks at the same bounds
      as DirectConv after three training steps; the tags a caller reads (net.grads()) are
      the product itself. The same-bits tests above run without it (no_folding).
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="the fused blocks are the fast CPU set's")

import brainprop_np as bp  # noqa: E402
from brainprop_np import blocks, feedback  # noqa: E402
from brainprop_np.layers.grads import OuterTag  # noqa: E402
from brainprop_np.kernels import cpu, fast  # noqa: E402
from brainprop_np.kernels.fast.relu_batchnorm import _relu_stats  # noqa: E402
from brainprop_np.layers.geometry import window_2d  # noqa: E402

SHAPES = {"dense": (28, 28, 1), "conv": (28, 28, 1), "loccon": (28, 28, 1), "deep": (32, 32, 3)}


def kinds(net):
    return [type(s).__name__ for s in net.steps()]


def pair(model, shape, dtype="float32", fb="symmetric", algorithm="brainprop"):
    """The same network twice, fused and layer by layer, both on the fast set."""
    nets = []
    for fused in (True, False):
        net = bp.build_network(model, shape, 10, seed=2, device="cpu", dtype=dtype, algorithm=algorithm,
                               feedback=fb, kernels="fast")
        net.fused = fused
        nets.append(net)
    return nets


def run(net, algorithm, steps=3, batch=6):
    """Train `steps` trials, then one inference forward and its feedback down to the input.
    Returns every array a run can see: weights, running statistics, grads, q, input feedback."""
    rng = np.random.default_rng(5)
    x = rng.random((batch,) + net.input_shape).astype(net.dtype)
    y = rng.integers(0, 10, batch)
    rule, opt = bp.make_rule(algorithm), bp.SGD(lr=0.1)
    for _ in range(steps):
        rule.trial(net, x, y, train=True, batch_size=batch)
        opt.step(net, 0.1)
    seen = {"train_grads": net.grads()}
    q = net.forward(x, train=False)
    fb_top = np.zeros_like(q)
    fb_top[np.arange(batch), y] = 1.0
    seen["q"], seen["input_fb"] = q, net.feedback(fb_top, input_feedback=True)
    seen["weights"], seen["infer_grads"] = net.get_weights(), net.grads()
    return seen


def flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from flat(v, f"{prefix}/{k}")
    else:
        yield prefix, np.asarray(tree)


def assert_same(a, b, rtol=0.0):
    fa, fb_ = dict(flat(a)), dict(flat(b))
    assert fa.keys() == fb_.keys()
    for k in fa:
        if rtol == 0.0:
            np.testing.assert_array_equal(fa[k], fb_[k], err_msg=k)
        else:
            scale = max(float(np.abs(fb_[k]).max()), 1e-30)
            np.testing.assert_allclose(fa[k], fb_[k], rtol=rtol, atol=rtol * scale, err_msg=k)


@pytest.fixture
def no_folding(monkeypatch):
    """Plans made while this is active have no FoldedTags: every Dense makes its tags as an array."""
    monkeypatch.delattr(fast, "sgd_update_outer")


def test_plan_of_each_preset():
    conv, _ = pair("conv", SHAPES["conv"])
    assert kinds(conv)[:3] == ["DirectConvReluBatchNorm", "TiledConv", "ReluBatchNorm"]
    assert [len(s.layers) for s in conv.steps()][:3] == [3, 1, 3]         # conv+relu+bn, conv, relu+bn+dropout
    deep, _ = pair("deep", SHAPES["deep"])
    assert kinds(deep).count("ReluBatchNorm") == 7 and "DirectConv" not in kinds(deep)   # 3 input channels
    assert kinds(deep).count("TiledConv") == 7
    dense, _ = pair("dense", SHAPES["dense"])
    assert kinds(dense).count("FoldedTags") == 3 and kinds(dense)[-1] == "Single"   # not the output layer
    assert kinds(conv).count("FoldedTags") == 1


def test_plan_is_layer_by_layer_where_no_block_applies():
    ref = bp.build_network("conv", (28, 28, 1), 10, device="cpu", kernels="numpy")
    assert set(kinds(ref)) == {"Single"}                       # the NumPy reference has no blocks
    net, plain = pair("conv", SHAPES["conv"])
    assert set(kinds(plain)) == {"Single"}                     # fused = False
    untied, _ = pair("conv", SHAPES["conv"], fb="dfa")
    assert not {"DirectConv", "TiledConv", "FoldedTags"} & set(kinds(untied)) and "ReluBatchNorm" in kinds(untied)
    covered = [i for s in net.steps() for i in range(s.first, s.last + 1)]
    assert covered == list(range(len(net.layers)))             # every layer once, in order


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model", ["conv", "loccon", "deep"])
def test_relu_batchnorm_block_same_bits(model, algorithm, dtype, monkeypatch, no_folding):
    from brainprop_np.kernels.fast import conv_tiled
    monkeypatch.setattr(conv_tiled, "WHOLE_MAX", float("inf"))     # deep's convs whole: TiledConv is not bitwise
    shape = SHAPES[model][:2] + (2,) if model != "deep" else SHAPES[model]     # no 1-channel input
    fused, plain = pair(model, shape, dtype, algorithm=algorithm)
    assert "ReluBatchNorm" in kinds(fused) and "DirectConv" not in kinds(fused)
    assert_same(run(fused, algorithm), run(plain, algorithm))


@pytest.mark.parametrize("fb", [m for m in feedback.MODES if m != "symmetric"])
def test_blocks_under_untied_feedback(fb):
    fused, plain = pair("conv", (12, 12, 2), fb=fb)
    assert_same(run(fused, "brainprop"), run(plain, "brainprop"))


@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model", ["conv", "dense"])
def test_presets_with_direct_conv_within_rounding(model, algorithm):
    fused, plain = pair(model, SHAPES[model], algorithm=algorithm)
    assert_same(run(fused, algorithm), run(plain, algorithm), rtol=1e-4)
    f64, p64 = pair(model, SHAPES[model], "float64", algorithm=algorithm)
    assert_same(run(f64, algorithm), run(p64, algorithm), rtol=1e-10)


@pytest.mark.parametrize("channels", [2, 1])
def test_dropout_fixed_mask_runs_layer_by_layer(channels, monkeypatch):
    if channels == 2:                                 # against every layer on its own
        fused, plain = pair("conv", (10, 10, 2))
    else:                                             # the mask inside DirectConvReluBatchNorm: against
        fused, plain = joined_and_split(FIRST_BLOCK, (10, 10, 1), "float32", monkeypatch)  # the two blocks
    for net in (fused, plain):
        drop = next(l for l in net.layers if isinstance(l, bp.layers.Dropout))
        drop.fixed_mask = np.full((4,) + drop.input_shape, 2.0, np.float32)
    x = np.random.default_rng(0).random((4, 10, 10, channels), dtype=np.float32)
    np.testing.assert_array_equal(fused.forward(x, train=True), plain.forward(x, train=True))


GEOMETRIES = [(k, s, p) for k in (1, 3, 5) for s in (1, 2) for p in ("same", "valid")]


@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
def test_direct_conv_kernels_against_reference(k, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 9, 8, 1))
    w, b = rng.standard_normal((k, k, 1, 4)), rng.standard_normal((k, k, 1, 4))
    out_hw, pads = window_2d(9, 8, k, stride, padding)
    geo = (k, k, stride, pads, out_hw)
    cols = cpu.im2col(x, *geo)
    y_ref = (cols @ w.reshape(-1, 4)).reshape((3,) + out_hw + (4,))
    y = fast.conv1_forward(x, w, stride, pads, out_hw)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12 * np.abs(y_ref).max())
    fb = rng.standard_normal(y.shape)
    tags_ref = (cols.T @ fb.reshape(-1, 4)).reshape(w.shape)
    np.testing.assert_allclose(fast.conv1_tags(x, fb, w.shape, stride, pads), tags_ref, rtol=1e-12,
                               atol=1e-12 * np.abs(tags_ref).max())
    fb_in_ref = cpu.col2im(fb.reshape(-1, 4) @ b.reshape(-1, 4).T, x.shape, *geo)
    fb_in = fast.conv1_input_feedback(x.shape, fb, b, stride, pads)
    assert fb_in.shape == x.shape
    np.testing.assert_allclose(fb_in, fb_in_ref, rtol=1e-12, atol=1e-12 * np.abs(fb_in_ref).max())


def test_direct_conv_float32_within_row_rounding():
    """float32: the forward sums 9 taps, the tags each output row's 28 products in float32
    (the rows in float64): within 9·eps and 28·eps of Σ|a·b| of the float64 products."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 28, 28, 1)).astype(np.float32)
    w, fb = rng.standard_normal((3, 3, 1, 8)).astype(np.float32), rng.standard_normal((20, 28, 28, 8)).astype(np.float32)
    out_hw, pads = window_2d(28, 28, 3, 1, "same")
    cols = cpu.im2col(x.astype(np.float64), 3, 3, 1, pads, out_hw)
    eps = np.finfo(np.float32).eps
    y = fast.conv1_forward(x, w, 1, pads, out_hw).reshape(-1, 8)
    assert y.dtype == np.float32
    assert np.all(np.abs(y - cols @ w.reshape(9, 8)) <= 9 * eps * (np.abs(cols) @ np.abs(w.reshape(9, 8))))
    tags = fast.conv1_tags(x, fb, w.shape, 1, pads).reshape(9, 8)
    f64 = fb.reshape(-1, 8).astype(np.float64)
    assert tags.dtype == np.float32
    assert np.all(np.abs(tags - cols.T @ f64) <= 29 * eps * (np.abs(cols.T) @ np.abs(f64)))


def serial_then_parallel(monkeypatch, kernel_call):
    """kernel_call() with the fast set's kernels serial, then parallel: the two results."""
    import numba
    from brainprop_np.kernels.fast import jit
    if numba.get_num_threads() < 2:
        pytest.skip("one numba thread: the parallel kernels would run serial")
    out = []
    for minimum in (1 << 62, 0):
        monkeypatch.setattr(jit, "PARALLEL_MIN", minimum)
        out.append(kernel_call())
    return out


def test_direct_conv_tags_do_not_depend_on_threads(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.random((20, 28, 28, 1), dtype=np.float32)
    fb = rng.standard_normal((20, 28, 28, 8)).astype(np.float32)
    serial, parallel = serial_then_parallel(monkeypatch, lambda: fast.conv1_tags(x, fb, (3, 3, 1, 8), 1, (1, 1, 1, 1)))
    np.testing.assert_array_equal(serial, parallel)


def test_blocks_module_names_its_steps():
    net, _ = pair("conv", SHAPES["conv"])
    assert net.steps()[0].describe() == "conv2d+activation+batch_normalization"
    assert all(isinstance(s, blocks.Single) for s in net.steps())


def test_tile_bound_tiles_mnist_and_deep_at_batch_128():
    """At batch 128 every C > 1 convolution of the presets is more than one tile of about 4 MB
    of im2col rows: MNIST conv's stride-2 layer (29 MB: tiles of 18 images), the deep
    network's 3-channel first layer (14 MB: 37 images) and its 64- and 128-channel layers
    (302, 151 and 38 MB). A batch whose rows fit one tile stays whole."""
    assert fast.conv_tile_images((128, 28, 28, 32), (3, 3, 32, 32), (14, 14), 4) == 18
    assert fast.conv_tile_images((18, 28, 28, 32), (3, 3, 32, 32), (14, 14), 4) == 18
    assert fast.conv_tile_images((19, 28, 28, 32), (3, 3, 32, 32), (14, 14), 4) == 18
    assert fast.conv_tile_images((128, 32, 32, 3), (3, 3, 3, 64), (32, 32), 4) == 37
    for x_shape, kernel_shape in [((128, 32, 32, 64), (3, 3, 64, 64)), ((128, 16, 16, 128), (3, 3, 128, 128)),
                                  ((128, 8, 8, 128), (3, 3, 128, 128))]:
        tile = fast.conv_tile_images(x_shape, kernel_shape, x_shape[1:3], 4)
        assert 1 <= tile < 128


@pytest.mark.parametrize("tile", [1, 2, 4])
@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
def test_tiled_conv_kernels_against_reference(k, stride, padding, tile):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 9, 8, 3))                          # 6 images: tiles of 4 leave 2
    w, b = rng.standard_normal((k, k, 3, 4)), rng.standard_normal((k, k, 3, 4))
    out_hw, pads = window_2d(9, 8, k, stride, padding)
    geo = (k, k, stride, pads, out_hw)
    cols = cpu.im2col(x, *geo)
    y_ref = cols @ w.reshape(-1, 4)
    y = fast.conv_tiled_forward(x, w, stride, pads, out_hw, tile)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12 * np.abs(y_ref).max())
    fb = rng.standard_normal(y.shape)
    tags_ref = (cols.T @ fb).reshape(w.shape)
    fb_in_ref = cpu.col2im(fb @ b.reshape(-1, 4).T, x.shape, *geo)
    tags, fb_in = fast.conv_tiled_feedback(x, fb, w.shape, b, stride, pads, out_hw, tile)
    np.testing.assert_allclose(tags, tags_ref, rtol=1e-12, atol=1e-12 * np.abs(tags_ref).max())
    np.testing.assert_allclose(fb_in, fb_in_ref, rtol=1e-12, atol=1e-12 * np.abs(fb_in_ref).max())
    tags_only, none = fast.conv_tiled_feedback(x, fb, w.shape, None, stride, pads, out_hw, tile)
    assert none is None
    np.testing.assert_array_equal(tags_only, tags)


@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model", ["conv", "deep"])
def test_presets_with_tiled_conv_within_rounding(model, algorithm, monkeypatch):
    """conv in float32 and float64; deep in float64 only: in float32 its max-pool winners
    and ReLU signs flip under the blocks' other rounding within three training steps (a
    discrete change, 1e-2 apart afterwards), in float64 they do not."""
    from brainprop_np.kernels.fast import conv_tiled
    monkeypatch.setattr(conv_tiled, "WHOLE_MAX", 0)                # tile the tests' batches of 6
    monkeypatch.setattr(conv_tiled, "TILE_BYTES", 1)               # tiles of MIN_TILE = 2 images
    for dtype, rtol in [("float32", 1e-4), ("float64", 1e-10)][model == "deep":]:
        fused, plain = pair(model, SHAPES[model], dtype, algorithm=algorithm)
        assert_same(run(fused, algorithm), run(plain, algorithm), rtol=rtol)
        tiled = [s for s in fused.steps() if isinstance(s, blocks.TiledConv)]
        assert tiled and all(s.layers[0].tile < 6 and s.layers[0].cols is None for s in tiled)


def test_tiled_conv_does_not_depend_on_threads(monkeypatch):
    """The tile (hence the tags' order of summation) and every result are the same whether the
    kernels run serial or parallel and BLAS on one thread or all."""
    import numba
    from threadpoolctl import threadpool_limits
    from brainprop_np.kernels.fast import conv_tiled, jit
    monkeypatch.setattr(conv_tiled, "WHOLE_MAX", 0)
    monkeypatch.setattr(conv_tiled, "TILE_BYTES", 3 * 16 * 16 * 72 * 4)      # 3 images of rows
    rng = np.random.default_rng(4)
    x = rng.random((7, 16, 16, 8), dtype=np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    fb = rng.standard_normal((7 * 16 * 16, 16)).astype(np.float32)
    out, tiles = [], []
    for minimum, blas in ((1 << 62, None), (0, None), (0, 1)):
        monkeypatch.setattr(jit, "PARALLEL_MIN", minimum)
        with threadpool_limits(blas):
            tiles.append(fast.conv_tile_images(x.shape, w.shape, (16, 16), 4))
            out.append((fast.conv_tiled_forward(x, w, 1, (1, 1, 1, 1), (16, 16), tiles[-1]),)
                       + fast.conv_tiled_feedback(x, fb, w.shape, w, 1, (1, 1, 1, 1), (16, 16), tiles[-1]))
    assert tiles == [3, 3, 3] and numba.get_num_threads() >= 1
    for other in out[1:]:
        for a, b in zip(out[0], other):
            np.testing.assert_array_equal(a, b)


def test_tiled_and_whole_batches_in_one_network(monkeypatch):
    """Batches above the bound tiled, smaller ones (an epoch's last batch) whole, inference
    between training steps: the network stays the layer-by-layer one (float64)."""
    from brainprop_np.kernels.fast import conv_tiled
    monkeypatch.setattr(conv_tiled, "WHOLE_MAX", 3 * 12 * 12 * 18 * 8)      # 3 images of the first conv's rows
    monkeypatch.setattr(conv_tiled, "TILE_BYTES", 1)
    fused, plain = pair("conv", (12, 12, 2), "float64")
    rng = np.random.default_rng(6)
    seen = []
    for net in (fused, plain):
        rule, opt, q = bp.make_rule("brainprop"), bp.SGD(lr=0.1), {}
        for n in (6, 3, 6, 2, 5):
            x, y = rng.random((n, 12, 12, 2)), rng.integers(0, 10, n)
            rule.trial(net, x, y, train=True, batch_size=n)
            opt.step(net, 0.1)
            q[len(q)] = net.forward(x, train=False)
        seen.append({"q": q, "weights": net.get_weights()})
        rng = np.random.default_rng(6)
    tiled = [s for s in fused.steps() if isinstance(s, blocks.TiledConv)]
    assert tiled and tiled[0].layers[0].tile == 2
    assert_same(seen[0], seen[1], rtol=1e-10)


@pytest.mark.parametrize("fb", ["symmetric", "dfa"])
def test_relu_batchnorm_trains_lean_only_where_it_runs_its_own_feedback(fb):
    net, _ = pair("conv", (12, 12, 2), fb=fb)
    x = np.random.default_rng(0).random((4, 12, 12, 2), dtype=np.float32)
    rule = bp.make_rule("brainprop")
    rule.trial(net, x, np.arange(4), train=True, batch_size=4)
    fused = [s for s in net.steps() if isinstance(s, blocks.ReluBatchNorm)]
    relus = [s.layers[0] for s in fused]
    if fb == "symmetric":                          # lean: the block's input kept, not post and xhat
        assert all(s.lean and s.z is not None for s in fused) and all(r.post is None for r in relus)
    else:                                          # DFA's wiring calls the layers' own feedback
        assert not any(s.lean or s.z is not None for s in fused) and all(r.post is not None for r in relus)
    net.forward(x, train=False)                    # inference keeps the layers' state
    assert all(s.z is None for s in fused) and all(r.post is not None for r in relus)


@pytest.mark.parametrize("channels", [2, 1])        # 1: MNIST conv's first block joined
def test_layer_by_layer_after_a_lean_forward_is_one_clear_error(channels):
    net, _ = pair("conv", (12, 12, channels))
    assert (kinds(net)[0] == "DirectConvReluBatchNorm") == (channels == 1)
    x = np.random.default_rng(0).random((4, 12, 12, channels), dtype=np.float32)
    net.forward(x, train=True)
    with pytest.raises(RuntimeError, match="run that forward inside layer_by_layer"):
        with net.layer_by_layer():
            pass
    net.forward(x, train=False)                    # an inference forward keeps the layers' state
    with net.layer_by_layer():
        net.forward(x, train=True)
        net.feedback(np.ones((4, 10), np.float32))


def chunk_starts_inside_a_row(batch, shape, stride):
    """Whether one of BatchNorm's fixed sum chunks of the first conv's output starts mid image row."""
    from brainprop_np.kernels.fast.batchnorm import chunks
    ho, wo = -(-shape[0] // stride), -(-shape[1] // stride)
    m = batch * ho * wo
    return any((m * k // chunks(m)) % wo for k in range(1, chunks(m)))


FIRST_BLOCK = [{"type": "conv2d", "filters": 8, "kernel": 3, "stride": 1, "padding": "same"},
               {"type": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.3},
               {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
               {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 16}]


def joined_and_split(model, shape, dtype, monkeypatch):
    """The network with DirectConvReluBatchNorm, and the same network planned without it."""
    joined, split = pair(model, shape, dtype)[0], pair(model, shape, dtype)[0]
    with monkeypatch.context() as m:
        m.delattr(fast, "conv1_relu_stats")
        split.steps()
    return joined, split


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model,stride", [("conv", 1), ("conv", 2), (FIRST_BLOCK, 1), (FIRST_BLOCK, 2)])
def test_direct_conv_relu_batchnorm_same_bits(model, stride, algorithm, dtype, monkeypatch):
    if isinstance(model, list):                          # with dropout after the BatchNorm
        model = [dict(model[0], stride=stride)] + model[1:]
    shape = (28, 28, 1) if stride == 1 else (13, 11, 1)
    assert chunk_starts_inside_a_row(13, shape, stride)
    joined, split = joined_and_split(model, shape, dtype, monkeypatch)
    assert kinds(joined)[0] == "DirectConvReluBatchNorm" and kinds(split)[:2] == ["DirectConv", "ReluBatchNorm"]
    calls = []
    tags = fast.conv1_relu_batchnorm_tags
    monkeypatch.setattr(fast, "conv1_relu_batchnorm_tags", lambda *a: calls.append(1) or tags(*a))
    assert_same(run(joined, algorithm, batch=13), run(split, algorithm, batch=13))
    assert len(calls) == 3                               # every training step's feedback ran joined


def test_direct_conv_relu_batchnorm_stats_do_not_depend_on_threads(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.random((20, 28, 28, 1), dtype=np.float32)
    w = rng.standard_normal((3, 3, 1, 8)).astype(np.float32)
    serial, parallel = serial_then_parallel(monkeypatch, lambda: fast.conv1_relu_stats(x, w, 1, (1, 1, 1, 1), (28, 28)))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
    z = fast.conv1_forward(x, w, 1, (1, 1, 1, 1), (28, 28))
    np.testing.assert_array_equal(serial[0], z)
    for a, b in zip(serial[1:], _relu_stats(z.reshape(-1, 8), store=False)[1:]):      # mean, var
        np.testing.assert_array_equal(a, b)
    assert chunk_starts_inside_a_row(20, (28, 28), 1)


def test_direct_conv_relu_batchnorm_tags_do_not_depend_on_threads(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.random((20, 28, 28, 1), dtype=np.float32)
    fb, z = (rng.standard_normal((20, 28, 28, 8)).astype(np.float32) for _ in range(2))
    mask = (rng.random(z.shape) > 0.3).astype(np.float32) / 0.7
    gamma, inv_std = rng.random(8, dtype=np.float32) + 0.5, rng.random(8, dtype=np.float32) + 0.5
    mean = rng.standard_normal(8).astype(np.float32)
    serial, parallel = serial_then_parallel(monkeypatch, lambda: fast.conv1_relu_batchnorm_tags(
        x, fb, mask, z, mean, gamma, inv_std, (3, 3, 1, 8), 1, (1, 1, 1, 1)))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


FOLDED_CASES = [(m, d, r) for m in ("dense", "conv", "loccon", "deep")
                for d, r in (("float32", 1e-4), ("float64", 1e-10)) if (m, d) != ("deep", "float32")]


@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model,dtype,rtol", FOLDED_CASES)
def test_folded_tags_within_rounding(model, dtype, rtol, algorithm, monkeypatch):
    """Every preset, deep in float64 only: in float32 its max-pool winners and ReLU signs flip
    under another rounding within three training steps (as in test_presets_with_tiled_conv_within_rounding)."""
    folded = pair(model, SHAPES[model], dtype, algorithm=algorithm)[0]
    assert "FoldedTags" in kinds(folded)
    seen = run(folded, algorithm)
    monkeypatch.delattr(fast, "sgd_update_outer")
    unfolded = pair(model, SHAPES[model], dtype, algorithm=algorithm)[0]
    assert "FoldedTags" not in kinds(unfolded)
    assert_same(seen, run(unfolded, algorithm), rtol=rtol)


def test_folded_tags_read_as_their_product_and_update_with_l2():
    """A folded tag reads as preᵀ·fb, and reading it leaves the update's bits as they are; an
    L2 step folds W's decay into the GEMM and reports the same L2 term as the array path."""
    nets = [pair("dense", SHAPES["dense"])[0] for _ in range(3)]
    rng = np.random.default_rng(3)
    x, y = rng.random((5,) + SHAPES["dense"]).astype(np.float32), rng.integers(0, 10, 5)
    for net in nets:
        bp.make_rule("brainprop").trial(net, x, y, train=True, batch_size=5)
    dense = nets[1].layers[1]
    tag = dense.grads.stored("kernel")
    assert isinstance(tag, OuterTag)
    np.testing.assert_array_equal(dense.grads["kernel"], dense.pre.T @ tag.fb)    # net 1: read first
    assert dense.grads.stored("kernel") is tag
    for layer in nets[2].layers:                          # net 2: every tag made an array first
        if "kernel" in layer.grads and isinstance(layer.grads.stored("kernel"), OuterTag):
            layer.grads["kernel"] = layer.grads["kernel"].copy()
    opt = bp.SGD(lr=0.1, l2=5e-4)
    terms = [opt.step(net, 0.1) for net in nets]
    assert terms[0] == terms[1] == terms[2]               # Σ W² of the same old weights
    w = [net.get_weights() for net in nets]
    assert_same(w[0], w[1])                               # read or not: the same bits
    assert_same(w[0], w[2], rtol=1e-6)                    # against the array path: rounding
