"""prepare(): limits and the validation choice (test set, or a held-out training slice)."""
import numpy as np
import pytest

from brainprop_np.data import Dataset, prepare


def toy(n_train=100, n_test=40):
    x = np.arange(n_train, dtype=np.uint8).reshape(-1, 1, 1, 1)
    xt = np.arange(n_test, dtype=np.uint8).reshape(-1, 1, 1, 1)
    return Dataset("toy", x, np.arange(n_train, dtype=np.int64),
                   xt, np.arange(n_test, dtype=np.int64), ["a", "b"])


def test_no_holdout_validates_on_test():
    s = prepare(toy())
    assert len(s.x_train) == 100 and s.x_val is s.x_test and s.y_val is s.y_test and s.holdout == 0


def test_holdout_takes_the_last_training_images():
    s = prepare(toy(), holdout=30)
    np.testing.assert_array_equal(s.y_train, np.arange(70))
    np.testing.assert_array_equal(s.y_val, np.arange(70, 100))
    assert len(s.y_test) == 40 and s.n_classes == 2 and s.input_shape == (1, 1, 1)


def test_limits_and_holdout_together():
    s = prepare(toy(), limit_train=10, limit_test=5, holdout=30)
    np.testing.assert_array_equal(s.y_train, np.arange(10))
    np.testing.assert_array_equal(s.y_val, np.arange(70, 100))    # independent of limit_train
    np.testing.assert_array_equal(s.y_test, np.arange(5))
    s = prepare(toy(), limit_test=5)
    assert len(s.y_val) == 5 and len(s.y_train) == 100
    assert len(prepare(toy(), limit_train=10**6).y_train) == 100


def test_views_not_copies():
    ds = toy()
    s = prepare(ds, holdout=10, limit_train=50)
    assert np.shares_memory(s.x_train, ds.x_train) and np.shares_memory(s.x_val, ds.x_train)


@pytest.mark.parametrize("kw, word", [
    ({"holdout": 100}, "holdout=100"), ({"holdout": -1}, "holdout=-1"), ({"holdout": True}, "holdout=True"),
    ({"limit_train": 0}, "limit_train=0"), ({"limit_test": 2.5}, "limit_test=2.5")])
def test_bad_values(kw, word):
    with pytest.raises(ValueError, match=word):
        prepare(toy(), **kw)


def labelled(n_train=60, n_test=30, k=5):
    """Images numbered 0..N-1 with labels i % k: an image says where it came from."""
    x = np.arange(n_train, dtype=np.uint8).reshape(-1, 1, 1, 1)
    xt = np.arange(100, 100 + n_test, dtype=np.uint8).reshape(-1, 1, 1, 1)
    return Dataset("toy", x, np.arange(n_train, dtype=np.int64) % k,
                   xt, np.arange(n_test, dtype=np.int64) % k, ["a", "b", "c", "d", "e"][:k])


def test_classes_select_and_relabel_in_the_order_given():
    s = prepare(labelled(), classes=[3, 1])
    want = [i for i in range(60) if i % 5 in (3, 1)]
    np.testing.assert_array_equal(s.x_train[:, 0, 0, 0], want)
    np.testing.assert_array_equal(s.y_train, [{3: 0, 1: 1}[i % 5] for i in want])
    want_test = [i for i in range(30) if i % 5 in (3, 1)]
    np.testing.assert_array_equal(s.x_test[:, 0, 0, 0], [100 + i for i in want_test])
    np.testing.assert_array_equal(s.y_test, [{3: 0, 1: 1}[i % 5] for i in want_test])
    assert s.y_train.dtype == np.int64 and s.x_val is s.x_test
    assert s.n_classes == 2 and s.classes == ["d", "b"] and s.labels == [3, 1]
    assert prepare(labelled()).labels is None and prepare(labelled()).n_classes == 5


def test_classes_come_before_the_holdout_and_the_limits():
    s = prepare(labelled(), classes=[0, 2, 4], holdout=6, limit_train=10, limit_test=4)
    kept = [i for i in range(60) if i % 5 in (0, 2, 4)]                  # 36 images
    np.testing.assert_array_equal(s.x_train[:, 0, 0, 0], kept[:10])
    np.testing.assert_array_equal(s.x_val[:, 0, 0, 0], kept[-6:])
    np.testing.assert_array_equal(s.y_val, [{0: 0, 2: 1, 4: 2}[i % 5] for i in kept[-6:]])
    np.testing.assert_array_equal(s.x_test[:, 0, 0, 0], [100 + i for i in range(30) if i % 5 in (0, 2, 4)][:4])


@pytest.mark.parametrize("classes", [[1, 5], [0], [2, 2], [-1, 0], [True, 1]])
def test_classes_outside_the_dataset_are_one_line_naming_its_range(classes):
    with pytest.raises(ValueError, match=r"^classes=.* is not allowed for toy: its labels are 0\.\.4; "
                                         r"use at least 2 distinct labels from 0 to 4$"):
        prepare(labelled(), classes=classes)
