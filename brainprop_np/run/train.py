"""The training loop: the paper's protocol in a locked run folder, with exact resume.

    result = train("configs/mnist_conv.yaml", overrides=["train.epochs=2"])   # or a dict
    result = train(resume="runs/mnist_conv/20250101-120000", overrides=["train.epochs=10"])
    result.summary["best_val_acc"], result.out_dir, result.stop_reason

One screen of orchestration; each step is a named helper in its own file: the set-up
(setup.py), one epoch of learning trials and evaluation (loop.py), early stopping
(early_stopping.py), checkpoints and resume (resume.py), the records (records.py), the
run folder and its lock (runfolder.py), failures (failures.py), the console (console.py).
After every epoch the checkpoint, history and summary are rewritten; accuracy.png every
PLOT_EVERY (10) epochs and whenever the run stops. Before the first epoch every kernel is
compiled and run once on a throw-away network (warmup.py), outside the epoch timer. Ctrl-C
or SIGTERM writes a checkpoint (mid-epoch when inside one) that `--resume` continues bit for bit on
the CPU. Standard output closed (`brainprop train ... | head -1`) stops the run the same way
at the end of the epoch whose line could not be written (stop_reason 'interrupted', its
message naming stdout), then a one-line TrainingError says so and how to resume. A CUDA
error writes no checkpoint (the device's state is lost): one line (failures.DeviceFault),
and the last good checkpoint is kept.
"""
import contextlib

import numpy as np

from ..rules import make_rule
from .console import Say, StopFlag, bars
from .early_stopping import stop_reason
from .failures import OutOfMemory, TrainingError, guarded  # noqa: F401  (TrainingError, OutOfMemory: re-exported)
from .loop import evaluate_best, run_epoch, validate
from .records import (ARTIFACTS, done_line, open_loggers, record_alignment, record_epoch, start_lines,
                      summary, write_config, write_history, write_plot, write_summary)
from .resume import (backend_change, check_same_data, elsewhere, finished, pin_backend, read_checkpoint,
                     restore, set_checkpoint_weights, write_checkpoint)
from .runfolder import RunLock, new_run_dir, refuse_used_folder
from .setup import (build, check_batch, check_device, check_weights_file, device_batches, load_weights,
                    make_optimiser, prepare_data, resolve_config)
from .state import Run, TrainResult
from .warmup import warm_up
from . import stop_reasons as R


def train(config=None, out=None, overrides=(), resume=None, verbose=True, progress=None):
    """Run the paper's protocol for `config` (YAML path or dict) and return a TrainResult.

    out: run folder (default runs/<name>-<algorithm>/<YYYYmmdd-HHMMSS>); overrides:
    ['train.epochs=2', ...]; resume: a run folder to continue from its checkpoint.npz
    (overrides may change only config.RESUMABLE_KEYS, e.g. a larger train.epochs; a run
    with nothing left to do is reported in one line and returned without loading data; a
    train.epochs below the epochs already run is a ConfigError); verbose: print epoch
    lines and notices; progress: draw progress bars (default: when stderr is a terminal).

    Raises ConfigError (bad config, a batch larger than the training set, a --resume
    folder that is not a run), FolderInUse (another process trains in the run folder),
    TrainingError (runtime failure, e.g. missing data, no GPU, a non-finite loss, standard
    output closed: then the files are written first), OutOfMemory (naming the phase).
    On Ctrl-C or SIGTERM the result has stop_reason 'interrupted' and the checkpoint can be resumed;
    so has the run folder after standard output was closed.
    """
    say = Say(verbose)
    cfg = resolve_config(config, overrides, resume)
    with contextlib.ExitStack() as held:
        ckpt, on, same, change = None, cfg, {}, None           # on: cfg with the device and kernels to build on
        if resume is not None:
            lock = held.enter_context(RunLock(resume))        # refused while another process trains in it
            ckpt = read_checkpoint(resume)
            done = finished(resume, cfg, ckpt.meta, say)       # nothing left to do: say so, write nothing
            if done is not None:
                return done
            on, same = pin_backend(cfg, ckpt.meta)             # the device and kernels it ran on, where auto
        else:
            refuse_used_folder(out)                            # --out of a finished run: resume it instead
            check_weights_file(cfg["init_from"])               # before the data are loaded
        check_device(on, missing=elsewhere(same, resume))
        loggers = open_loggers(cfg, say)
        split, net, data_info = _set_up(on, ckpt)
        if resume is None:
            lock = held.enter_context(RunLock(new_run_dir(f"{cfg['name']}-{cfg['algorithm']}", out)))
            refuse_used_folder(out)                            # a run that ended while we set up
        lock.claim()
        run = Run(cfg, lock.folder, say, bars(progress), net=net, data_info=data_info,
                  rule=make_rule(cfg["algorithm"], cfg["brainprop"]["epsilon"]), opt=make_optimiser(cfg),
                  host_rng=np.random.default_rng([cfg["seed"], 1]))
        if ckpt:
            restore(run, ckpt.meta, ckpt.arrays)
            change = backend_change(run, ckpt.meta)
        run.train_it, run.val_it, run.align_batch = device_batches(cfg, split, net.backend)
        write_config(run)
        say.out(start_lines(run, split, resumed=ckpt is not None))
        if change:
            say.err(f"note: resumed on another device or kernel set ({change}): from here the run agrees "
                    "with an uninterrupted one to float rounding, not bit for bit")
        with guarded("warming up the kernels", "training", cfg, lambda: _kept(run)):
            run.warmup_seconds = warm_up(run)                  # compiles outside the epoch timer
        loggers.open(run.out_dir, resume_id=run.mlflow_run_id)
        run.loggers, run.mlflow_run_id = loggers, loggers.run_id or run.mlflow_run_id
        closed = _protocol(run, fresh=ckpt is None)
        return _finish(run, split, closed)


def _set_up(cfg, ckpt):
    """(split, network, data info): the data, and the network (on cfg's device and kernel set,
    a resume's pinned ones) starting from the checkpoint's weights, the init_from weights, or
    N(0, init_std²) from the seed."""
    split, data_info = prepare_data(cfg, "training", ckpt.meta["data"] if ckpt else None)
    check_batch(cfg, len(split.x_train))
    if ckpt:
        check_same_data(ckpt.meta, data_info)
    net = build(cfg, split.input_shape, split.n_classes, threads=ckpt.meta.get("threads") if ckpt else None)
    if ckpt:
        set_checkpoint_weights(net, ckpt.weights)
    elif cfg["init_from"]:
        load_weights(net, cfg["init_from"], "init_from")
    return split, net, data_info


def _epochs(run, stop_flag):
    """Epoch after epoch until early stopping, train.epochs, Ctrl-C / SIGTERM, a non-finite loss or
    standard output closed; returns True when it stopped because standard output was closed."""
    epochs = run.cfg["train"]["epochs"]
    run.count_wall()                                     # wall_seconds counts from here (the mark)
    while True:
        if run.batch == 0:                               # not inside an interrupted epoch
            run.stop_reason = stop_reason(run.stop, run.epoch, epochs)
            if run.stop_reason:
                return False
        if run.say.closed:                               # the last line written (start or epoch) failed
            _stdout_closed(run)
            return True
        row = run_epoch(run, stop_flag)                  # a learning trial and an SGD step per batch
        if row is None:                                  # Ctrl-C inside the epoch, or a non-finite loss
            return False
        row["val_acc"], classes = validate(run)          # inference mode: argmax q, and per class
        record_epoch(run, row, classes)                  # best weights, early stopping, files, epoch line
        if stop_flag.set and not run.say.closed:
            if stop_reason(run.stop, run.epoch, epochs) is None:
                run.stop_reason, run.message = R.INTERRUPTED, f"interrupted after epoch {run.epoch}"
                return False
            run.say.err(f"{stop_flag.name} came in the last epoch, after its training: the run finished")


def _stdout_closed(run):
    """Standard output was closed: stop here, at an epoch's end or before the first (resumed)
    epoch, as after Ctrl-C. The checkpoint of this point is on disk already (record_epoch, or
    the one resumed from) except before a fresh run's first epoch: then it is written now."""
    if not run.path("checkpoint.npz").is_file():
        write_checkpoint(run)
    if run.batch:
        where = f"in epoch {run.epoch + 1} after batch {run.batch}"
    else:
        where = f"after epoch {run.epoch}" if run.epoch else "before the first epoch"
    run.stop_reason = R.INTERRUPTED
    run.message = (f"standard output was closed ({run.say.closed}) {where} of {run.cfg['train']['epochs']}; "
                   f"the run stopped; checkpoint written; resume with: brainprop train --resume {run.out_dir}")


def _protocol(run, fresh):
    """_epochs with Ctrl-C and SIGTERM caught, NumPy's warnings silenced and failures named; a run that
    fails still draws the epochs it finished, and its loggers close. Returns _epochs' answer
    (whether standard output was closed)."""
    status = "FAILED"
    try:
        with StopFlag() as stop_flag, guarded(lambda: f"training stopped in epoch {run.epoch + 1}",
                                             lambda: run.phase, run.cfg, lambda: _kept(run)):
            if fresh:
                record_alignment(run)                    # epoch 0: the initial network
            return _epochs(run, stop_flag)
    except KeyboardInterrupt:
        status = "KILLED"
        if run.path("checkpoint.npz").is_file():
            run.say.err(f"aborted; the last checkpoint in {run.out_dir} is intact: "
                        f"brainprop train --resume {run.out_dir}")
        raise
    except (TrainingError, MemoryError):
        with contextlib.suppress(Exception):
            write_plot(run)                              # the run stopped: draw the epochs it finished
        raise
    finally:
        if run.stop_reason is None:
            run.loggers.close(status, [run.path(f) for f in ARTIFACTS])


def _kept(run):
    """After a device fault (no checkpoint is attempted): what is kept, and how to go on."""
    if run.path("checkpoint.npz").is_file():
        return (f"no checkpoint is written after a device fault: the last good checkpoint in {run.out_dir} "
                f"is kept (brainprop train --resume {run.out_dir})")
    return "no checkpoint is written after a device fault, and none was written before"


def _finish(run, split, closed=False):
    """After the last epoch: the best weights on the test set (with a holdout), the final
    records, the closing line; a non-finite loss, or a stop because standard output was
    closed (`closed`), is raised now, after the files."""
    from ..data import BatchIterator
    if run.stop_reason in R.FINAL and run.cfg["data"]["holdout"] and run.best_epoch:
        evaluate_best(run, BatchIterator(split.x_test, split.y_test, run.backend, run.cfg["dtype"]))
    run.count_wall()                                     # the last epoch's records, and the test set
    write_history(run)
    write_summary(run)
    write_plot(run)
    run.loggers.close({R.INTERRUPTED: "KILLED", R.NON_FINITE_LOSS: "FAILED"}.get(run.stop_reason, "FINISHED"),
                      [run.path(f) for f in ARTIFACTS])
    result = TrainResult(run.out_dir, summary(run), list(run.history))
    if run.stop_reason == R.NON_FINITE_LOSS or closed:
        raise TrainingError(run.message)
    if run.stop_reason != R.INTERRUPTED:
        run.say.out(done_line(run))
    return result
