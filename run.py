#!/usr/bin/env python3
"""Command line of brainprop_np.

    python run.py CONFIG.yaml [key.path=value ...] [--out DIR] [--init-from WEIGHTS]
    python run.py --resume RUN_DIR [key.path=value ...]
    python run.py CONFIG.yaml --load WEIGHTS            (or: python run.py --load RUN_DIR/weights_best.npz)

Exit status: 0 done; 1 runtime failure (missing data, no GPU, non-finite loss, unreadable
weights, out of memory, an error inside training or evaluation); 2 bad config, key, value
or command line; 130 interrupted (Ctrl-C: a checkpoint is written; the message says how
to resume). Every failure prints one line, `error: ...`, on stderr.
"""
import argparse
import os
import sys
from pathlib import Path

# OpenBLAS's idle threads otherwise spin for ~0.1 s after each GEMM and slow down the
# element-wise work that brainprop_np spreads over the cores (kernels/threads.py); this
# must be set before NumPy loads.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: ...` and exit status 2 (no usage block)."""

    def error(self, message):
        _fail(2, f"{message}; see python run.py --help")
        raise SystemExit(2)


def _parser():
    p = _Parser(
        prog="run.py",
        description="Train a network with BrainProp (or the EBP baseline) following the paper's protocol.",
        epilog="examples: python run.py configs/mnist_loccon.yaml | "
               "python run.py configs/mnist_conv.yaml train.epochs=2 device=cpu | "
               "python run.py --resume runs/mnist_conv/20250101-120000 train.epochs=100")
    p.add_argument("args", nargs="*", metavar="CONFIG | key=value",
                   help="a YAML config followed by dotted overrides such as train.epochs=2 algorithm=ebp")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<name>/<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--load", metavar="WEIGHTS",
                   help="evaluate saved weights (.npz, or Keras .h5) on the test set and print the accuracy")
    p.add_argument("--init-from", metavar="WEIGHTS", dest="init_from",
                   help="start training from these weights (.npz or Keras .h5), BatchNorm statistics included")
    p.add_argument("--explain", action="store_true",
                   help="run one learning trial on one test image and print, layer by layer, the choice, reward, "
                        "delta, feedback, tags and weight change (with --load: of those weights)")
    p.add_argument("--image", type=int, default=0, metavar="N", help="with --explain: which test image (default 0)")
    p.add_argument("--figures", metavar="DIR",
                   help="with --explain: save PNGs of the attention-gated feedback at the input and each 2-D layer")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final result")
    return p


def _fail(code, message):
    print("error: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
    return code


def _out_of_memory(e):
    what = " ".join(str(e).split()) or type(e).__name__
    return _fail(1, f"out of memory ({what}); try a smaller train.batch_size or train.eval_batch_size, "
                    "e.g. train.eval_batch_size=64")


def main(argv=None):
    ns = _parser().parse_intermixed_args(argv)
    from brainprop_np.backend import BackendError
    from brainprop_np.config import ConfigError
    from brainprop_np.data import DataError
    from brainprop_np.train import TrainingError, evaluate_weights, train

    positional = list(ns.args)
    config = None
    if positional and "=" not in positional[0]:
        config = positional.pop(0)
    overrides = positional
    for text in overrides:
        if "=" not in text:
            return _fail(2, f"argument {text!r} is not allowed; after the config give key=value overrides "
                            "such as train.epochs=2")
    if ns.init_from:
        overrides = overrides + [f"init_from={ns.init_from}"]
    progress = False if (ns.no_progress or ns.quiet) else None
    try:
        if (ns.explain or ns.figures) and config is None and ns.load:
            guess = Path(ns.load).resolve().parent / "config.yaml"      # a run folder's weights
            config = str(guess) if guess.is_file() else None
        if ns.explain or ns.figures:
            if config is None or ns.resume or ns.out or ns.init_from:
                return _fail(2, "--explain needs a config and is not allowed with --resume, --out or --init-from: "
                                "python run.py CONFIG.yaml --explain [--load WEIGHTS] [--figures DIR]")
            if ns.figures and not ns.explain:
                return _fail(2, "--figures is allowed only with --explain")
            if ns.image < 0:
                return _fail(2, f"--image {ns.image} is not allowed; use a test image index >= 0")
            from brainprop_np.explain import explain_config
            try:
                _, text, paths = explain_config(config, overrides, weights=ns.load, image_index=ns.image,
                                                figures=ns.figures)
            except ValueError as e:      # explain.py's checks (--image beyond the test set, the weights)
                return _fail(2, str(e))
            print(text)
            for path in paths:
                print(f"wrote {path}")
            return 0
        if ns.resume:
            if config is not None:
                return _fail(2, f"{config!r} is not allowed with --resume: the run folder holds its config; "
                                "give only key=value overrides")
            if ns.load or ns.out or ns.init_from:
                return _fail(2, "--resume is not allowed with --load, --out or --init-from")
            result = train(resume=ns.resume, overrides=overrides, verbose=not ns.quiet, progress=progress)
        elif ns.load:
            if config is None:
                guess = Path(ns.load).resolve().parent / "config.yaml"
                if not guess.is_file():
                    return _fail(2, f"--load {ns.load}: give the config too (no config.yaml beside the weights): "
                                    "python run.py CONFIG.yaml --load WEIGHTS")
                config = str(guess)
            if ns.out or ns.init_from:
                return _fail(2, "--load is not allowed with --out or --init-from")
            acc, n, name = evaluate_weights(config, ns.load, overrides, verbose=not ns.quiet)
            print(f"test accuracy {acc:.4f} ({round(acc * n)}/{n} images of the {name} test set), weights {ns.load}")
            return 0
        else:
            if config is None:
                return _fail(2, "no config given; usage: python run.py CONFIG.yaml [key=value ...] "
                                "(or --resume RUN_DIR, see --help)")
            result = train(config, out=ns.out, overrides=overrides, verbose=not ns.quiet, progress=progress)
    except ConfigError as e:
        return _fail(2, str(e))
    except (TrainingError, DataError, BackendError, RuntimeError) as e:
        return _fail(1, str(e))
    except ValueError as e:              # raised while training or evaluating: a runtime failure
        return _fail(1, str(e))
    except MemoryError as e:             # CuPy's OutOfMemoryError derives from it
        return _out_of_memory(e)
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        return _fail(1, f"cannot read or write{where}: {e.strerror or e}")
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    if result.interrupted:
        print(f"{result.summary.get('message', 'interrupted')}; checkpoint written. Resume with:\n"
              f"    python run.py --resume {result.out_dir}", file=sys.stderr, flush=True)
        return 130
    if ns.quiet:
        s = result.summary
        print(f"best val_acc {s['best_val_acc']} at epoch {s['best_epoch']} ({s['stop_reason']}); {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
