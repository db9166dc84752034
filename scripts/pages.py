"""What the scripts that write the docs' generated sections share: the section between two
marker lines of a page, replaced atomically, and the runs they train or read back.

    write_between_markers(Path("docs/results.md"), "class-scaling", text)
    print_and_write(text, args.write, "sweep-time")   # printed, and written when --write names a page
    summary = train_or_read(config, out, overrides)   # a finished run is read, not retrained
    mean_std([0.9925, 0.9935], 2, 100)                # '99.30 (0.07)'
"""
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from brainprop_np.files import write_text  # noqa: E402
from brainprop_np.run.stop_reasons import FINAL, INTERRUPTED, NON_FINITE_LOSS  # noqa: E402


def threads_note(link="gpu_and_speed.md#threads"):
    """The sentence under a table of short runs' accuracies: they depend on the thread count."""
    return (f"A run's figures depend on its CPU thread count (BLAS rounds by it: [Threads]({link})); "
            "on the same machine and NumPy build, `BRAINPROP_THREADS=N` before the command, with N the "
            "count given here, trains the same bits.")


def markers(name):
    """The begin and end marker lines of the section `name`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_between_markers(path, name, text):
    """Replace what lies between the marker lines of `name` in the page at `path` with `text`;
    SystemExit naming the markers when the page lacks them."""
    path = Path(path)
    begin, end = markers(name)
    page = path.read_text(encoding="utf-8")
    if begin not in page or end not in page:
        sys.exit(f"error: {path} lacks the marker lines {begin} and {end}")
    head, rest = page.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_text(path, f"{head}{begin}\n{text.rstrip()}\n{end}{tail}")


def print_and_write(text, page, name):
    """Print a generated section; with a page (a script's --write), also put it between that
    page's `name` marker lines."""
    print(text)
    if page:
        write_between_markers(page, name, text)


def mean_std(xs, digits, scale=1.0):
    """'99.27 (0.06)': the mean (sample standard deviation) of xs × scale; std '-' for one value."""
    xs = [scale * x for x in xs]
    sd = f"{statistics.stdev(xs):.{digits}f}" if len(xs) > 1 else "-"
    return f"{statistics.mean(xs):.{digits}f} ({sd})"


def train_or_read(config, out, overrides, verbose=False, accept=FINAL):
    """summary.json of the run in `out`: read when its stop_reason is one of `accept` (by
    default: it stopped for good), resumed when it was interrupted, trained when it is
    missing. A folder made with other overrides (`overrides.json` beside its files; the
    data's folder aside) is refused; a run that ends for another reason ends the script (stopped_for_good). Pass
    accept=FINAL + (NON_FINITE_LOSS,) where a diverging run is a result too."""
    import brainprop_np as bp
    from brainprop_np.run.failures import TrainingError
    out = Path(out)
    mine, summary = out / "overrides.json", out / "summary.json"
    if mine.is_file() and _settings(json.loads(mine.read_text())) != _settings(overrides):
        sys.exit(f"error: {out} was made with other settings; choose another --runs")
    if summary.is_file() and json.loads(summary.read_text()).get("stop_reason") in accept:
        return json.loads(summary.read_text())
    try:
        if (out / "checkpoint.npz").is_file():
            return stopped_for_good(out, bp.train(resume=out, verbose=verbose, progress=False).summary, accept)
        out.mkdir(parents=True, exist_ok=True)
        write_text(mine, json.dumps(list(overrides)))
        result = bp.train(config, out=out, overrides=list(overrides), verbose=verbose, progress=False)
        return stopped_for_good(out, result.summary, accept)
    except TrainingError as e:            # a non-finite loss (its files are written first), missing data, ...
        s = json.loads(summary.read_text()) if summary.is_file() else {}
        if s.get("stop_reason") != NON_FINITE_LOSS or NON_FINITE_LOSS not in accept:
            sys.exit(f"error: {e}")
        print(f"error: {e}", file=sys.stderr, flush=True)
        return s


def _settings(overrides):
    """The overrides that set what is trained: where the data lie (data.root) is not one."""
    return [o for o in overrides if not o.startswith("data.root=")]


def stopped_for_good(out, s, accept=FINAL):
    """s, the summary of the run in `out`, when its stop_reason is one of `accept`; else
    SystemExit: 130 with the command to continue when it was interrupted, 1 otherwise."""
    if s["stop_reason"] in accept:
        return s
    if s["stop_reason"] == INTERRUPTED:
        print(f"interrupted: {out} has {s['epochs_run']} finished epochs and a checkpoint; run the same "
              f"command again to continue", file=sys.stderr, flush=True)
        raise SystemExit(130)
    sys.exit(f"error: {out} stopped: {s['stop_reason']} after epoch {s['epochs_run']}; its settings need "
             f"changing (the run folder keeps what it did)")
