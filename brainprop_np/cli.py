"""The console command `brainprop` (also `python -m brainprop_np`, and `python run.py`): parse and
dispatch to the three rooms (run/ trains, evaluates, plots and sweeps; teach/ explains).

    brainprop train CONFIG.yaml [key.path=value ...] [--out DIR] [--init-from WEIGHTS] [--print-config]
    brainprop train --resume RUN_DIR [key.path=value ...]
    brainprop eval [CONFIG.yaml] --load WEIGHTS [key.path=value ...]
    brainprop explain CONFIG.yaml [--load WEIGHTS | --train-steps N] [--image N] [--figures DIR]
    brainprop plot RUN_DIR [RUN_DIR ...] [--out curves.png] [--train] [--classes | --alignment]
    brainprop sweep CONFIG ... --seeds 1-10        (also python -m brainprop_np.sweep; Ray)
    brainprop --version

`python run.py ARGS` is `brainprop train ARGS`, with --load and --explain as options.
Exit status: 0 done; 1 runtime failure (missing data, no GPU, non-finite loss, unreadable
weights, out of memory, an error inside training or evaluation); 2 bad config, key, value
or command line, a run folder another process trains in; 130 interrupted (Ctrl-C or
SIGTERM: a checkpoint is written; the message says how to resume). Every failure prints one line, `error: ...`, on stderr.
"""
import sys
from pathlib import Path

from .errors import OneLineParser, fail

COMMANDS = ("train", "eval", "explain", "plot", "sweep")
EXPLAIN_STEPS = 200       # default --train-steps of explain: weights that show learning


_fail = fail
_Parser = OneLineParser


def _parser(prog, mode):
    """The options of `run.py` (mode 'run'), `brainprop train`, `eval` or `explain`."""
    p = _Parser(
        prog=prog,
        description={"run": "Train a network with BrainProp (or the EBP baseline) following the paper's protocol.",
                     "train": "Train a network with BrainProp (or the EBP baseline) following the paper's protocol.",
                     "eval": "Evaluate saved weights on the config's test set.",
                     "explain": "Run one BrainProp learning trial on one test image and print it layer by layer."}[mode],
        epilog=f"examples: {prog} configs/quickstart.yaml | {prog} configs/mnist_conv.yaml train.epochs=2 device=cpu"
        if mode in ("run", "train") else None)
    example = {"eval": "data.root=DIR dtype=float64", "explain": "feedback=random seed=2"}.get(
        mode, "train.epochs=2 algorithm=ebp")
    p.add_argument("args", nargs="*", metavar="CONFIG | key=value",
                   help=f"a YAML config first, then dotted overrides such as {example}")
    if mode in ("run", "train"):
        p.add_argument("--out", metavar="DIR", help="run folder (default runs/<name>-<algorithm>/<timestamp>)")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
        p.add_argument("--init-from", metavar="WEIGHTS", dest="init_from",
                       help="start training from these weights (.npz or Keras .h5), BatchNorm statistics included")
        p.add_argument("--print-config", action="store_true",
                       help="print the resolved config (every key, preset defaults filled in) and exit: no training")
    if mode in ("run", "eval", "explain"):
        p.add_argument("--load", metavar="WEIGHTS",
                       help="evaluate saved weights (.npz, or Keras .h5) on the test set" if mode != "explain"
                       else "explain with these weights (.npz or Keras .h5)")
    if mode in ("run", "explain"):
        if mode == "run":
            p.add_argument("--explain", action="store_true",
                           help="run one learning trial on one test image and print, layer by layer, the choice, "
                                "reward, delta, feedback, tags and weight change")
        p.add_argument("--train-steps", type=int, default=EXPLAIN_STEPS, metavar="N", dest="train_steps",
                       help=f"without --load: train the config's network for N BrainProp steps (train.batch_size images each) "
                            f"on the dataset first, cached (default {EXPLAIN_STEPS}; 0: the untrained initial weights)")
        p.add_argument("--image", type=int, default=0, metavar="N", help="which test image (default 0)")
        p.add_argument("--figures", metavar="DIR",
                       help="save PNGs of the attention-gated feedback at the input and each 2-D layer")
    p.add_argument("--no-progress", action="store_true", help="no progress bars, even on a terminal")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors, warnings and the final result")
    return p


def _out_of_memory(e):
    what = " ".join(str(e).split()) or type(e).__name__
    phase, hint = getattr(e, "phase", None), getattr(e, "hint", None)
    if phase and hint:
        return _fail(1, f"out of memory while {phase} ({what}); {hint}")
    return _fail(1, f"out of memory ({what}); try a smaller train.batch_size or train.eval_batch_size, "
                    "e.g. train.eval_batch_size=64")


def _split_positional(args, prog):
    """(config, overrides) from the positional arguments, or an exit status with its error line."""
    positional = list(args)
    config = None
    if positional and "=" not in positional[0]:
        config = positional.pop(0)
    for text in positional:
        if "=" not in text:
            if config is None:
                return _fail(2, f"{text!r} comes after the override {positional[0]!r}: the config comes first: "
                                f"{prog} CONFIG.yaml key=value ...")
            return _fail(2, f"argument {text!r} is not allowed; after the config give key=value overrides "
                            "such as train.epochs=2")
    return config, positional


def _run(argv, prog, mode):
    """run.py and `brainprop train|eval|explain`: parse, run, map errors to exit statuses."""
    ns = _parser(prog, mode).parse_intermixed_args(argv)
    split = _split_positional(ns.args, prog)
    if isinstance(split, int):
        return split
    config, overrides = split
    if getattr(ns, "init_from", None):
        overrides = overrides + [f"init_from={ns.init_from}"]
    from brainprop_np.backend import BackendError
    from brainprop_np.data import DataError
    from brainprop_np.run.config import ConfigError
    from brainprop_np.run.failures import TrainingError, failure_text
    try:
        return _dispatch(ns, prog, mode, config, overrides)
    except ConfigError as e:
        return _fail(2, str(e))
    except (TrainingError, DataError, BackendError, RuntimeError) as e:
        return _fail(1, failure_text(e))        # a CUDA error: with the CUDA_LAUNCH_BLOCKING hint
    except ValueError as e:              # raised while training or evaluating: a runtime failure
        return _fail(1, str(e))
    except MemoryError as e:             # CuPy's OutOfMemoryError derives from it
        return _out_of_memory(e)
    except BrokenPipeError:
        return _stdout_closed()
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        return _fail(1, f"cannot read or write{where}: {e.strerror or e}")
    except KeyboardInterrupt:
        return _fail(130, "interrupted")


def _stdout_closed():
    """Exit status 1 and one line when standard output was closed under a command (`| head`);
    what is still buffered goes to os.devnull, so Python's flush at exit stays quiet.
    (A training run stops itself at an epoch's end: run/train.py.)"""
    from brainprop_np.run.console import stdout_to_devnull
    stdout_to_devnull()
    return _fail(1, "standard output was closed (Broken pipe)")


def _dispatch(ns, prog, mode, config, overrides):
    """The command the options ask for: print the config, explain, resume, evaluate or train."""
    explain = mode == "explain" or getattr(ns, "explain", False)
    load = getattr(ns, "load", None)
    resume, out, init_from = (getattr(ns, k, None) for k in ("resume", "out", "init_from"))
    progress = False if (ns.no_progress or ns.quiet) else None
    if getattr(ns, "print_config", False):
        return _print_config(prog, config, overrides, resume, load or explain)
    if explain and config is None and load:
        guess = Path(load).resolve().parent / "config.yaml"      # a run folder's weights
        config = str(guess) if guess.is_file() else None
    if not explain and (ns.__dict__.get("figures") or ns.__dict__.get("train_steps", EXPLAIN_STEPS) != EXPLAIN_STEPS):
        return _fail(2, "--figures and --train-steps are allowed only with --explain")
    if explain:
        if config is None or resume or out or init_from:
            return _fail(2, f"explaining needs a config and is not allowed with --resume, --out or "
                            f"--init-from: {prog} CONFIG.yaml {'--explain ' if mode == 'run' else ''}"
                            "[--load WEIGHTS] [--figures DIR]")
        return _explain(ns, config, overrides, load, progress)
    if mode == "eval" and not load:
        return _fail(2, f"--load WEIGHTS is required: {prog} [CONFIG.yaml] --load WEIGHTS")
    if load and not resume:
        return _evaluate(ns, prog, config, overrides, load, progress)
    from brainprop_np.run.train import train
    if resume:
        if config is not None:
            return _fail(2, f"{config!r} is not allowed with --resume: the run folder holds its config; "
                            "give only key=value overrides")
        if load or out or init_from:
            return _fail(2, "--resume is not allowed with --load, --out or --init-from")
        result = train(resume=resume, overrides=overrides, verbose=not ns.quiet, progress=progress)
    else:
        if config is None:
            return _fail(2, f"no config given; usage: {prog} CONFIG.yaml [key=value ...] "
                            "(or --resume RUN_DIR, see --help)")
        result = train(config, out=out, overrides=overrides, verbose=not ns.quiet, progress=progress)
    return _trained(result, mode, ns.quiet)


def _print_config(prog, config, overrides, resume, refused):
    """--print-config: the resolved config on stdout; nothing trains, nothing is written."""
    if refused:
        return _fail(2, "--print-config is not allowed with --load or --explain")
    from brainprop_np.run.config import dump
    from brainprop_np.run.setup import resolve_config
    if config is None and not resume:
        return _fail(2, f"no config given; usage: {prog} CONFIG.yaml [key=value ...] --print-config")
    if config is not None and resume:
        return _fail(2, f"{config!r} is not allowed with --resume: the run folder holds its config")
    print(dump(resolve_config(config, overrides, resume=resume)), end="")
    return 0


def _explain(ns, config, overrides, load, progress):
    """One learning trial traced layer by layer (teach/explain.py), its text and figure paths."""
    if ns.image < 0:
        return _fail(2, f"--image {ns.image} is not allowed; use a test image index >= 0")
    if ns.train_steps < 0:
        return _fail(2, f"--train-steps {ns.train_steps} is not allowed; use an integer >= 0 "
                        "(0: the untrained initial weights)")
    from brainprop_np.teach.explain import Diverged, explain_config
    try:
        _, text, paths = explain_config(config, overrides, weights=load, image_index=ns.image,
                                        figures=ns.figures, train_steps=0 if load else ns.train_steps,
                                        progress=progress)
    except Diverged as e:        # a runtime failure, as train's non-finite loss
        return _fail(1, str(e))
    except ValueError as e:      # explain.py's checks (--image beyond the test set, the weights)
        return _fail(2, str(e))
    print(text)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _evaluate(ns, prog, config, overrides, load, progress):
    """--load without --resume: the test accuracy of saved weights (run/evaluation.py)."""
    from brainprop_np.run.evaluation import evaluate_weights
    from brainprop_np.run.setup import check_weights_file
    if config is None:
        check_weights_file(load)                                    # before asking for the config
        guess = Path(load).resolve().parent / "config.yaml"
        if not guess.is_file():
            return _fail(2, f"--load {load}: give the config too (no config.yaml beside the weights): "
                            f"{prog} CONFIG.yaml --load WEIGHTS")
        config = str(guess)
    if getattr(ns, "out", None) or getattr(ns, "init_from", None):
        return _fail(2, "--load is not allowed with --out or --init-from")
    acc, n, name = evaluate_weights(config, load, overrides, verbose=not ns.quiet, progress=progress)
    print(f"test accuracy {acc:.4f} ({round(acc * n)}/{n} images of the {name} test set), weights {load}")
    return 0


def _trained(result, mode, quiet):
    """The exit status of a training run: 130 after Ctrl-C or SIGTERM (saying how to resume), else 0."""
    if result.interrupted:
        print(f"{result.summary.get('message', 'interrupted')}; checkpoint written. Resume with:\n"
              f"    {'python run.py' if mode == 'run' else 'brainprop train'} --resume {result.out_dir}",
              file=sys.stderr, flush=True)
        return 130
    if quiet:
        s = result.summary
        on = " ON THE MNIST SAMPLE (full MNIST not found)" if (s.get("dataset") or {}).get("fallback") else ""
        try:                                 # a finished run is a success, whether its line is read or not
            print(f"best val_acc {s['best_val_acc']} at epoch {s['best_epoch']} ({s['stop_reason']}){on}; "
                  f"{result.out_dir}", flush=True)
        except BrokenPipeError:
            from brainprop_np.run.console import stdout_to_devnull
            stdout_to_devnull()
    return 0


def run_main(argv=None):
    """`python run.py ...`: train, or with --load evaluate, or with --explain explain."""
    return _flushed(lambda a: _run(a, "run.py", "run"), sys.argv[1:] if argv is None else list(argv))


def _version():
    from brainprop_np import __version__
    return f"brainprop_np {__version__}"


USAGE = """usage: brainprop COMMAND [ARGS]   (or: python -m brainprop_np COMMAND [ARGS])

commands:
  train CONFIG [key=value ...]   train (--resume RUN_DIR, --out DIR, --init-from W, --print-config)
  eval [CONFIG] --load WEIGHTS   evaluate saved weights on the test set
  explain CONFIG                 one learning trial traced layer by layer (--load W, --figures DIR)
  plot RUN_DIR ...               learning curves of several runs (--out curves.png, --train, --classes)
  sweep CONFIG ... --seeds 1-10  configs x grid x seeds on Ray (needs the sweep extra, Ray)
  --version                      print the version

`brainprop COMMAND --help` shows a command's options."""


def main(argv=None):
    """The console command `brainprop`; returns the exit status."""
    return _flushed(_command, sys.argv[1:] if argv is None else list(argv))


def _flushed(command, argv):
    """command(argv) with standard output flushed before returning its status, so that a closed
    pipe (`| head`) is found here, where _stdout_closed says so, and not by Python at exit."""
    try:
        status = command(argv)
        if sys.stdout is not None:           # None when Python started with fd 1 closed (>&-)
            sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _stdout_closed()


def _command(argv):
    """main's dispatch to the subcommands."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd in ("--version", "-V", "version"):
        print(_version())
        return 0
    if cmd not in COMMANDS:
        hint = " (the config comes after the command: brainprop train CONFIG.yaml)" if "=" in cmd or \
            cmd.endswith((".yaml", ".yml")) else ""
        return _fail(2, f"unknown command {cmd!r}; use one of {', '.join(COMMANDS)}, or --version{hint}")
    prog = f"brainprop {cmd}"
    if cmd in ("train", "eval", "explain"):
        return _run(rest, prog, cmd)
    if cmd == "plot":
        from brainprop_np.run import plot
        return plot.main(rest, prog=prog)
    from brainprop_np.run.sweep import main as sweep_main     # Ray itself is imported when a sweep starts
    return sweep_main(rest, prog="brainprop sweep")


if __name__ == "__main__":
    sys.exit(main())
