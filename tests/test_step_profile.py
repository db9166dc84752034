"""bench/step_profile.py (where a step's time goes, and its GEMM floor) and the page section
scripts/speed_page.py writes from its JSON. Structure only: no timing is asserted."""
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return mod


@pytest.fixture(scope="module")
def profile_json(tmp_path_factory):
    pytest.importorskip("numba")
    bench = _load("step_profile", ROOT / "bench" / "step_profile.py")
    path = tmp_path_factory.mktemp("profile") / "profile.json"
    bench.main(["--nets", "dense,loccon", "--steps", "1", "--rounds", "2", "--json", str(path)])
    return path


def test_profile_covers_every_step_of_the_plan(profile_json):
    import brainprop_np as bp
    data = json.loads(profile_json.read_text())
    assert [p["net"] for p in data["profiles"]] == ["dense", "loccon"]
    for p in data["profiles"]:
        net = bp.build_network(p["net"], (28, 28, 1), 10, device="cpu", kernels="fast")
        assert [r["step"] for r in p["steps"]] == [s.describe() for s in net.steps()]
        assert len(p["step_ms_rounds"]) == 2
        assert all(math.isfinite(r["forward_ms"]) and math.isfinite(r["feedback_ms"]) for r in p["steps"])
        weight_layers = [l.name for l in net.layers if "kernel" in l.params]
        assert list(p["gemm_ms"]) == weight_layers
        train_step = _load("train_step", ROOT / "bench" / "train_step.py")
        assert p["gflop"] == train_step.step_flops(net, p["batch"]) / 1e9 > 0


def test_profile_leaves_the_direct_conv_out_of_the_gemms():
    pytest.importorskip("numba")
    import brainprop_np as bp
    bench = _load("step_profile", ROOT / "bench" / "step_profile.py")
    net = bp.build_network("conv", (28, 28, 1), 10, device="cpu", kernels="fast")
    names = [name for name, _ in bench.gemms(net, 4)]
    first_conv = net.layers[0].name
    assert first_conv not in names and "conv2d_1" in names and len(names) == 3
    thunks = dict(bench.gemms(net, 4))
    assert len(thunks["conv2d_1"]) == 3          # forward, tags, input feedback
    dense = bp.build_network("dense", (28, 28, 1), 10, device="cpu", kernels="fast")
    counts = [len(t) for _, t in bench.gemms(dense, 4)]
    assert counts == [2, 3, 3, 3]                # the first trained layer has no input feedback
    x = [t() for t in dict(bench.gemms(dense, 4))["dense_1"]]
    assert [a.shape for a in x] == [(4, 1000), (1500, 1000), (4, 1500)]


def test_speed_page_writes_the_profile_section(profile_json, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- step-profile:begin -->\nold\n<!-- step-profile:end -->\nafter\n")
    speed_page = _load("speed_page", ROOT / "scripts" / "speed_page.py")
    assert speed_page.main(["--profile", str(profile_json), "--write", str(page)]) == 0
    text = page.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| dense | 128 |" in text and "| loccon | 32 |" in text and "update (SGD)" in text
    data = json.loads(profile_json.read_text())
    dense = data["profiles"][0]
    assert f"| {dense['gflop']:.2f} | {1e3 * dense['gflop'] / data['gemm_gflops']:.1f} |" in text


def test_train_step_times_the_fast_set_untiled_and_restores_its_bound(capsys):
    """--untiled adds an arm of the fast set with no conv tiled, --tile-mb an arm per tile size;
    afterwards the set's own tiling bound and tile are back."""
    pytest.importorskip("numba")
    from brainprop_np.kernels.fast import conv_tiled
    bound = conv_tiled.WHOLE_MAX
    bench = _load("train_step", ROOT / "bench" / "train_step.py")
    tile = conv_tiled.TILE_BYTES
    bench.main(["--device", "cpu", "--nets", "loccon", "--steps", "1", "--rounds", "1", "--kernels", "fast",
                "--untiled", "--tile-mb", "2.5"])
    rows = [l.split() for l in capsys.readouterr().out.splitlines() if l.startswith("loccon")]
    assert [r[1] for r in rows] == ["fast", "untiled", "tile=2.5"]
    assert conv_tiled.WHOLE_MAX == bound and conv_tiled.TILE_BYTES == tile
    bench.set_tiling("tile=2.5")
    assert conv_tiled.TILE_BYTES == int(2.5 * 2**20) and conv_tiled.WHOLE_MAX == bound
    bench.set_tiling("fast")
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--nets", "loccon", "--tile-mb", "2,big"])
    assert "--tile-mb 'big' is not allowed" in capsys.readouterr().err


def test_profile_times_a_tiled_convolution_tile_by_tile():
    """deep's 64-channel 32×32 convolution runs its products per tile in the step, so its
    GEMM floor is timed per tile too: 64 tiles of 2 images at batch 128."""
    import brainprop_np as bp
    pytest.importorskip("numba")
    bench = _load("step_profile", ROOT / "bench" / "step_profile.py")
    deep = bp.build_network("deep", (32, 32, 3), 10, device="cpu", kernels="fast")
    forward, tags, input_fb = dict(bench.gemms(deep, 128))["conv2d_1"]
    out = forward()
    assert len(out) == 64 and out[0].shape == (2 * 32 * 32, 64)
    assert tags()[0].shape == (576, 64) and input_fb()[0].shape == (2 * 32 * 32, 576)
    first = dict(bench.gemms(deep, 128))["conv2d"]                 # 14 MB of rows: 4 tiles of 37 images
    assert [a.shape for a in first[0]()] == [(37 * 32 * 32, 64)] * 4
    small = dict(bench.gemms(deep, 32))["conv2d"]                  # 3.5 MB: whole
    assert small[0]().shape == (32 * 32 * 32, 64)


def test_train_step_rotates_the_arms_every_round():
    """Over as many rounds as arms, every arm runs once at every place of a round."""
    bench = _load("train_step", ROOT / "bench" / "train_step.py")
    arms = ["fast", "numpy", "tile=2"]
    orders = [bench.rotated(arms, r) for r in range(len(arms))]
    assert all(sorted(o) == sorted(arms) for o in orders)
    for place in range(len(arms)):
        assert sorted(o[place] for o in orders) == sorted(arms)
    assert bench.rotated([], 3) == []
