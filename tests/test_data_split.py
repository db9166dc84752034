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
