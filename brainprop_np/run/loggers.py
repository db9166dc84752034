"""Experiment logging: TensorBoard event files and MLflow runs, per the config's `log` section.

    log:
      tensorboard: true      # event files in the run folder (tensorboardX: no TensorFlow, no PyTorch)
      mlflow: ./mlruns       # null | true ($MLFLOW_TRACKING_URI, else ./mlruns) | a tracking URI or folder

`Loggers(cfg)` checks, before any data is loaded or file written, that the libraries are
installed (and that MLflow's tracking store answers); `open(run_dir, resume_id)` starts
them; `epoch(row)` logs one history.csv row (step = epoch); `close(status, files)` logs
the artifacts (weights, plots, history, summary, config) and ends the MLflow run. An
error while logging during training is reported in one line and turns that logger off:
logging never ends a training run.
"""
import os
import sys
from pathlib import Path

from ..errors import one_line


class LoggingError(RuntimeError):
    """A logger cannot start (library missing, tracking store unreachable); one line."""


def _one_line(e):
    """The first sentence of an exception's text, at most 200 characters."""
    return one_line(one_line(e).split(". ")[0], limit=200)


def flat_params(cfg, prefix=""):
    """The resolved config as {dotted.key: text} (MLflow params are strings of <= 500 characters)."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            text = str(v)
            out[prefix + k] = text if len(text) <= 500 else text[:497] + "..."
    return out


class Loggers:
    """The TensorBoard writer and the MLflow run of one training run (either may be off)."""

    def __init__(self, cfg, say_err=None):
        self.cfg, self.log = cfg, cfg.get("log") or {}
        self.say_err = say_err or (lambda text: print(text, file=sys.stderr, flush=True))
        self.tb = self.client = self.run_id = None
        self.tb_on = bool(self.log.get("tensorboard"))
        self.mlflow_uri = self.log.get("mlflow")
        if self.tb_on:
            try:
                import tensorboardX  # noqa: F401
            except ImportError:
                raise LoggingError('log.tensorboard=true needs tensorboardX, which is not installed; '
                                   'install it with: pip install -e ".[tensorboard]"') from None
        if self.mlflow_uri is not None:
            try:
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise LoggingError(f"log.mlflow={self.mlflow_uri} needs mlflow, which is not installed; "
                                   'install it with: pip install -e ".[mlflow]"') from None
            uri = str(self.mlflow_uri)                         # (schema.MLflow: true is resolved there)
            if "://" not in uri and not uri.startswith("file:"):
                uri = Path(uri).expanduser().resolve().as_uri()      # a folder: MLflow's file store
            if uri.startswith("file:"):
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # asked for by naming a folder
            try:
                self.client = MlflowClient(tracking_uri=uri)
                exp = self.client.get_experiment_by_name(cfg["name"])
                self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(cfg["name"])
            except Exception as e:
                raise LoggingError(f"log.mlflow={self.mlflow_uri}: the MLflow tracking store cannot be used "
                                   f"({_one_line(e)}); give a folder (e.g. log.mlflow=./mlruns) or the URI of "
                                   "a tracking server") from None

    @property
    def active(self):
        return self.tb is not None or self.run_id is not None

    def _off(self, which, e):
        self.say_err(f"note: {which} logging stopped ({_one_line(e)}); training goes on")
        if which == "TensorBoard":
            self.tb = None
        else:
            self.run_id = None

    def open(self, run_dir, resume_id=None):
        """Start the writers for `run_dir`; an MLflow run `resume_id` (from the checkpoint) continues."""
        run_dir = Path(run_dir)
        if self.tb_on:
            from tensorboardX import SummaryWriter
            self.tb = SummaryWriter(logdir=str(run_dir), flush_secs=30)
        if self.client is not None:
            try:
                if resume_id:
                    self.client.update_run(resume_id, status="RUNNING")
                    self.run_id = resume_id
                else:
                    run = self.client.create_run(self.experiment_id, run_name=f"{run_dir.parent.name}/{run_dir.name}",
                                                 tags={"run_dir": str(run_dir.resolve()),
                                                       "algorithm": self.cfg["algorithm"]})
                    self.run_id = run.info.run_id
                    from mlflow.entities import Param
                    params = [Param(k, v) for k, v in flat_params(self.cfg).items()]
                    for i in range(0, len(params), 100):
                        self.client.log_batch(self.run_id, params=params[i:i + 100])
            except Exception as e:
                self._off("MLflow", e)

    def epoch(self, row):
        """Log one history row (numbers only; NaN skipped) at step = row['epoch']."""
        step = int(row["epoch"])
        values = {k: float(v) for k, v in row.items()
                  if k != "epoch" and isinstance(v, (int, float)) and float(v) == float(v)}
        if self.tb is not None:
            try:
                for k, v in values.items():
                    self.tb.add_scalar(k, v, step)
                self.tb.flush()
            except Exception as e:
                self._off("TensorBoard", e)
        if self.run_id is not None:
            try:
                from mlflow.entities import Metric
                import time
                now = int(time.time() * 1000)
                self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])
            except Exception as e:
                self._off("MLflow", e)

    def close(self, status="FINISHED", files=()):
        """Log `files` (those that exist) as MLflow artifacts and end both loggers."""
        if self.tb is not None:
            try:
                self.tb.close()
            except Exception:
                pass
            self.tb = None
        if self.run_id is not None:
            try:
                for f in files:
                    if Path(f).is_file():
                        self.client.log_artifact(self.run_id, str(f))
                self.client.set_terminated(self.run_id, status=status)
            except Exception as e:
                self._off("MLflow", e)
