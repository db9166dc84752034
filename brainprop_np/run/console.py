"""What a run says on the console, and about the machine it runs on: `Say` (epoch lines
on stdout, notices on stderr), the stop flag (Ctrl-C, SIGTERM), the thread count and the versions.

Standard output closed while a run trains (`brainprop train ... | head -1`): the line that
could not be written is dropped, `Say.closed` names the error, and stdout (stderr too when
it is the same pipe) goes to os.devnull from then on, so that Python's flush at exit does not
print "Exception ignored ... BrokenPipeError". The run then stops as after Ctrl-C (train.py).
"""
import contextlib
import os
import platform
import signal
import sys
import threading

import numpy as np

from ..kernels import threads
from .config import ConfigError


class Say:
    """Where a run talks: epoch lines on stdout, notices on stderr (silent when not verbose)."""

    def __init__(self, verbose=True):
        self.verbose = verbose
        self.closed = None          # after stdout was closed: the error, e.g. 'Broken pipe'

    def out(self, text):
        if self.verbose and not self.closed:
            self._write(text, sys.stdout)

    def err(self, text):
        if self.verbose:
            self._write(text, sys.stderr)

    def _write(self, text, stream):
        """print, or after a BrokenPipeError (the pipe of stdout, or of stderr as with `2>&1 | head`)
        the line dropped, `closed` set and the output sent to os.devnull from then on."""
        try:
            print(text, file=stream, flush=True)
        except BrokenPipeError as e:
            if stream is sys.stderr and not _same_file(1, 2):     # stderr alone closed: notes are lost
                _to_devnull(2)
                return
            self.closed = e.strerror or "Broken pipe"
            stdout_to_devnull()


def _same_file(fd1, fd2):
    try:
        a, b = os.fstat(fd1), os.fstat(fd2)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _to_devnull(fd):
    """File descriptor fd now writes to os.devnull."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def stdout_to_devnull():
    """After a BrokenPipeError on stdout: its file descriptor (stderr's too when it is the
    same pipe, as with `2>&1 | head`) now writes to os.devnull, so that what is still
    buffered, and Python's flush at exit, go nowhere instead of raising again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):      # not a file (captured): replace the object
        sys.stdout = open(os.devnull, "w")
        return
    if fd != 2 and _same_file(fd, 2):
        _to_devnull(2)
    _to_devnull(fd)


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class StopFlag:
    """While active (main thread only), the first Ctrl-C (SIGINT) or SIGTERM (what a batch
    scheduler sends before it kills a job) sets `.set`: the run finishes its batch, writes
    its checkpoint and stops; a second one aborts at once. A SIGINT that the process ignores
    (a background job of a script) stays ignored."""

    def __init__(self):
        self.set = False
        self.name = None            # 'Ctrl-C' or 'SIGTERM', once set
        self._old = {}

    def _handler(self, signum, frame):
        if self.set:
            self._restore()
            raise KeyboardInterrupt
        self.set, self.name = True, STOP_SIGNALS[signum]
        print(f"\n{STOP_SIGNALS[signum]}: finishing the current batch, then writing the checkpoint "
              "(a second Ctrl-C or SIGTERM aborts at once)", file=sys.stderr, flush=True)

    def _restore(self):
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._old[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc):
        self._restore()
        return False


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Within (main thread only): SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so that a
    driver a batch scheduler stops takes the same path as one stopped by hand."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)


def bars(progress):
    """Whether to draw progress bars: as asked, else when stderr is a terminal."""
    return progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())


def plural(n, word):
    """'1 epoch', '2 epochs', '1 thread', '4 threads'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def epochs_text(n):
    """'1 epoch', '2 epochs'."""
    return plural(n, "epoch")


def threads_text():
    """'1 thread', '4 threads': the BLAS and kernel threads now in use."""
    return plural(threads.current(), "thread")


def configure_threads(resumed=None):
    """BLAS and kernel threads: $BRAINPROP_THREADS, else the count a resumed run started
    with (`resumed`; sums round by the count, so a resume stays bit-exact), else the free
    cores (kernels/threads.py)."""
    try:
        threads.wanted_threads()               # a bad $BRAINPROP_THREADS is a ConfigError
    except ValueError as e:
        raise ConfigError(str(e)) from None
    explicit = bool(os.environ.get("BRAINPROP_THREADS", "").strip())
    threads.configure(None if explicit or not resumed else resumed)


def compile_seconds(backend):
    """Seconds the fast CPU kernels (numba) or the CUDA modules (NVRTC) took to compile or load
    from their caches (None for the NumPy reference)."""
    if backend.kernel_set == "fast":
        from ..kernels.fast.jit import compile_seconds as seconds
    elif backend.kernel_set == "cuda":
        from ..kernels.cuda_module import compile_seconds as seconds
    else:
        return None
    return round(seconds(), 3)


def cublas_fallback(backend):
    """Why the GPU's strided-batched cuBLAS GEMM fell back to cupy.matmul, or None (also on the CPU)."""
    if backend.kernel_set != "cuda":
        return None
    return backend.kernels.cublas_fallback()


def versions(backend):
    """The versions summary.json records: Python, NumPy, this package, and CuPy or numba when used."""
    from .. import __version__
    v = {"python": platform.python_version(), "numpy": np.__version__, "brainprop_np": __version__}
    if backend.name == "cupy":
        v["cupy"] = backend.xp.__version__
    if backend.kernel_set == "fast":
        import numba
        v["numba"] = numba.__version__
    return v
