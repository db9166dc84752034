"""One run of a sweep, as it executes on a Ray worker: the same `train` that run.py calls.

`run_one(spec)` trains spec["config"] (a resolved config) into spec["run_dir"], or, when
that folder holds a checkpoint.npz, resumes it from there — which is what makes a retry
after a killed worker (or a rerun of the sweep) continue where the run stopped. The
run's epoch lines go to RUN_DIR/train.log, each attempt headed by one line saying
where it ran (pid, host, the Ray node's address and id) and whether it started fresh or
resumed; placement.py reads these lines back.

A config or data error (and any other failure `train` reports: no GPU, a non-finite
loss) is returned as a result with status "failed", not raised: raising would make it
look like a crash, and retrying it would fail the same way. Only a worker that dies
(killed process, lost node, out of memory) makes Ray retry the task.
"""
import contextlib
import json
import os
import socket
import time
from pathlib import Path

from ..stop_reasons import FINAL


def _checkpoint_epoch(path):
    """The number of finished epochs (and the batch inside the next one) in checkpoint.npz."""
    import numpy as np
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        return int(meta["epoch"]), int(meta["batch"])
    except Exception:
        return None, None


def _where():
    """This worker's host name, its Ray node's address and id (the host name and None outside Ray)."""
    host = socket.gethostname()
    try:
        import ray
        node_id = ray.get_runtime_context().get_node_id()
        return {"host": host, "node": ray.util.get_node_ip_address(), "node_id": node_id[:12] if node_id else None}
    except Exception:           # not in a Ray worker (a direct call): the host is all we know
        return {"host": host, "node": host, "node_id": None}


def _failure(kind, message, run_dir, extra):
    return dict(extra, status="failed", kind=kind, message=" ".join(str(message).split()), run_dir=str(run_dir))


def run_one(spec):
    """Train (or resume) one run; return {status, summary | kind+message, attempt, resumed_from, ...}."""
    from ...backend import BackendError
    from ..config import ConfigError
    from ...data import DataError
    from ..train import TrainingError, train

    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.npz"
    resumed_from, batch = _checkpoint_epoch(ckpt) if ckpt.is_file() else (None, None)
    log_path = run_dir / "train.log"
    attempt = 1
    if log_path.is_file():
        attempt += log_path.read_text(encoding="utf-8", errors="replace").count("--- sweep attempt ")
    info = dict(attempt=attempt, pid=os.getpid(), resumed_from=resumed_from, **_where())
    how = "fresh start" if resumed_from is None else (
        f"resuming from checkpoint.npz after epoch {resumed_from}" + (f", batch {batch}" if batch else ""))
    with open(log_path, "a", encoding="utf-8", buffering=1) as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print(f"--- sweep attempt {attempt}: pid {info['pid']} on {info['host']} (node {info['node']}, "
              f"id {info['node_id'] or '-'}) at {time.strftime('%Y-%m-%d %H:%M:%S')}; {how}", flush=True)
        try:
            if resumed_from is not None:
                result = train(resume=run_dir, overrides=spec.get("resume_overrides", ()), verbose=True,
                               progress=False)
            else:
                result = train(spec["config"], out=run_dir, verbose=True, progress=False)
        except ConfigError as e:
            print(f"error: {e}", flush=True)
            return _failure("config", e, run_dir, info)
        except DataError as e:
            print(f"error: {e}", flush=True)
            return _failure("data", e, run_dir, info)
        except (TrainingError, BackendError, MemoryError, OSError, ValueError) as e:
            msg = str(e) or type(e).__name__
            print(f"error: {msg}", flush=True)
            # train.load_data raises a DataError as TrainingError(...) from None: its context remains
            kind = "data" if isinstance(e.__context__, DataError) else "runtime"
            return _failure(kind, msg, run_dir, info)
    status = "done" if result.stop_reason in FINAL else result.stop_reason    # 'interrupted'
    return dict(info, status=status, summary=result.summary, run_dir=str(result.out_dir))
