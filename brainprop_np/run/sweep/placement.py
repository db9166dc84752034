"""Where a sweep's runs ran, and which nodes it lost.

Every attempt of a run starts by writing one header line to the run's train.log
(task.py): `--- sweep attempt 2: pid 4711 on HOST (node 10.0.0.2, id 3f9a...) at ...`.
Read back, these lines give the node of every attempt, over every invocation of the
sweep: what results.csv (nodes, attempts per cell) and sweep.json (node, nodes,
attempts per run) report. `NodeWatch` compares the cluster's nodes with those alive
when the sweep began, for the progress line.
"""
import re

HEADER = re.compile(r"^--- sweep attempt (\d+): pid (\d+) on (\S+)(?: \(node ([^,)]+)(?:, id [^)]*)?\))? at ",
                    re.MULTILINE)


def attempt_nodes(run_dir):
    """The node (Ray node address, else host name) of each attempt in run_dir/train.log, in order."""
    try:
        text = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [m.group(4) or m.group(3) for m in HEADER.finditer(text)]


def read(runs):
    """Set run.nodes (one entry per attempt) of every run from its train.log."""
    for r in runs:
        r.nodes = attempt_nodes(r.run_dir)


def per_run(runs):
    """sweep.json's `placement`: per run its state, last node, nodes of all attempts, attempts."""
    return [{"run": r.label, "state": r.state, "node": r.nodes[-1] if r.nodes else None, "nodes": r.nodes,
             "attempts": len(r.nodes)} for r in runs]


class NodeWatch:
    """The cluster's nodes alive when the sweep began, and which of them it has lost since."""

    def __init__(self, ray):
        self.ray = ray
        self.start = self._alive()
        self.lost = []

    def _alive(self):
        try:
            return {n["NodeID"]: n.get("NodeManagerAddress") or n["NodeID"][:12]
                    for n in self.ray.nodes() if n.get("Alive")}
        except Exception:         # Ray Client or GCS hiccup: nothing learned this time
            return None

    def check(self):
        """The addresses of the nodes lost since the start (updated; unchanged when Ray cannot tell)."""
        now = self._alive()
        if self.start is not None and now is not None:
            self.lost = sorted(addr for nid, addr in self.start.items() if nid not in now)
        return self.lost
