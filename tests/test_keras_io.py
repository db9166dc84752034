"""Keras .h5 weight files (legacy format of model.save_weights): round trips, files laid out
as Keras writes them, and a clear one-line error for every kind of mismatch."""
import os
import sys

import numpy as np
import pytest

import brainprop_np as bp
from brainprop_np import keras_io

h5py = pytest.importorskip("h5py")

SHAPES = {"dense": (8, 8, 1), "conv": (12, 12, 1), "loccon": (12, 12, 1), "deep": (16, 16, 3)}


def randomize(net, seed=0):
    """Distinct values in every array, BatchNorm's moving statistics included."""
    rng = np.random.default_rng(seed)
    w = net.get_weights()
    for arrays in w.values():
        for name, a in arrays.items():
            if name in ("gamma", "moving_variance"):
                a[...] = rng.uniform(0.5, 2.0, a.shape)
            elif name in ("beta", "moving_mean"):
                a[...] = rng.uniform(-0.5, 0.5, a.shape)
            else:
                fan_in = a.shape[1] if a.ndim == 3 else int(np.prod(a.shape[:-1]))
                a[...] = rng.standard_normal(a.shape) * 1.5 / np.sqrt(fan_in)
    net.set_weights(w)
    return net


def small(model, algorithm="brainprop", seed=1, shape=None, n_classes=10, dtype="float32"):
    return bp.build_network(model, shape or SHAPES[model], n_classes, seed=seed, device="cpu",
                            dtype=dtype, algorithm=algorithm)


def write_keras_file(path, layer_names, weights, root_group=None):
    """Write a file the way Keras 2.15's save_weights_to_hdf5_group does, independently of
    brainprop_np: `weights` maps a layer name to [(weight name, array)]."""
    with h5py.File(path, "w") as f:
        g0 = f if root_group is None else f.create_group(root_group)
        g0.attrs["layer_names"] = [n.encode("utf8") for n in layer_names]
        g0.attrs["backend"] = "tensorflow".encode("utf8")
        g0.attrs["keras_version"] = "2.15.0".encode("utf8")
        for name in sorted(layer_names):
            g = g0.create_group(name)
            arrays = weights.get(name, [])
            g.attrs["weight_names"] = [wn.encode("utf8") for wn, _ in arrays]
            for wn, a in arrays:
                g.create_dataset(wn, a.shape, dtype=np.float32)[...] = a
        g0.create_group("top_level_model_weights").attrs["weight_names"] = []


def keras_file_from_net(path, net, rename=None, drop=(), root_group=None):
    """A Keras-style file holding `net`'s weights; rename maps network → file layer names."""
    rename = rename or {}
    names = [rename.get(l.name, l.name) for l in net.layers if l.name not in drop]
    weights = {rename.get(ln, ln): [(f"{rename.get(ln, ln)}/{k}:0", a) for k, a in arrays.items()]
               for ln, arrays in net.get_weights().items() if ln not in drop}
    write_keras_file(path, names, weights, root_group)
    return path


def keras_style_read(path):
    """What Keras's load_weights_from_hdf5_group reads: [(layer, [arrays])] for the layers
    that have weights, in layer_names order (attributes decoded as Keras decodes them)."""
    def strings(obj, name):
        return [n.decode("utf8") if hasattr(n, "decode") else n for n in obj.attrs[name]]
    out = []
    with h5py.File(path, "r") as f:
        for name in strings(f, "layer_names"):
            g = f[name]
            wnames = strings(g, "weight_names")
            if wnames:
                out.append((name, [np.asarray(g[wn]) for wn in wnames]))
    return out


def assert_same(a, b):
    assert list(a) == list(b)
    for ln in a:
        assert list(a[ln]) == list(b[ln]), ln
        for k in a[ln]:
            assert a[ln][k].dtype == b[ln][k].dtype
            np.testing.assert_array_equal(a[ln][k], b[ln][k], err_msg=f"{ln}/{k}")


def one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
@pytest.mark.parametrize("model", ["dense", "conv", "loccon", "deep"])
def test_round_trip(tmp_path, model, algorithm):
    src = randomize(small(model, algorithm, seed=1))
    path = tmp_path / f"{model}_{algorithm}.h5"
    assert bp.save_keras_weights(src, path) == str(path)
    dst = small(model, algorithm, seed=2)
    info = bp.load_keras_weights(dst, path)
    assert_same(dst.get_weights(), src.get_weights())
    assert info.renamed == [] and info.notes == []
    assert info.keras_version == "2.15.0" and info.backend == "tensorflow"
    x = np.random.default_rng(3).uniform(0, 1, (2,) + SHAPES[model]).astype(np.float32)
    np.testing.assert_array_equal(dst.forward(x, train=False), src.forward(x, train=False))
    # what Keras's own loader would read: every layer with weights, in order, float32
    read = keras_style_read(path)
    expected = src.get_weights()
    assert [n for n, _ in read] == list(expected)
    for (ln, arrays), ref in zip(read, expected.values()):
        assert len(arrays) == len(ref)
        for a, r in zip(arrays, ref.values()):
            assert a.dtype == np.float32
            np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("model", ["conv", "deep"])
def test_saved_layout_follows_keras(tmp_path, model):
    net = randomize(small(model))
    path = bp.save_keras_weights(net, tmp_path / "w.h5")
    with h5py.File(path, "r") as f:
        names = [l.name for l in net.layers]
        ln = f.attrs["layer_names"]
        assert isinstance(ln, np.ndarray) and list(ln) == names
        t = f.attrs.get_id("layer_names").get_type()        # variable-length bytes, as Keras
        assert t.is_variable_str() and t.get_cset() == h5py.h5t.CSET_ASCII
        for key, val in (("backend", "tensorflow"), ("keras_version", "2.15.0")):
            assert f.attrs[key] == val
            assert f.attrs.get_id(key).get_type().is_variable_str()
        assert sorted(f.keys()) == sorted(names + ["top_level_model_weights"])
        weights = net.get_weights()
        for name in names:
            wn = f[name].attrs["weight_names"]
            if name in weights:
                assert list(wn) == [f"{name}/{k}:0" for k in weights[name]]
                for k in weights[name]:
                    ds = f[f"{name}/{name}/{k}:0"]
                    assert ds.dtype == np.float32 and ds.shape == weights[name][k].shape
            else:   # a weightless layer: an empty float64 array, as h5py stores Keras's []
                assert wn.shape == (0,) and wn.dtype == np.float64
        bn = [n for n in names if n.startswith("batch_normalization")][0]
        assert [s.rsplit("/", 1)[1] for s in f[bn].attrs["weight_names"]] == [
            "gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"]
        assert len(f["top_level_model_weights"].attrs["weight_names"]) == 0


def test_float64_network_saves_float32(tmp_path):
    net = randomize(small("conv", dtype="float64"))
    path = bp.save_keras_weights(net, tmp_path / "w.h5")
    back = small("conv", dtype="float64", seed=5)
    bp.load_keras_weights(back, path)
    for ln, arrays in net.get_weights().items():
        for k, a in arrays.items():
            np.testing.assert_array_equal(back.get_weights()[ln][k], a.astype(np.float32).astype(np.float64))


def test_layer_list_network(tmp_path):
    specs = [{"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
             {"type": "relu"}, {"type": "batchnorm"},
             {"type": "locally_connected2d", "filters": 3, "kernel": 3, "stride": 1, "padding": "valid"},
             {"type": "maxpool2d", "pool": 2}, {"type": "flatten"},
             {"type": "dense", "units": 7}, {"type": "relu"}, {"type": "dense", "units": 5}]
    for algorithm in ("brainprop", "ebp"):
        src = randomize(bp.build_network(specs, (10, 10, 2), 3, seed=1, device="cpu", algorithm=algorithm))
        path = bp.save_keras_weights(src, tmp_path / f"{algorithm}.h5")
        dst = bp.build_network(specs, (10, 10, 2), 3, seed=2, device="cpu", algorithm=algorithm)
        bp.load_keras_weights(dst, path)
        assert_same(dst.get_weights(), src.get_weights())
    assert list(dst.get_weights())[-1] == "dense_2"   # EBP's output layer is the next dense_N


def test_save_replaces_atomically(tmp_path, monkeypatch):
    net = randomize(small("dense"))
    path = tmp_path / "w.h5"
    path.write_bytes(b"old contents")
    bp.save_keras_weights(net, path)
    assert h5py.is_hdf5(path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask   # not mkstemp's 0600
    before = path.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(keras_io, "_write_str_list", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        bp.save_keras_weights(net, path)
    assert path.read_bytes() == before                    # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]   # no temporary left


def test_long_string_lists_are_chunked_as_keras_does(tmp_path):
    names = [f"activation_{i}" for i in range(6000)]       # > 64512 bytes as fixed-length
    with h5py.File(tmp_path / "a.h5", "w") as f:
        keras_io._write_str_list(h5py, f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs and "layer_names1" in f.attrs
        assert keras_io._read_str_list(f, "layer_names") == names


# ---------------------------------------------------------------------------- files written the Keras way

def cifar_deep_names():
    """The original code's deep Sequential model: Keras's default names in order."""
    names, c = [], {}

    def add(kind):
        n = c.get(kind, 0)
        c[kind] = n + 1
        names.append(kind if n == 0 else f"{kind}_{n}")
        return names[-1]
    blocks = [2, 2, 3]
    for i, nb in enumerate(blocks):
        for _ in range(nb):
            add("conv2d"), add("activation"), add("batch_normalization")
        add("max_pooling2d"), add("dropout")
    add("flatten"), add("dense"), add("activation"), add("dropout")
    names.append("brain_prop_layer")
    return names


def reference_forward(names, weights, x):
    """An independent float64 forward pass that interprets the Keras file's layers in order."""
    h = x.astype(np.float64)
    for name in names:
        arrays = [a.astype(np.float64) for _, a in weights.get(name, [])]
        kind = name.rstrip("0123456789").rstrip("_")
        if kind == "conv2d":                            # 3x3, stride 1, same
            k = arrays[0]
            hp = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
            H, W = h.shape[1:3]
            h = sum(np.einsum("nhwc,cf->nhwf", hp[:, dy:dy + H, dx:dx + W], k[dy, dx])
                    for dy in range(3) for dx in range(3))
        elif kind == "activation":
            h = np.maximum(h, 0.0)
        elif kind == "batch_normalization":
            g, b, m, v = arrays
            h = g * (h - m) / np.sqrt(v + 1e-3) + b
        elif kind == "max_pooling2d":
            n, H, W, C = h.shape
            h = h[:, :H // 2 * 2, :W // 2 * 2].reshape(n, H // 2, 2, W // 2, 2, C).max(axis=(2, 4))
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        elif kind in ("dense", "brain_prop_layer"):
            h = h @ arrays[0]
        elif kind != "dropout":
            raise AssertionError(name)
    return h


def deep_cifar_file(path, n_classes=10, seed=0):
    """Random weights in a file laid out like the published CIFAR models (32x32x3)."""
    rng = np.random.default_rng(seed)
    names = cifar_deep_names()
    weights, c_in = {}, 3
    for name in names:
        if name.startswith("conv2d"):
            c_out = 64 if name in ("conv2d", "conv2d_1") else 128
            k = rng.standard_normal((3, 3, c_in, c_out)) * 1.5 / np.sqrt(9 * c_in)
            weights[name] = [(f"{name}/kernel:0", k.astype(np.float32))]
            c_in = c_out
        elif name.startswith("batch_normalization"):
            weights[name] = [(f"{name}/{v}:0", rng.uniform(lo, hi, c_in).astype(np.float32))
                             for v, lo, hi in (("gamma", 0.5, 1.5), ("beta", 0, 0.5),
                                               ("moving_mean", 0, 0.5), ("moving_variance", 0.5, 2))]
        elif name == "dense":
            weights[name] = [("dense/kernel:0", (rng.standard_normal((4 * 4 * 128, 500)) / 40).astype(np.float32))]
        elif name == "brain_prop_layer":
            weights[name] = [("brain_prop_layer/kernel:0", (rng.standard_normal((500, n_classes)) / 20).astype(np.float32))]
    write_keras_file(path, names, weights)
    return names, weights


@pytest.mark.parametrize("algorithm", ["brainprop", "ebp"])
def test_deep_cifar_layout_loads_and_evaluates(tmp_path, algorithm):
    names, weights = deep_cifar_file(tmp_path / "CIFAR10_deep_BrainProp_weights.h5")
    x = np.random.default_rng(1).uniform(0, 1, (3, 32, 32, 3))
    ref = reference_forward(names, weights, x)
    net64 = bp.build_network("deep", (32, 32, 3), 10, seed=1, device="cpu", dtype="float64", algorithm=algorithm)
    assert [l.name for l in net64.layers][:-1] == names[:-1]
    info = bp.load_keras_weights(net64, tmp_path / "CIFAR10_deep_BrainProp_weights.h5")
    if algorithm == "brainprop":
        assert info.renamed == []
    else:
        assert info.renamed == [("brain_prop_layer", "dense_1")]
    w = net64.get_weights()
    for name, arrays in weights.items():
        for (wn, a), k in zip(arrays, w[name if name != "brain_prop_layer" else list(w)[-1]]):
            assert wn.endswith(f"/{k}:0")
    q = net64.forward(x, train=False)
    assert q.shape == (3, 10)
    np.testing.assert_allclose(q, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    net32 = bp.build_network("deep", (32, 32, 3), 10, seed=1, device="cpu", algorithm=algorithm)
    bp.load_keras_weights(net32, tmp_path / "CIFAR10_deep_BrainProp_weights.h5")
    q32 = net32.forward(x.astype(np.float32), train=False)
    assert np.all(np.isfinite(q32))
    np.testing.assert_allclose(q32, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_other_layer_names_load_by_order(tmp_path):
    """A Keras session that had built a model before names its layers dense_3, dense_4, ..."""
    src = randomize(small("dense"))
    rename = {"dense": "dense_3", "dense_1": "dense_4", "dense_2": "dense_5", "flatten": "flatten_1",
              "activation": "activation_3", "activation_1": "activation_4", "activation_2": "activation_5",
              "brain_prop_layer": "brain_prop_layer_1"}
    path = keras_file_from_net(tmp_path / "w.h5", src, rename=rename)
    dst = small("dense", seed=2)
    info = bp.load_keras_weights(dst, path)
    assert_same(dst.get_weights(), src.get_weights())
    assert info.renamed == [("dense_3", "dense"), ("dense_4", "dense_1"), ("dense_5", "dense_2"),
                            ("brain_prop_layer_1", "brain_prop_layer")]
    assert "'dense_3' → network layer 'dense'" in str(info)


@pytest.mark.parametrize("file_alg,net_alg", [("brainprop", "ebp"), ("ebp", "brainprop")])
def test_output_layer_loads_across_rules(tmp_path, file_alg, net_alg):
    src = randomize(small("conv", file_alg))
    path = keras_file_from_net(tmp_path / "w.h5", src)
    dst = small("conv", net_alg, seed=2)
    info = bp.load_keras_weights(dst, path)
    a, b = src.get_weights(), dst.get_weights()
    for (ka, va), (kb, vb) in zip(a.items(), b.items()):
        for k in va:
            np.testing.assert_array_equal(va[k], vb[k])
    out_file, out_net = list(a)[-1], list(b)[-1]
    assert {out_file, out_net} == {"brain_prop_layer", "dense_1"}
    assert info.renamed == [(out_file, out_net)]


def test_full_model_file_reads_model_weights_group(tmp_path):
    src = randomize(small("loccon"))
    path = keras_file_from_net(tmp_path / "model.h5", src, root_group="model_weights")
    dst = small("loccon", seed=2)
    bp.load_keras_weights(dst, path)
    assert_same(dst.get_weights(), src.get_weights())


# ---------------------------------------------------------------------------- mismatches

def assert_unchanged(net, before):
    assert_same(net.get_weights(), before)


def test_shape_mismatch_names_layer_and_shapes(tmp_path):
    path = bp.save_keras_weights(randomize(small("conv", shape=(12, 12, 1))), tmp_path / "w.h5")
    net = small("conv", shape=(14, 14, 1), seed=2)
    before = net.get_weights()
    with pytest.raises(keras_io.KerasWeightsError) as e:
        bp.load_keras_weights(net, path)
    msg = one_line(e)
    assert isinstance(e.value, ValueError)
    assert "'dense'" in msg and "kernel" in msg
    assert "expected shape (1568, 500)" in msg and "found (1152, 500)" in msg
    assert_unchanged(net, before)      # conv2d..batch_normalization_1 fitted: nothing was set


def test_output_shape_mismatch(tmp_path):
    path = bp.save_keras_weights(randomize(small("dense", n_classes=10)), tmp_path / "w.h5")
    net = small("dense", "ebp", n_classes=5)
    before = net.get_weights()
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(net, path)
    msg = one_line(e)
    assert "'dense_3'" in msg and "'brain_prop_layer'" in msg
    assert "expected shape (500, 5)" in msg and "found (500, 10)" in msg
    assert_unchanged(net, before)


def test_wrong_kind_of_layer(tmp_path):
    path = bp.save_keras_weights(randomize(small("conv")), tmp_path / "w.h5")
    net = small("loccon", seed=2)
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(net, path)
    msg = one_line(e)
    assert "'locally_connected2d'" in msg and "(file layer 'conv2d')" in msg
    assert "expected shape (100, 9, 32)" in msg and "found (3, 3, 1, 32)" in msg


def test_missing_layer(tmp_path):
    src = randomize(small("dense"))
    path = keras_file_from_net(tmp_path / "w.h5", src, drop=("dense_1", "activation_1"))
    net = small("dense", seed=2)
    before = net.get_weights()
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(net, path)
    msg = one_line(e)
    assert "'dense_1'" in msg and "missing" in msg and "expected kernel (1500, 1000)" in msg
    assert "found no matching layer" in msg
    assert_unchanged(net, before)


def test_missing_output_layer(tmp_path):
    src = randomize(small("conv"))
    path = keras_file_from_net(tmp_path / "w.h5", src, drop=("brain_prop_layer",))
    with pytest.raises(ValueError, match=r"'brain_prop_layer' is missing.*expected kernel \(500, 10\)") as e:
        bp.load_keras_weights(small("conv", seed=2), path)
    one_line(e)


def test_extra_layer_in_file(tmp_path):
    flat = [{"type": "flatten"}, {"type": "dense", "units": 20}, {"type": "relu"}]
    src = randomize(bp.build_network(flat + [{"type": "dense", "units": 20}, {"type": "relu"}],
                                     SHAPES["dense"], 10, device="cpu"))
    path = bp.save_keras_weights(src, tmp_path / "w.h5")
    net = bp.build_network(flat, SHAPES["dense"], 10, device="cpu")
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(net, path)
    msg = one_line(e)
    assert "file layer 'dense_1' has no counterpart in the network: expected no layer, found kernel (20, 20)" in msg


def test_different_architecture(tmp_path):
    path = bp.save_keras_weights(randomize(small("conv", shape=(28, 28, 1))), tmp_path / "w.h5")
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(small("dense", shape=(28, 28, 1)), path)
    msg = one_line(e)
    assert "the file has 6 layers with weights" in msg and "the network 4" in msg
    assert "network layer 'dense': expected kernel (784, 1500), found file layer 'conv2d' with kernel (3, 3, 1, 32)" in msg


def test_missing_array_in_layer(tmp_path):
    src = randomize(small("conv"))
    path = keras_file_from_net(tmp_path / "w.h5", src)
    with h5py.File(path, "a") as f:     # a BatchNorm(scale=False)-like layer: no gamma
        g = f["batch_normalization"]
        g.attrs["weight_names"] = [n for n in g.attrs["weight_names"] if "gamma" not in n]
    with pytest.raises(ValueError) as e:
        bp.load_keras_weights(small("conv", seed=2), path)
    msg = one_line(e)
    assert "'batch_normalization'" in msg and "expected 4 arrays" in msg and "found 3" in msg
    assert "gamma (32,)" in msg


def test_listed_group_or_dataset_absent(tmp_path):
    src = randomize(small("dense"))
    path = keras_file_from_net(tmp_path / "a.h5", src)
    with h5py.File(path, "a") as f:
        del f["dense_1"]
    with pytest.raises(ValueError, match="layer_names lists layer 'dense_1', but the file has no group") as e:
        bp.load_keras_weights(small("dense"), path)
    one_line(e)
    path = keras_file_from_net(tmp_path / "b.h5", src)
    with h5py.File(path, "a") as f:
        del f["dense_1/dense_1/kernel:0"]
    with pytest.raises(ValueError, match="layer 'dense_1' lists weight 'dense_1/kernel:0', but the file has no dataset"):
        bp.load_keras_weights(small("dense"), path)


def test_not_a_keras_file(tmp_path):
    net = small("dense")
    before = net.get_weights()
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="is not a Keras weight file: it has no root attribute 'layer_names'") as e:
        bp.load_keras_weights(net, p)
    one_line(e)
    k3 = tmp_path / "model.weights.h5"
    with h5py.File(k3, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Keras 3"):
        bp.load_keras_weights(net, k3)
    txt = tmp_path / "weights.h5"
    txt.write_text("this is not HDF5\n")
    with pytest.raises(ValueError, match="is not an HDF5 file") as e:
        bp.load_keras_weights(net, txt)
    one_line(e)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        bp.load_keras_weights(net, empty)
    npz = tmp_path / "weights_best.npz"
    np.savez(npz, a=np.zeros(2))
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        bp.load_keras_weights(net, npz)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bp.load_keras_weights(net, tmp_path / "nope.h5")
    with pytest.raises(ValueError, match="is a folder"):
        bp.load_keras_weights(net, tmp_path)
    assert_unchanged(net, before)


def test_non_float_dataset(tmp_path):
    src = randomize(small("dense"))
    path = keras_file_from_net(tmp_path / "w.h5", src)
    with h5py.File(path, "a") as f:
        del f["dense/dense/kernel:0"]
        f.create_dataset("dense/dense/kernel:0", data=np.zeros((64, 1500), dtype=np.int32))
    with pytest.raises(ValueError, match="layer 'dense' weight 'dense/kernel:0' has dtype int32"):
        bp.load_keras_weights(small("dense"), path)


# ---------------------------------------------------------------------------- without h5py

def test_without_h5py_says_how_to_install(tmp_path, monkeypatch):
    net = small("dense")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install -e \.\[keras\]"):
        bp.load_keras_weights(net, tmp_path / "w.h5")
    with pytest.raises(ImportError, match=r"pip install -e \.\[keras\]"):
        bp.save_keras_weights(net, tmp_path / "w.h5")
    assert not (tmp_path / "w.h5").exists()
