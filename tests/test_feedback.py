"""Untied feedback (brainprop_np/feedback.py): random, sign, kolen_pollack and dfa next to
symmetric; every check in float64 on the CPU."""
import csv
import importlib
import math
from pathlib import Path

import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np import feedback as F
from brainprop_np.run.checkpoint import load_checkpoint
from brainprop_np.weights import read_weights, save_weights
from brainprop_np.teach.gradcheck import numerical_grad, rel_error

T = importlib.import_module("brainprop_np.run.train")
UNTIED = ("random", "sign", "kolen_pollack", "dfa")

# every layer kind with a kernel, two blocks with BatchNorm, dropout and max-pooling between
NET = [{"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "same"},
       {"type": "relu"}, {"type": "batchnorm"}, {"type": "maxpool2d", "pool": 2},
       {"type": "locally_connected2d", "filters": 2, "kernel": 3, "stride": 1, "padding": "valid"},
       {"type": "relu"}, {"type": "dropout", "rate": 0.0}, {"type": "flatten"},
       {"type": "dense", "units": 7}, {"type": "relu"}]
SHAPE = (10, 10, 1)


def build(feedback="symmetric", model=NET, shape=SHAPE, seed=2, std=0.3, **kw):
    return bp.build_network(model, shape, 5, seed=seed, device="cpu", dtype="float64",
                            init_std=std, feedback=feedback, **kw)


def batch(shape=SHAPE, n=6, seed=0):
    r = np.random.default_rng(seed)
    return r.random((n,) + shape), r.integers(0, 5, n)


def grads(net, x, y, train=False):
    return bp.BrainProp().gradients(net, x, y, actions=y, train=train)


def assert_same_grads(a, b, exact=True):
    assert list(a) == list(b)
    for layer in a:
        for p in a[layer]:
            if p in b[layer]:
                if exact:
                    np.testing.assert_array_equal(a[layer][p], b[layer][p], err_msg=f"{layer}/{p}")
                else:
                    np.testing.assert_allclose(a[layer][p], b[layer][p], rtol=1e-12, atol=1e-15,
                                               err_msg=f"{layer}/{p}")


def kernel_layers(net):
    return [l for l in net.layers if F.has_kernel(l)]


# ---------------------------------------------------------------------------- symmetric

def test_symmetric_is_the_papers_network_unchanged():
    net = build("symmetric")
    assert net.untied is None
    for layer in kernel_layers(net):
        assert layer.feedback_mode == "symmetric"
        assert layer.feedback_weights() is layer.params["kernel"]      # the very array: the same GEMM as before
        assert "feedback_kernel" not in layer.params and "feedback_kernel" not in layer.state
    assert all("feedback_kernel" not in a for a in net.get_weights().values())


@pytest.mark.parametrize("mode", UNTIED)
def test_forward_weights_do_not_depend_on_the_mode(mode):
    ref, net = build("symmetric"), build(mode)
    for layer, arrays in ref.get_weights().items():
        for name, a in arrays.items():
            np.testing.assert_array_equal(net.get_weights()[layer][name], a)


@pytest.mark.parametrize("train", [False, True])
def test_symmetric_gradients_are_the_true_gradients_exactly(train):
    """symmetric = what the untied network computes inside feedback.symmetric(): B = W."""
    x, y = batch()
    ref = grads(build("symmetric"), x, y, train)
    net = build("random")
    with F.symmetric(net):
        assert_same_grads(grads(net, x, y, train), ref)
    assert net.untied is not None and kernel_layers(net)[0].feedback_mode == "random"


@pytest.mark.parametrize("mode", ["random", "kolen_pollack"])
@pytest.mark.parametrize("train", [False, True])
def test_b_equal_to_w_gives_the_symmetric_gradients(mode, train):
    x, y = batch()
    # the untied wiring runs each layer's own feedback: the reference is the symmetric network
    # run layer by layer (its fused blocks equal that path: tests/test_blocks.py)
    ref_net = build("symmetric")
    ref_net.fused = False
    ref = grads(ref_net, x, y, train)
    net = build(mode)
    for layer in kernel_layers(net):
        store = layer.params if mode == "kolen_pollack" else layer.state
        store["feedback_kernel"][...] = layer.params["kernel"]
    got = grads(net, x, y, train)
    assert_same_grads(got, ref)
    if mode == "kolen_pollack":
        for layer in kernel_layers(net):
            np.testing.assert_array_equal(got[layer.name]["feedback_kernel"], got[layer.name]["kernel"])


def test_sign_with_w_of_one_magnitude_gives_the_symmetric_gradients():
    """B = sign(W)·RMS(W) equals W when every |W| is the same: then sign feedback is symmetric."""
    x, y = batch()
    ref_net, net = build("symmetric"), build("sign")
    for a, b in zip(kernel_layers(ref_net), kernel_layers(net)):
        w = np.where(a.params["kernel"] >= 0, 0.25, -0.25)
        a.params["kernel"][...] = w
        b.params["kernel"][...] = w
    assert_same_grads(grads(net, x, y), grads(ref_net, x, y), exact=False)


@pytest.mark.parametrize("model", [
    [{"type": "dense", "units": 6}, {"type": "relu"}],
    [{"type": "conv2d", "filters": 2, "stride": 2}, {"type": "relu"}, {"type": "batchnorm"},
     {"type": "dropout", "rate": 0.0}, {"type": "flatten"}],
], ids=["dense", "conv-bn"])
@pytest.mark.parametrize("train", [False, True])
def test_dfa_with_one_block_and_b_equal_to_w_out_gives_the_symmetric_gradients(model, train):
    shape = (5,) if model[0]["type"] == "dense" else (6, 6, 1)
    x, y = batch(shape)
    ref, net = build("symmetric", model, shape), build("dfa", model, shape)
    ref.fused = False          # DFA's wiring runs each layer's own feedback: so does the reference
    hidden = kernel_layers(net)[0]
    hidden.state["feedback_kernel"][...] = net.output_layer.params["kernel"].T
    assert_same_grads(grads(net, x, y, train), grads(ref, x, y, train))


# ---------------------------------------------------------------------------- random

LAYERS = ([("dense", {"type": "dense", "units": 4}, (6,))]
          + [(f"conv-{p}-s{s}", {"type": "conv2d", "filters": 3, "kernel": 3, "stride": s, "padding": p}, (7, 6, 2))
             for p in ("same", "valid") for s in (1, 2)]
          + [(f"lc-{p}-s{s}", {"type": "locally_connected2d", "filters": 3, "kernel": 3, "stride": s, "padding": p},
              (7, 6, 2)) for p in ("same", "valid") for s in (1, 2)])


@pytest.mark.parametrize("name, spec, shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_random_input_feedback_is_the_transposed_operation_with_b(name, spec, shape):
    """fb_in = ∂⟨fb, layer(x; B)⟩/∂x (finite differences, exact for a linear map); tags unchanged."""
    model = [dict(spec, feedback="random")] + ([] if spec["type"] == "dense" else [{"type": "flatten"}])
    net = build("symmetric", model, shape)
    layer = net.layers[0]
    assert layer.feedback_mode == "random" and net.output_layer.feedback_mode == "symmetric"
    x = np.random.default_rng(1).standard_normal((3,) + shape)
    layer.forward(x, train=True)
    fb = np.random.default_rng(2).standard_normal((3,) + layer.output_shape)
    fb_in = layer.feedback(fb.copy(), need_input_fb=True)
    tags = layer.grads["kernel"].copy()

    twin = build("symmetric", [spec] + model[1:], shape)       # the same layer with W := B
    twin_layer = twin.layers[0]
    b = layer.state["feedback_kernel"]
    assert b.shape == layer.params["kernel"].shape and not np.array_equal(b, layer.params["kernel"])
    twin_layer.params["kernel"][...] = b
    xx = x.copy()
    numeric = numerical_grad(lambda: float((twin_layer.forward(xx, train=True) * fb).sum()), xx,
                             np.arange(xx.size), eps=1e-5).reshape(x.shape)
    assert rel_error(fb_in, numeric) < 1e-8

    sym = build("symmetric", [spec] + model[1:], shape).layers[0]  # tags: pre × fb with the same W
    sym.forward(x, train=True)
    sym.feedback(fb.copy(), need_input_fb=True)
    np.testing.assert_array_equal(tags, sym.grads["kernel"])


def test_random_b_is_fixed_seeded_and_not_learned():
    x, y = batch()
    net, again = build("random"), build("random")
    b0 = {l.name: l.state["feedback_kernel"].copy() for l in kernel_layers(net)}
    for l in kernel_layers(again):
        np.testing.assert_array_equal(l.state["feedback_kernel"], b0[l.name])
    other = build("random", seed=3)
    assert not np.array_equal(kernel_layers(other)[0].state["feedback_kernel"], b0["conv2d"])
    g = grads(net, x, y)
    assert all("feedback_kernel" not in d for d in g.values())
    bp.SGD(lr=0.1).step(net, 0.1)
    for l in kernel_layers(net):
        np.testing.assert_array_equal(l.state["feedback_kernel"], b0[l.name])
        assert np.std(l.state["feedback_kernel"]) == pytest.approx(0.3, rel=0.5)    # N(0, init_std²)


def test_per_layer_mode_in_a_spec_overrides_the_global_one():
    model = [dict(NET[0], feedback="sign")] + NET[1:8] + [dict(NET[8], feedback="symmetric")] + NET[9:]
    net = build("kolen_pollack", model)
    assert F.modes(net) == {"conv2d": "sign", "locally_connected2d": "kolen_pollack", "dense": "symmetric",
                            "brain_prop_layer": "kolen_pollack"}


# ---------------------------------------------------------------------------- kolen_pollack

def test_kolen_pollack_b_gets_the_kernels_gradient_and_update():
    x, y = batch()
    lam, lr, l2 = 0.05, 0.1, 0.01
    net = build("kolen_pollack", feedback_decay=lam)
    g = grads(net, x, y, train=True)
    gap0 = {}
    for layer in kernel_layers(net):
        d = g[layer.name]
        assert set(d) >= {"kernel", "feedback_kernel"}
        np.testing.assert_array_equal(d["feedback_kernel"], d["kernel"])
        gap0[layer.name] = layer.params["kernel"] - layer.params["feedback_kernel"]
    w0 = {l.name: l.params["kernel"].copy() for l in kernel_layers(net)}
    bp.SGD(lr=lr, l2=l2).step(net, lr)
    decay = 1 - 2 * lr * l2 - lr * lam
    for layer in kernel_layers(net):
        np.testing.assert_allclose(layer.params["kernel"], w0[layer.name] * decay - lr * g[layer.name]["kernel"],
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.params["kernel"] - layer.params["feedback_kernel"],
                                   gap0[layer.name] * decay, rtol=1e-9, atol=1e-14)


def test_kolen_pollack_w_b_angle_falls_in_a_short_run(tmp_path):
    """3 epochs of 600 images (57 steps); weights N(0, 0.05²) and lr 0.3 so that the shared
    updates outgrow the initial W and B within the run (at the paper's 0.005 and 0.1 they
    take far longer: the first updates of BrainProp are tiny)."""
    cfg = _config(epochs=3, feedback="kolen_pollack", feedback_decay=0.1, limit_train=600)
    cfg["train"].update(lr=0.3, batch_size=32, init_std=0.05)
    T.train(cfg, out=tmp_path / "kp", verbose=False, progress=False)
    rows = _alignment(tmp_path / "kp")
    for layer in ("conv2d", "dense", "brain_prop_layer"):
        angles = [float(r["weight_angle"]) for r in rows if r["layer"] == layer]
        assert len(angles) == 4                      # epoch 0 (initial) .. 3
        assert angles[-1] < angles[0] - 5.0, (layer, angles)


# ---------------------------------------------------------------------------- sign

@pytest.mark.parametrize("scale", ["rms", "random"])
def test_sign_b_has_ws_signs_and_follows_them(scale):
    x, y = batch()
    net = build("sign", feedback_sign=scale)
    layers = kernel_layers(net)
    mags = {l.name: np.abs(l.state["feedback_kernel"]).copy() for l in layers}
    for l in layers:
        w, b = l.params["kernel"], l.state["feedback_kernel"]
        l.params["kernel"][...] = np.where(np.arange(w.size).reshape(w.shape) % 3 == 0, -w, w)   # flip a third
        l.params["kernel"].reshape(-1)[0] = -0.0
    grads(net, x, y)
    for l in layers:
        w, b = l.params["kernel"], l.state["feedback_kernel"]
        if l is layers[0]:
            l.refresh_sign()     # the first layer sends no feedback to the image: B is refreshed on use
        np.testing.assert_array_equal(np.signbit(b), np.signbit(w))
        if scale == "rms":
            np.testing.assert_allclose(np.abs(b), np.sqrt(np.mean(w * w)), rtol=1e-12)
        else:
            np.testing.assert_array_equal(np.abs(b), mags[l.name])      # frSF: a fixed |R|


# ---------------------------------------------------------------------------- dfa

@pytest.mark.parametrize("train", [False, True])
def test_dfa_each_block_gets_fb_out_times_its_b_gated_by_its_own_units(train, monkeypatch):
    x, y = batch()
    net = build("dfa")
    arrived = {}
    for layer in kernel_layers(net):
        real = layer.feedback

        def spy(fb, need_input_fb=True, real=real, name=layer.name):
            arrived[name] = (fb.copy(), need_input_fb)
            return real(fb, need_input_fb)
        monkeypatch.setattr(layer, "feedback", spy)
    q = net.forward(x, train)
    _, _, fb_out = net.backend.kernels.brainprop_output(q, y, y, 1.0 / len(y))
    net.feedback(fb_out)
    L = net.layers
    conv, bn, lc, dense = L[0], L[2], L[4], L[8]
    assert {n: a[1] for n, a in arrived.items()} == {"conv2d": False, "locally_connected2d": False,
                                                      "dense": False, "brain_prop_layer": False}
    # dense block: dense → relu (top: layer 9)
    d = fb_out @ dense.state["feedback_kernel"]
    np.testing.assert_allclose(arrived["dense"][0], d * (L[9].post > 0), rtol=1e-13, atol=1e-18)
    # lc block: lc → relu → dropout(0) → flatten (top: layer 7), gated by its relu
    d = (fb_out @ lc.state["feedback_kernel"]).reshape((len(y),) + lc.output_shape)
    np.testing.assert_allclose(arrived["locally_connected2d"][0], d * (L[5].post > 0), rtol=1e-13, atol=1e-18)
    # conv block: conv → relu → batchnorm → maxpool (top: layer 3), gated by its pool, BN and relu
    d = (fb_out @ conv.state["feedback_kernel"]).reshape((len(y),) + L[3].output_shape)
    d = L[3].feedback(d)
    g = bn.params["gamma"] * bn.inv_std
    if train:
        d = g * (d - d.mean(axis=(0, 1, 2)) - bn.xhat * (d * bn.xhat).mean(axis=(0, 1, 2)))
    else:
        d = g * d
    np.testing.assert_allclose(arrived["conv2d"][0], d * (L[1].post > 0), rtol=1e-10, atol=1e-16)
    assert conv.state["feedback_kernel"].shape == (5, int(np.prod(L[3].output_shape)))
    assert "feedback_kernel" not in net.output_layer.state


def test_dfa_under_the_output_alone_is_feedback_alignment():
    model = [{"type": "dense", "units": 4, "feedback": "symmetric"}, {"type": "relu"}]
    net = build("dfa", model, (5,))
    assert F.modes(net) == {"dense": "symmetric", "brain_prop_layer": "random"}


# ---------------------------------------------------------------------------- files, resume, config

def _config(epochs=2, limit_train=300, **extra):
    from shared_data import mnist_root
    root = mnist_root()
    data = ({"name": "mnist", "root": root, "download": False, "fallback": "none"} if root
            else {"name": "mnist_sample"})
    data.update(limit_train=limit_train, limit_test=200)
    model = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
             {"type": "relu"}, {"type": "batchnorm"}, {"type": "dropout", "rate": 0.3},
             {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"},
             {"type": "dropout", "rate": 0.3}]
    cfg = {"name": "untied", "device": "cpu", "seed": 3, "model": model, "data": data,
           "train": {"epochs": epochs, "batch_size": 64, "eval_batch_size": 100}}
    cfg.update(extra)
    return cfg


def _alignment(run_dir):
    with open(Path(run_dir) / "alignment.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("mode", UNTIED)
def test_weights_and_checkpoints_hold_b(mode, tmp_path):
    net = build(mode)
    w = net.get_weights()
    holders = [n for n, a in w.items() if "feedback_kernel" in a]
    assert holders == ([l.name for l in kernel_layers(net)] if mode != "dfa" else
                       ["conv2d", "locally_connected2d", "dense"])
    save_weights(tmp_path / "w.npz", net)
    again = build(mode, seed=9)
    again.set_weights(read_weights(tmp_path / "w.npz"))
    for n in holders:
        np.testing.assert_array_equal(again.get_weights()[n]["feedback_kernel"], w[n]["feedback_kernel"])
    with pytest.raises(ValueError, match="lack 'feedback_kernel'"):
        again.set_weights(build("symmetric").get_weights())
    sym = build("symmetric", seed=5).get_weights()
    again.set_weights(sym, keep_feedback=True)          # forward weights only: B stays as it was
    np.testing.assert_array_equal(again.get_weights()[holders[0]]["feedback_kernel"], w[holders[0]]["feedback_kernel"])


def test_keras_files_hold_forward_weights_only(tmp_path, caplog):
    pytest.importorskip("h5py")
    net = build("random")
    bp.save_keras_weights(net, tmp_path / "w.h5")
    sym = build("symmetric", seed=7)
    bp.load_keras_weights(sym, tmp_path / "w.h5")       # a symmetric network reads it as usual
    other = build("random", seed=7)
    b = kernel_layers(other)[0].state["feedback_kernel"].copy()
    with caplog.at_level("WARNING"):
        info = bp.load_keras_weights(other, tmp_path / "w.h5")
    np.testing.assert_array_equal(kernel_layers(other)[0].state["feedback_kernel"], b)
    np.testing.assert_allclose(kernel_layers(other)[0].params["kernel"], kernel_layers(net)[0].params["kernel"],
                               rtol=1e-6)     # the file holds float32
    lines = [r.getMessage() for r in caplog.records if "stay as drawn" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and any("stay as drawn" in n for n in info.notes)


@pytest.mark.parametrize("mode", UNTIED)
def test_resume_is_bit_exact(mode, tmp_path, monkeypatch):
    """Uninterrupted vs (1 epoch, resume) vs (SIGINT after batch 3 of 5, resume)."""
    import test_train as TT
    cfg = _config(feedback=mode)
    T.train(cfg, out=tmp_path / "ref", verbose=False, progress=False)
    T.train(_config(epochs=1, feedback=mode), out=tmp_path / "a", verbose=False, progress=False)
    T.train(resume=tmp_path / "a", overrides=["train.epochs=2"], verbose=False, progress=False)
    real = T.make_rule
    class KillAfter(TT._KillAfter):
        def __getattr__(self, name):            # gradients() for the alignment check
            return getattr(self.rule, name)
    monkeypatch.setattr(T, "make_rule", lambda *a, **k: KillAfter(real(*a, **k), 3))
    assert T.train(cfg, out=tmp_path / "b", verbose=False, progress=False).interrupted
    monkeypatch.setattr(T, "make_rule", real)
    T.train(resume=tmp_path / "b", verbose=False, progress=False)
    for other in ("a", "b"):
        TT._same_run(tmp_path / "ref", tmp_path / other)
        assert _alignment(tmp_path / "ref") == _alignment(tmp_path / other)
    w, _, _ = load_checkpoint(tmp_path / "ref" / "checkpoint.npz")
    assert any("feedback_kernel" in a for a in w.values())


def test_alignment_csv_and_switching_it_off_changes_nothing_else(tmp_path):
    T.train(_config(feedback="random"), out=tmp_path / "on", verbose=False, progress=False)
    T.train(_config(feedback="random", alignment=False), out=tmp_path / "off", verbose=False, progress=False)
    T.train(_config(), out=tmp_path / "sym", verbose=False, progress=False)
    assert not (tmp_path / "off" / "alignment.csv").exists() and not (tmp_path / "sym" / "alignment.csv").exists()
    import test_train as TT
    TT._same_run(tmp_path / "on", tmp_path / "off")
    rows = _alignment(tmp_path / "on")
    assert [r["epoch"] for r in rows] == [str(e) for e in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
    assert {r["layer"] for r in rows} == {"conv2d", "dense", "brain_prop_layer"}
    for r in rows:
        assert 0 <= float(r["weight_angle"]) <= 180 and 0 <= float(r["grad_angle"]) <= 180
        if r["layer"] == "brain_prop_layer":          # the output's tags are exact in every mode
            assert float(r["grad_angle"]) < 1e-3
    from brainprop_np.run.plot import main
    assert main([str(tmp_path / "on"), "--alignment", "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert main([str(tmp_path / "sym"), "--alignment", "--out", str(tmp_path / "b.png")]) == 1


def test_alignment_rows_measure_angles():
    x, y = batch()
    net = build("sign")
    rows = F.alignment(net, bp.BrainProp(), x, y, epoch=4)
    by = {r["layer"]: r for r in rows}
    expect = math.degrees(math.acos(math.sqrt(2 / math.pi)))        # ∠(W, sign W) for Gaussian W: ≈ 37°
    assert by["dense"]["weight_angle"] == pytest.approx(expect, abs=15)
    assert by["brain_prop_layer"]["grad_angle"] == pytest.approx(0, abs=1e-6)
    assert all(r["epoch"] == 4 and r["mode"] == "sign" for r in rows)
    assert F.angle(np.array([1.0, 0]), np.array([0, 2.0])) == pytest.approx(90)
    assert F.angle(np.array([1.0, 1e-9]), np.array([1.0, 0])) == pytest.approx(math.degrees(1e-9), rel=1e-6)


@pytest.mark.parametrize("args, words", [
    (["feedback=bogus"], ["feedback='bogus'", "symmetric, random, sign, kolen_pollack, dfa"]),
    (["feedback_sign=abs"], ["feedback_sign='abs'", "rms, random"]),
    (["feedback_decay=-1"], ["feedback_decay=-1", ">= 0"]),
    (["model=[{type: dense, units: 4, feedback: mirror}]"], ["feedback='mirror'", "kolen_pollack"]),
    (["model=[{type: flatten}, {type: relu, feedback: random}]"], ["unknown key 'feedback'", "relu"]),
    (["model=[{type: flatten}, {type: dense, units: 4, feedbak: random}]"], ["unknown key 'feedbak'", "feedback"]),
    (["feedback=dfa", "model=[{type: flatten}, {type: dense, units: 4, feedback: random}, {type: dense, units: 4}]"],
     ["model layer 1 (dense): feedback='random' below the dfa layer 2", "no feedback"]),
])
def test_bad_modes_and_keys_exit_2_with_one_line(tmp_path, monkeypatch, capsys, args, words):
    import yaml
    import run
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config()))
    code = run.main([str(path), "-q", "--out", str(tmp_path / "run")] + args)   # stops while reading the config
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    for w in words:
        assert w in err[0], err[0]


def test_build_network_rejects_a_bad_mode_in_one_line():
    with pytest.raises(ValueError, match=r"^feedback='fa' is not allowed; use one of symmetric, random"):
        build("fa")


def test_explain_shows_each_layers_mode_and_alignment():
    from brainprop_np.teach.explain import explain_config
    cfg = {"name": "e", "model": [{"type": "flatten"}, {"type": "dense", "units": 8}, {"type": "relu"}],
           "data": {"name": "mnist_sample"}, "feedback": "random"}
    trace, text, _ = explain_config(cfg)
    assert [(n, m) for n, m, _ in trace.feedback] == [("brain_prop_layer", "random"), ("dense", "random")]
    assert trace.feedback[0][2] < 1e-6 and trace.feedback[1][2] > 1
    assert "untied feedback" in text and "∠(ΔW, gradient)" in text
    cfg["feedback"] = "dfa"
    trace, text, _ = explain_config(cfg)
    assert [m for _, m, _ in trace.feedback] == ["dfa", "dfa"] and not trace.input_fb_map.any()
    cfg["feedback"] = "symmetric"
    trace, text, _ = explain_config(cfg)
    assert not trace.feedback and "untied" not in text


UNTIED_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "untied").glob("*.yaml"))


def test_untied_configs_ship_for_conv_and_loccon_in_every_mode():
    assert {p.stem for p in UNTIED_CONFIGS} == {f"mnist_{n}_{m}" for n in ("conv", "loccon") for m in F.MODES}


@pytest.mark.parametrize("path", UNTIED_CONFIGS, ids=lambda p: p.stem)
def test_untied_config_is_the_papers_config_but_for_its_feedback(path):
    from brainprop_np.run.config import load_config
    _, net, mode = path.stem.split("_", 2)
    cfg = load_config(path)
    ref = load_config(path.parents[1] / f"mnist_{net}.yaml")
    assert (cfg["name"], cfg["model"], cfg["feedback"], cfg["alignment"]) == (path.stem, net, mode, True)
    for key in ("name", "feedback"):
        cfg.pop(key), ref.pop(key)
    assert cfg == ref


def test_a_resume_may_not_change_the_feedback_but_may_switch_alignment():
    from brainprop_np.run.config import ConfigError, check_resume_overrides, resolve
    old = resolve(_config(feedback="random"))
    check_resume_overrides(old, resolve(old, ["alignment=false"]))
    for key in ("feedback=sign", "feedback_decay=0.1", "feedback_sign=random"):
        with pytest.raises(ConfigError, match="not allowed when resuming"):
            check_resume_overrides(old, resolve(old, [key]))
