"""A Ray cluster of real nodes on this machine, each in its own network namespace.

`NetnsCluster(base)` makes network namespaces joined by a veth pair, with addresses
10.213.N.1/24 and 10.213.N.2/24 that exist only inside them (N random, so that two
clusters never share a subnet); no traffic leaves those namespaces. A node is
`ray start --block` inside `ip netns exec NS unshare --pid --fork --kill-child
--mount-proc`: its own PID namespace too, so that killing that one process (by its id)
takes the whole node down at once — raylet, object store, workers, agents — which is
how a test loses a node, and how `close()` leaves nothing behind. Ray's `ray stop` is
never used: it stops every Ray process of the machine.

Everything a node writes goes under `base` (HOME, TMPDIR, Ray's temp dir): `base` must
be a short path (Ray's AF_UNIX socket paths must fit in 107 bytes), e.g.
tempfile.mkdtemp(prefix="r", dir="/tmp"). `close()` stops the nodes, deletes the
namespaces and removes `base`.

Why it may not be possible, as one line: `unavailable()` (not root, no `ip` or
`unshare`, no Ray, namespaces refused).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# the head notices a lost node within a few seconds (Ray's default: 15 s), and a node whose
# raylet is slow to answer on a loaded machine is not taken for lost
FAST_HEALTH = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "1000",
               "RAY_health_check_timeout_ms": "2000", "RAY_health_check_failure_threshold": "3"}


def unavailable():
    """Why namespaces cannot be made here (one line), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root to test the two-node cluster"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command (iproute2 / util-linux): cannot make the nodes' namespaces"
    if not Path(RAY).is_file():
        return f"no Ray command line at {RAY} (pip install 'ray[default]')"
    name = f"bpchk{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add refused: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return None


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Node:
    def __init__(self, name, ns, ip, proc, log):
        self.name, self.ns, self.ip, self.proc, self.log = name, ns, ip, proc, log
        self.killed = False

    def kill(self):
        """SIGKILL the node's PID-namespace holder: the kernel then kills everything in it."""
        self.killed = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class NetnsCluster:
    def __init__(self, base, n_namespaces=2):
        self.base = Path(base)
        tag = f"{os.getpid() % 100000}{random.randrange(1000)}"
        self.subnet = f"10.213.{random.randrange(1, 255)}"
        self.namespaces = [f"bp{tag}{chr(97 + i)}" for i in range(n_namespaces)]
        self.nodes, self.home, self.token = [], self.base / "home", None
        (self.home / ".ray").mkdir(parents=True, exist_ok=True)
        (self.base / "tmp").mkdir(exist_ok=True)
        self._made = []
        try:
            self._make_namespaces(tag)
        except BaseException:
            self.close()
            raise

    def _make_namespaces(self, tag):
        for ns in self.namespaces:
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        if len(self.namespaces) == 2:
            a, b = self.namespaces
            _ip("link", "add", f"v{tag}a", "netns", a, "type", "veth", "peer", "name", f"v{tag}b", "netns", b)
            for i, (ns, end) in enumerate(((a, "a"), (b, "b")), start=1):
                _ip("-n", ns, "addr", "add", f"{self.subnet}.{i}/24", "dev", f"v{tag}{end}")
                _ip("-n", ns, "link", "set", f"v{tag}{end}", "up")

    def ip(self, i):
        """The address of namespace i (0, 1); 127.0.0.1 in a lone namespace."""
        return f"{self.subnet}.{i + 1}" if len(self.namespaces) == 2 else "127.0.0.1"

    def write_token(self):
        """A token in the nodes' default token file (HOME/.ray/auth_token), as `ray get-auth-token --generate`."""
        import secrets
        self.token = secrets.token_hex(32)
        path = self.home / ".ray" / "auth_token"
        path.write_text(self.token)
        return path

    def env(self, **extra):
        """The environment of a process of this cluster: HOME, TMPDIR under base; no $RAY_* of the caller."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(self.home), TMPDIR=str(self.base / "tmp"), RAY_USAGE_STATS_ENABLED="0")
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def start(self, i, head_ip=None, cpus=1, env=None):
        """A node in namespace i: the head when head_ip is None, else a worker joining head_ip:6379."""
        name = f"n{len(self.nodes)}"
        args = (["--head", "--port=6379", "--include-dashboard=false"] if head_ip is None
                else [f"--address={head_ip}:6379"])
        argv = ["ip", "netns", "exec", self.namespaces[i], "unshare", "--pid", "--fork", "--kill-child",
                "--mount-proc", RAY, "start", "--block", *args, f"--node-ip-address={self.ip(i)}",
                f"--num-cpus={cpus}", "--num-gpus=0", "--object-store-memory=100000000",
                "--disable-usage-stats", f"--temp-dir={self.base / name}"]
        log = open(self.base / f"{name}.log", "w")
        env = dict(env or self.env(), **(FAST_HEALTH if head_ip is None else {}))
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        node = Node(name, self.namespaces[i], self.ip(i), proc, log)
        self.nodes.append(node)
        return node

    def run(self, i, argv, env, timeout=120, **kw):
        """A command inside namespace i (not inside a node's PID namespace)."""
        return subprocess.run(["ip", "netns", "exec", self.namespaces[i], *argv], env=env, timeout=timeout,
                              capture_output=True, text=True, **kw)

    def popen(self, i, argv, env, **kw):
        kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kw}
        return subprocess.Popen(["ip", "netns", "exec", self.namespaces[i], *argv], env=env, **kw)

    def wait_nodes(self, n, env, timeout=60):
        """Wait until the head sees n alive nodes (asked from inside namespace 0)."""
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
                "print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if not node.killed and node.proc.poll() is not None:
                    raise RuntimeError(f"node {node.name} exited: {self.log_tail(node)}")
            p = self.run(0, [sys.executable, "-c", code, f"{self.ip(0)}:6379"], env, timeout=60)
            if p.returncode == 0 and p.stdout.strip().splitlines()[-1:] == [str(n)]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach {n} nodes: {p.stdout[-500:]} {p.stderr[-1500:]}")
            time.sleep(0.5)

    def log_tail(self, node):
        node.log.flush()
        return (self.base / f"{node.name}.log").read_text(errors="replace")[-2000:]

    def close(self):
        for node in self.nodes:
            node.kill()
            node.log.close()
        for ns in self._made:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self._made = []
        shutil.rmtree(self.base, ignore_errors=True)
