"""The sweep on a real two-node Ray cluster with token authentication, on this machine.

Two Ray nodes, each in its own network namespace and PID namespace made here
(tests/netns_cluster.py: a veth pair, addresses 10.213.N.1 and .2 that exist only in
those namespaces), the head started with RAY_AUTH_MODE=token and a token in its
~/.ray/auth_token, the worker node joining with RAY_AUTH_MODE=token and
RAY_AUTH_TOKEN_PATH, as docs/sweeps.md tells a cluster user to. From the head's namespace:

- a missing and a wrong token each end the sweep with one line naming the token, within
  seconds (no Ray retry flood), by address and through Ray Client (ray://HEAD:10001,
  whose server accepts the right token);
- a sweep of 4 tiny runs (--address HEAD:6379, the token in the default file) spreads
  over both nodes; once a run has finished on the worker node and the next one there has
  written a checkpoint, the worker node is killed (its whole PID namespace: raylet,
  workers); every run still finishes, the killed one retried from its checkpoint on the
  head; the progress line names the lost node and the retried run; results.csv and
  sweep.json say where each run ran and how many attempts it took; every run equals a
  plain run of the same config, overrides and seed bit for bit (one thread each);
- a cluster without authentication (a third namespace) is joined by address as before.

It needs root, `ip` and `unshare` (it skips with the reason otherwise) and takes about a
minute; everything it starts runs under a short folder /tmp/rXXXX (Ray's socket paths
must be short) that it removes, with the namespaces, even when it fails. Run it alone:

    PYTHONPATH=$PWD python -m pytest -q tests/test_sweep_cluster.py
"""
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install -e .[sweep]); the cluster test skips")

import netns_cluster  # noqa: E402
from test_sweep_ray import _same_run  # noqa: E402

pytestmark = pytest.mark.cluster
WHY_NOT = netns_cluster.unavailable()
if WHY_NOT:
    pytest.skip(WHY_NOT, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
DENSE = str(ROOT / "configs" / "mnist_dense.yaml")
SWEEP = [sys.executable, "-m", "brainprop_np.sweep"]
# long enough (many short epochs, a checkpoint after each) to be caught between two checkpoints
TINY = ["model=[{type: flatten}, {type: dense, units: 64}, {type: relu}]", "data.download=false",
        "data.limit_train=600", "data.limit_test=200", "train.epochs=30", "device=cpu"]


def _env(cluster, **extra):
    """A process of the cluster: its HOME (the token file), no data folder (the bundled sample), this checkout."""
    env = cluster.env(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cluster.home / ".cache"), **extra)
    for var in ("BRAINPROP_DATA", "BRAINPROP_CACHE", "BRAINPROP_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(var, None)
    return env


def _node_env(cluster, **extra):
    """A node's environment: no PYTHONPATH, so that the runs import this checkout only through the
    sweep's runtime environment (cli._runtime_env), as on a cluster whose nodes share a file system."""
    env = _env(cluster, **extra)
    env.pop("PYTHONPATH")
    return env


@pytest.fixture(scope="module")
def cluster():
    """The head (namespace 0) and a worker node (namespace 1), joined with the token."""
    c = netns_cluster.NetnsCluster(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    try:
        token = c.write_token()
        copy = c.base / "worker_token"
        copy.write_text(token.read_text())
        c.start(0, cpus=1, env=_node_env(c, RAY_AUTH_MODE="token"))
        c.start(1, head_ip=c.ip(0), cpus=1, env=_node_env(c, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(copy)))
        c.wait_nodes(2, _env(c, RAY_AUTH_MODE="token"))
        yield c
    finally:
        c.close()


def _one_line_error(proc):
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and err[0].startswith("error: "), (proc.returncode, proc.stderr)
    return err[0]


def test_token_missing_wrong_and_ray_client(cluster, tmp_path):
    head = f"{cluster.ip(0)}:6379"
    argv = [*SWEEP, DENSE, "--seeds", "1", *TINY, "--out", str(tmp_path / "s"), "--address", head]
    no_home = tmp_path / "home"
    no_home.mkdir()
    t = time.monotonic()
    line = _one_line_error(cluster.run(0, argv, dict(_env(cluster), HOME=str(no_home)), timeout=60))
    assert time.monotonic() - t < 15
    assert "asks for an authentication token and none was found" in line and "RAY_AUTH_TOKEN" in line, line
    t = time.monotonic()
    line = _one_line_error(cluster.run(0, argv, _env(cluster, RAY_AUTH_TOKEN="0" * 64), timeout=60))
    assert time.monotonic() - t < 15
    assert "rejected the authentication token from $RAY_AUTH_TOKEN" in line, line
    assert not (tmp_path / "s").exists()
    # Ray Client (ray://): asked the same way (joining through it is Ray's own, and slow here)
    client = f"ray://{cluster.ip(0)}:10001"
    argv[-1] = client
    line = _one_line_error(cluster.run(0, argv, _env(cluster, RAY_AUTH_TOKEN="0" * 64), timeout=60))
    assert f"the Ray cluster at {client} rejected the authentication token" in line, line
    code = ("import os, sys; from brainprop_np.run.sweep import auth; auth.prepare(sys.argv[1], sys.argv[2]); "
            "print(os.environ['RAY_AUTH_MODE'])")
    p = cluster.run(0, [sys.executable, "-c", code, client, f"{cluster.ip(0)}:10001"],
                    _env(cluster, RAY_AUTH_TOKEN_PATH=str(cluster.home / ".ray" / "auth_token")), timeout=60)
    assert p.returncode == 0 and p.stdout.split() == ["token"], p.stderr[-3000:]


def _nodes_of(run_dir):
    from brainprop_np.run.sweep import placement
    return placement.attempt_nodes(run_dir)


def _lose_worker(cluster, driver):
    """Kill the worker node while the driver is stopped, and let it go on once the head has marked
    the node dead: the driver (the owner that retries the run) then sees the loss before the retried
    run can finish, however fast the run is."""
    os.kill(driver.pid, signal.SIGSTOP)
    try:
        cluster.nodes[1].kill()
        cluster.wait_nodes(1, _env(cluster, RAY_AUTH_MODE="token"))
    finally:
        os.kill(driver.pid, signal.SIGCONT)


def _kill_worker_mid_run(cluster, out, driver, timeout=300):
    """Kill the worker node once one run finished there and another has a checkpoint there."""
    worker = cluster.ip(1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        dirs = sorted(out.glob("mnist_dense/default/seed*"))
        there = [d for d in dirs if _nodes_of(d)[-1:] == [worker]]
        finished = [d for d in there if (d / "summary.json").is_file() and
                    json.loads((d / "summary.json").read_text()).get("stop_reason") == "max_epochs"]
        busy = [d for d in there if d not in finished and (d / "checkpoint.npz").is_file()]
        if finished and busy:
            _lose_worker(cluster, driver)
            return busy[0]
        time.sleep(0.02)
    pytest.fail("no run was caught on the worker node between two checkpoints; "
                + (driver.communicate()[0][-3000:] if driver.poll() is not None else "the sweep is still running"))


def _plain_runs(cluster, seeds, base):
    """The same runs on one machine: run.py of each seed with a sweep run's environment (one thread)."""
    from brainprop_np.run.sweep.cli import _runtime_env
    env = dict(_env(cluster), **_runtime_env(1, 0)["env_vars"])
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), DENSE, *TINY, f"seed={s}", "--out",
                               str(base / f"seed{s}"), "-q"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for s in seeds]
    for p in procs:
        printed, _ = p.communicate(timeout=120)
        assert p.returncode == 0, printed[-3000:]


def test_sweep_spreads_over_two_nodes_and_survives_losing_one(cluster):
    out = cluster.base / "sweep"
    head, worker = cluster.ip(0), cluster.ip(1)
    argv = [*SWEEP, DENSE, "--seeds", "1-4", *TINY, "--out", str(out), "--address", f"{head}:6379"]
    driver = cluster.popen(0, argv, _env(cluster), stderr=subprocess.STDOUT)
    try:
        killed = _kill_worker_mid_run(cluster, out, driver)
        printed, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    print(printed)                          # shown with -s, or when an assertion below fails
    assert driver.returncode == 0, printed[-4000:]
    assert f"lost node(s) {worker}" in printed and f"retried ({killed.relative_to(out)}" in printed, printed
    assert _nodes_of(killed) == [worker, head]
    assert "resuming from checkpoint.npz after epoch" in (killed / "train.log").read_text()
    doc = json.loads((out / "sweep.json").read_text())
    where = {p["run"]: p for p in doc["placement"]}
    assert where[str(killed.relative_to(out))] == {"run": str(killed.relative_to(out)), "state": "done",
                                                          "node": head, "nodes": [worker, head], "attempts": 2}
    assert sum(p["nodes"] == [worker] for p in where.values()) >= 1       # a run finished on the worker
    assert doc["lost_nodes"] == [worker] and doc["retried"] == [str(killed.relative_to(out))]
    assert doc["nodes"] == 2 and doc["runs"]["finished"] == 4
    row = next(csv.DictReader(open(out / "results.csv")))
    assert row["n"] == "4" and set(row["nodes"].split()) == {head, worker} and row["attempts"] == "5", row
    _plain_runs(cluster, [1, 2, 3, 4], cluster.base / "plain")
    for s in (1, 2, 3, 4):
        _same_run(out / f"mnist_dense/default/seed{s}", cluster.base / f"plain/seed{s}")


def test_cluster_without_authentication(tmp_path):
    c = netns_cluster.NetnsCluster(tempfile.mkdtemp(prefix="r", dir="/tmp"), n_namespaces=1)
    try:
        c.write_token()                     # a token here is not sent to a cluster that asks for none
        c.start(0, cpus=1, env=_node_env(c, RAY_AUTH_MODE="disabled"))
        out = c.base / "sweep"
        one = [o if not o.startswith("train.epochs=") else "train.epochs=1" for o in TINY]
        argv = [*SWEEP, DENSE, "--seeds", "1", *one, "--out", str(out),
                "--address", "127.0.0.1:6379"]
        deadline = time.monotonic() + 60
        while True:
            p = c.run(0, argv, _env(c), timeout=120)
            if p.returncode == 0 or time.monotonic() > deadline or "cannot reach" not in p.stderr:
                break
            time.sleep(0.5)                 # the head is still starting
        assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
        assert json.loads((out / "sweep.json").read_text())["placement"][0]["node"] == "127.0.0.1"
    finally:
        c.close()
