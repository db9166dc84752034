"""Networks trained by the original TensorFlow/Keras BrainProp code, loaded here from their
.h5 files and evaluated on the MNIST test set, must give TensorFlow's predictions on all
10,000 images and its Q-values for the first 100 (../shared/keras_weights/README.md).

Tolerance: Q-values to rtol 1e-5 with an absolute floor of 1e-5 × max|Q_ref|, i.e. 1e-5
relative to the scale of the Q-values. An element-wise relative test alone would fail on
Q-values near zero, whose value is a sum of terms of order max|Q| that almost cancel:
there TensorFlow's own float32 rounding (about 1e-7 of the scale) is a large fraction of
the value. Evaluation is in float32, as TensorFlow's; measured differences are about
2e-7 of the scale (float64 evaluation is no closer, since TF's rounding dominates).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import brainprop_np as bp
from shared_data import KERAS_WEIGHTS, mnist_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from keras_reference_results import evaluate  # noqa: E402  (the evaluation docs/results.md is made with)

WEIGHTS = KERAS_WEIGHTS
ARCHS = ["dense", "conv", "loccon"]
RTOL = 1e-5

h5py = pytest.importorskip("h5py")


def stem(arch):
    return WEIGHTS / f"MNIST_{arch}_BrainProp_seed1_ep1_n60000"


@pytest.fixture(scope="module")
def mnist_test():
    root = mnist_root()
    if root is None:
        pytest.skip("MNIST test images not found in $BRAINPROP_DATA or ../shared/datasets")
    ds = bp.data.load("mnist", root=root, download=False)
    assert ds.x_test.shape == (10000, 28, 28, 1) and ds.x_test.dtype == np.uint8
    return ds


def files_of(arch):
    s = stem(arch)
    files = [s.with_suffix(".h5"), Path(f"{s}_pred.npy"), Path(f"{s}_logits100.npy")]
    if not all(f.exists() for f in files):
        pytest.skip(f"reference files for {arch} not found in {WEIGHTS}")
    return files


@pytest.mark.parametrize("arch", ARCHS)
def test_tensorflow_predictions_and_q_values(arch, mnist_test):
    h5, pred_file, q_file = files_of(arch)
    pred_tf, q_tf = np.load(pred_file), np.load(q_file)
    net = bp.build_network(arch, (28, 28, 1), 10, seed=1, device="cpu", dtype="float32")
    info = bp.load_keras_weights(net, h5)
    assert info.renamed == [] and info.notes == []
    q = evaluate(net, mnist_test.x_test)
    pred = q.argmax(axis=1)
    agree = int((pred == pred_tf).sum())
    scale = np.abs(q_tf).max()
    rel = np.abs(q[:100] - q_tf).max() / scale
    print(f"\n{arch}: predictions agree on {agree}/10000; max |Q - Q_tf| / max|Q_tf| = {rel:.2e}")
    assert agree == 10000, f"{arch}: predictions differ from TensorFlow's on {10000 - agree} images"
    np.testing.assert_allclose(q[:100], q_tf, rtol=RTOL, atol=RTOL * scale)
    meta = json.loads(Path(f"{stem(arch)}.json").read_text())
    assert float((pred == mnist_test.y_test).mean()) == pytest.approx(meta["test_accuracy_from_pred_npy"], abs=1e-12)


def test_brainprop_file_into_ebp_network(mnist_test):
    """The output layer is linear either way: an EBP network (output `dense_3`) takes the
    BrainProp file's `brain_prop_layer` and gives the same logits."""
    h5, _, q_file = files_of("dense")
    net = bp.build_network("dense", (28, 28, 1), 10, seed=1, device="cpu", algorithm="ebp")
    info = bp.load_keras_weights(net, h5)
    assert info.renamed == [("brain_prop_layer", "dense_3")]
    q_tf = np.load(q_file)
    q = evaluate(net, mnist_test.x_test[:100])
    np.testing.assert_allclose(q, q_tf, rtol=RTOL, atol=RTOL * np.abs(q_tf).max())


def attr_kind(obj, name):
    t = obj.attrs.get_id(name).get_type()
    vlen = t.is_variable_str() if isinstance(t, h5py.h5t.TypeStringID) else None
    cset = t.get_cset() if isinstance(t, h5py.h5t.TypeStringID) else None
    return t.get_class(), vlen, cset, obj.attrs.get_id(name).shape


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_file_matches_original_layout(arch, tmp_path):
    """Loading the original file and saving it again gives the same layout, attribute
    types, dataset dtypes and values: what the original code's model.load_weights reads."""
    h5 = files_of(arch)[0]
    net = bp.build_network(arch, (28, 28, 1), 10, seed=1, device="cpu")
    bp.load_keras_weights(net, h5)
    mine = bp.save_keras_weights(net, tmp_path / "again.h5")
    with h5py.File(h5, "r") as a, h5py.File(mine, "r") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert sorted(a.attrs.keys()) == sorted(b.attrs.keys())
        for key in a.attrs:
            assert attr_kind(a, key) == attr_kind(b, key), key
            assert np.array_equal(np.asarray(a.attrs[key]), np.asarray(b.attrs[key])), key

        def visit(name, obj):
            other = b[name]
            assert type(other) is type(obj), name
            assert sorted(obj.attrs.keys()) == sorted(other.attrs.keys()), name
            for key in obj.attrs:
                assert attr_kind(obj, key) == attr_kind(other, key), (name, key)
                assert np.array_equal(np.asarray(obj.attrs[key]), np.asarray(other.attrs[key])), (name, key)
            if isinstance(obj, h5py.Dataset):
                assert obj.dtype == other.dtype == np.float32 and obj.shape == other.shape, name
                np.testing.assert_array_equal(obj[()], other[()], err_msg=name)
        a.visititems(visit)
