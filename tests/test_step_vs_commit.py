"""bench/step_vs_commit.py: the base commit's package unpacked under its own name beside this
checkout's. Structure only: no timing is run or asserted."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("step_vs_commit", ROOT / "bench" / "step_vs_commit.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return mod


def test_the_base_is_its_own_package(tmp_path, monkeypatch):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    bench = _load()
    monkeypatch.setattr(sys, "path", list(sys.path))
    base = bench.unpack("HEAD", str(tmp_path))
    try:
        assert base.__name__ == "brainprop_base" and Path(base.__file__).parent == tmp_path / "brainprop_base"
        assert not any("brainprop_np" in p.read_text() for p in (tmp_path / "brainprop_base").rglob("*.py"))
        import brainprop_np
        assert base.build_network is not brainprop_np.build_network
    finally:
        for name in [m for m in sys.modules if m == "brainprop_base" or m.startswith("brainprop_base.")]:
            del sys.modules[name]


def test_an_unknown_commit_is_one_line(capsys):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    with pytest.raises(SystemExit) as e:
        _load().main(["--base", "no-such-commit", "--nets", "dense"])
    assert str(e.value).startswith("--base no-such-commit: git archive failed:") and "\n" not in str(e.value)


def test_an_unknown_network_is_named(capsys):
    with pytest.raises(SystemExit):
        _load().main(["--nets", "conv,resnet"])
    assert "--nets resnet is not allowed; use any of dense, conv, loccon" in capsys.readouterr().err
