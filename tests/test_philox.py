"""The counter-based generator (brainprop_np/philox.py, kernels/fast/philox.py, kernels/philox.cuh).

* Philox4x32-10 gives the published known-answer vectors of the Random123 distribution
  (tests/kat_vectors: counter 0 / key 0, all ones, the digits of pi) on NumPy, numba and
  CUDA (the emulator here; the device where there is one);
* the three give the same uniforms bit for bit (float32: the top 24 bits of word 0 times
  2⁻²⁴; float64: the top 53 bits of words 0:1 times 2⁻⁵³);
* a network draws the same dropout masks and actions on every kernel set for the same
  seed, and a run that keeps only its weights and trial counter continues bit for bit.
"""
import numpy as np
import pytest

import brainprop_np as bp
import cuda_emulator
from brainprop_np import layers as L
from brainprop_np import philox
from brainprop_np.backend import to_host
from brainprop_np.kernels import cpu
from test_gpu_kernels import dev  # noqa: F401  (the fixture: the device, or the emulated GPU)

KAT = [   # Random123 kat_vectors: philox4x32 10 counter[4] key[2] -> output[4]
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("counter,key,want", KAT)
def test_known_answers_numpy(counter, key, want):
    got = philox.philox4x32(np.array(counter, np.uint32)[:, None], np.array(key, np.uint32))[:, 0]
    assert [int(v) for v in got] == list(want)


@pytest.mark.parametrize("counter,key,want", KAT)
def test_known_answers_numba(counter, key, want):
    pytest.importorskip("numba")
    from brainprop_np.kernels.fast.philox import philox as fast_philox
    got = fast_philox(*(np.uint64(v) for v in counter + key))
    assert [int(v) for v in got] == list(want)


def test_known_answers_cuda(dev):  # noqa: F811
    counters = np.array([c for c, _, _ in KAT], np.uint32)
    for i, (_, key, want) in enumerate(KAT):
        out = dev.to_dev(np.zeros(4, np.uint32))
        fn = _function("philox_words")
        fn((1, 1, 1), (32, 1, 1), (dev.to_dev(counters[i:i + 1].copy()), out, np.uint32(key[0]), np.uint32(key[1]), np.int32(1)))
        assert [int(v) for v in dev.h(out)] == list(want)


def _function(name):
    """A kernel of the sources as kernels/gpu.py launches it (on the emulator when patched)."""
    from brainprop_np.kernels import gpu
    return gpu._function(name)


def test_uniform_mapping_is_the_top_bits():
    """float32 u = (w0 >> 8)·2⁻²⁴, float64 u = (w0·2²¹ + (w1 >> 11))·2⁻⁵³: exact, in [0, 1)."""
    key = philox.make_key(1, philox.DROPOUT, 3)
    w = philox.philox4x32(philox.counters(5, 1000), key)
    u32, u64 = philox.uniforms(key, 5, 1000, np.float32), philox.uniforms(key, 5, 1000, np.float64)
    np.testing.assert_array_equal((u32 * 2.0 ** 24).astype(np.uint64), w[0] >> 8)
    bits = (w[0].astype(np.uint64) << np.uint64(21)) | (w[1].astype(np.uint64) >> np.uint64(11))
    np.testing.assert_array_equal((u64 * 2.0 ** 53).astype(np.uint64), bits)
    top = np.array([0xffffffff], np.uint32)
    assert philox.to_uniform(top, top, np.float32)[0] == np.float32(1 - 2.0 ** -24) < 1
    assert philox.to_uniform(top, top, np.float64)[0] == 1 - 2.0 ** -53 < 1
    assert abs(u64.mean() - 0.5) < 0.05 and u32.dtype == np.float32 and u64.dtype == np.float64


def test_streams_differ_by_seed_purpose_layer_and_step():
    base = philox.uniforms(philox.make_key(1, philox.DROPOUT, 3), 7, 64, np.float64)
    for key, step in [((2, philox.DROPOUT, 3), 7), ((1, philox.EXPLORE, 3), 7), ((1, philox.DROPOUT, 4), 7),
                      ((1, philox.DROPOUT, 3), 8), ((1, philox.DROPOUT, 3), 7 + 2 ** 32)]:
        other = philox.uniforms(philox.make_key(*key), step, 64, np.float64)
        assert not np.isin(other, base).any(), (key, step)
    with pytest.raises(ValueError, match="seed"):
        philox.make_key(2 ** 32, philox.DROPOUT, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step", [0, 12345, 2 ** 32 + 7, 2 ** 64 - 1])
def test_numpy_numba_and_cuda_give_the_same_bits(dev, dtype, step):  # noqa: F811
    key = philox.make_key(4294967295, philox.EXPLORE, 65535)
    want = philox.uniforms(key, step, 3001, dtype)
    got = dev.h(dev.k.philox_uniforms(key, step, 3001, dtype))
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(cpu.philox_uniforms(key, step, 3001, dtype).view(np.uint8), want.view(np.uint8))
    pytest.importorskip("numba")
    from brainprop_np.kernels import fast
    np.testing.assert_array_equal(fast.philox_uniforms(key, step, 3001, dtype).view(np.uint8), want.view(np.uint8))


# ---- whole networks --------------------------------------------------------------------------------

def _data(b=16, shape=(8, 8, 1), seed=5):
    r = np.random.default_rng(seed)
    return r.random((b,) + shape).astype(np.float32), r.integers(0, 5, b)


def _trial(device, kernels=None, epsilon=0.5):
    """One training trial of the conv preset (dropout and exploration on): (actions, q, masks, the
    reference's uniforms of the choice)."""
    net = bp.build_network("conv", (8, 8, 1), 5, seed=3, device=device, kernels=kernels)
    x, labels = _data()
    net.draws.step = 2 ** 32 + 41
    rule = bp.BrainProp(epsilon=epsilon)
    u = rule.uniforms(net, 16, np.float32)
    t = rule.trial(net, net.backend.asarray(x), net.backend.asarray(labels, "int64"),
                                            train=True, batch_size=16)
    masks = [to_host(l.mask) for l in net.layers if isinstance(l, L.Dropout)]
    assert net.draws.step == 2 ** 32 + 42            # a training trial advances the counter
    return to_host(t.actions), to_host(t.q), masks, u


def test_same_seed_same_masks_and_actions_on_every_kernel_set(emulator, monkeypatch):
    ref_actions, ref_q, ref_masks, (ue, us) = _trial("cpu", "numpy")
    runs = {"emulated gpu": _trial(cuda_emulator.patch_gpu_kernels(monkeypatch, emulator))}
    try:
        import numba  # noqa: F401
        runs["fast"] = _trial("cpu", "fast")
    except ImportError:
        pass
    np.testing.assert_array_equal(ref_actions, cpu.select_actions(ref_q, 0.5, ue, us))
    assert (ue < 0.5).sum() >= 4 and len(ref_masks) == 2
    for name, (actions, q, masks, _) in runs.items():
        for m, r in zip(masks, ref_masks):
            np.testing.assert_array_equal(m, r, err_msg=f"{name}: dropout mask")
        np.testing.assert_allclose(q, ref_q, rtol=1e-4, atol=1e-7, err_msg=name)
        np.testing.assert_array_equal(actions, ref_actions, err_msg=f"{name}: actions")


def _steps(device, n, start=None):
    """n BrainProp trials + SGD steps of the conv preset from the same seed, or from start=(weights,
    step): what a checkpoint keeps. Returns (weights, step)."""
    net = bp.build_network("conv", (8, 8, 1), 5, seed=3, device=device)
    if start is not None:
        net.set_weights(start[0])
        net.draws.step = start[1]
    rule, opt = bp.BrainProp(epsilon=0.3), bp.SGD(lr=0.1)
    for i in range(n):
        x, labels = _data(seed=net.draws.step)
        rule.trial(net, net.backend.asarray(x), net.backend.asarray(labels, "int64"), train=True, batch_size=16)
        opt.step(net, 0.1)
    return net.get_weights(), net.draws.step


@pytest.mark.parametrize("where", ["numpy", "emulated gpu"])
def test_weights_and_trial_counter_resume_bit_for_bit(where, emulator, monkeypatch):
    """Stopped after a trial and continued from its weights and counter alone: the same bits as
    an uninterrupted run (no generator state to save, on the GPU backend too)."""
    device = "cpu" if where == "numpy" else cuda_emulator.patch_gpu_kernels(monkeypatch, emulator)
    straight, step = _steps(device, 3)
    resumed, step2 = _steps(device, 2, start=_steps(device, 1))
    assert step == step2 == 3
    for lname in straight:
        for aname, w in straight[lname].items():
            np.testing.assert_array_equal(resumed[lname][aname], w, err_msg=f"{lname}.{aname}")
