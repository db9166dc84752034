"""Joining a token-authenticated Ray cluster (run/sweep/auth.py) and reading where runs ran
(run/sweep/placement.py), without a cluster: the cluster's answers are scripted. The real
cluster is tests/test_sweep_cluster.py."""
from pathlib import Path

import pytest

from brainprop_np.run.sweep import auth, placement


@pytest.fixture
def no_token(monkeypatch, own_home):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    return own_home


def test_the_token_is_found_where_ray_looks(no_token, monkeypatch, tmp_path):
    assert auth.find_token() == (None, None)
    (no_token / ".ray").mkdir()
    (no_token / ".ray" / "auth_token").write_text("abc\n")
    assert auth.find_token() == ("abc", str(no_token / ".ray" / "auth_token"))
    named = tmp_path / "tok"
    named.write_text("def")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))
    assert auth.find_token() == ("def", f"$RAY_AUTH_TOKEN_PATH ({named})")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "ghi")
    assert auth.find_token() == ("ghi", "$RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    named.write_text("")
    with pytest.raises(auth.TokenError, match="which is empty"):
        auth.find_token()
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(auth.TokenError, match="cannot be read"):
        auth.find_token()


def _cluster(monkeypatch, wants):
    """A cluster that answers 'ok' to `wants` (None: to any call) and 'token' otherwise; the calls made."""
    calls, enabled = [], []

    def call(target, client, token):
        calls.append((target, client, token))
        return "ok" if wants is None or token == wants else "token"
    monkeypatch.setattr(auth, "_call", call)
    monkeypatch.setattr(auth, "enable_token_mode", lambda: enabled.append(True))
    return calls, enabled


def test_a_cluster_without_authentication_is_asked_once(no_token, monkeypatch):
    calls, enabled = _cluster(monkeypatch, None)
    auth.prepare("10.0.0.1:6379", "10.0.0.1:6379")
    assert calls == [("10.0.0.1:6379", False, None)] and not enabled


def test_missing_wrong_and_right_tokens(no_token, monkeypatch):
    calls, enabled = _cluster(monkeypatch, "right")
    with pytest.raises(auth.TokenError, match="asks for an authentication token and none was found; give"):
        auth.prepare("ray://h:10001", "h:10001")
    assert calls == [("h:10001", True, None)]
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong")
    with pytest.raises(auth.TokenError, match=r"rejected the authentication token from \$RAY_AUTH_TOKEN"):
        auth.prepare("h:6379", "h:6379")
    assert not enabled
    monkeypatch.setenv("RAY_AUTH_TOKEN", "right")
    auth.prepare("h:6379", "h:6379")
    assert enabled == [True]
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(auth.TokenError, match="RAY_AUTH_MODE=disabled is set here"):
        auth.prepare("h:6379", "h:6379")


def test_an_address_that_is_not_a_ray_cluster_is_left_to_ray(no_token, monkeypatch):
    monkeypatch.setattr(auth, "_call", lambda target, client, token: "other")
    auth.prepare("h:6379", "h:6379")            # ray.init then says it cannot connect


def test_the_node_of_every_attempt_is_read_from_train_log(tmp_path):
    (tmp_path / "train.log").write_text(
        "--- sweep attempt 1: pid 7 on box at 2026-01-01 10:00:00; fresh start\n"
        "epoch 1/2 ...\n"
        "--- sweep attempt 2: pid 8 on box (node 10.0.0.2, id 3f9a) at 2026-01-01 10:01:00; resuming from ...\n"
        "--- sweep attempt 3: pid 9 on box (node 10.0.0.1, id -) at 2026-01-01 10:02:00; resuming from ...\n")
    assert placement.attempt_nodes(tmp_path) == ["box", "10.0.0.2", "10.0.0.1"]
    assert placement.attempt_nodes(Path(tmp_path / "nothing")) == []
