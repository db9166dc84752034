"""Load the CUDA sources of this folder once per process, lazily.

Each `*.cu` file here is one job (im2col, max-pool, ReLU + BatchNorm, dropout, the
output step, the SGD updates, uniforms) and one `cupy.RawModule`: it is compiled with NVRTC the first time one of
its kernels is asked for (CuPy also caches the binary on disk, `~/.cupy/kernel_cache`
or `$CUPY_CACHE_DIR`), and the module and its kernels are kept for the life of the
process. Kernels are `extern "C"` functions named `<job>_f32` / `<job>_f64`. A source may
`#include "<header>.cuh"` of this folder (philox.cuh, the counter-based generator):
`read_source` pastes the header's text in its place, so that NVRTC needs no include path
and CuPy's kernel cache, keyed by the source text, sees a change of the header too.
`compile_seconds()` is the time spent so far compiling (or loading from that cache) the modules.

    fn = get_function("im2col_f32")           # a cupy.RawKernel
    fn((blocks_x, blocks_y, 1), (32, 8, 1), (x, cols, numpy.int32(n), ...))

RawKernel calls do not check argument types: pass arrays of the dtype the kernel
declares and numpy scalars (`numpy.int32` for `int`, `numpy.float32` for `float`, ...);
`kernels/gpu.py` does.
"""
import os
import re
import threading
import time

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("im2col.cu", "maxpool.cu", "relu_batchnorm.cu", "dropout.cu", "brainprop_output.cu", "sgd.cu",
           "random.cu")
OPTIONS = ("-std=c++17",)

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')
_lock = threading.Lock()
_modules = {}      # source file name -> cupy.RawModule
_functions = {}    # kernel name -> cupy.RawKernel
_index = None      # kernel name -> source file name
_seconds = [0.0]   # spent in first look-ups (NVRTC compile or CuPy's disk cache)


def source_path(name):
    """Absolute path of the CUDA source `name` (e.g. 'im2col.cu')."""
    return os.path.join(DIRECTORY, name)


_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"(\w+\.cuh)"[ \t]*$', re.M)


def expand_includes(code, directory=DIRECTORY):
    """CUDA source text with each `#include "x.cuh"` replaced by the text of `directory`/x.cuh
    (headers include no others); any other #include is left for the compiler to refuse."""
    def header(m):
        with open(os.path.join(directory, m.group(1)), encoding="utf-8") as f:
            return f.read()
    return _INCLUDE.sub(header, code)


def read_source(name):
    """The text of source `name` as NVRTC compiles it (its .cuh headers pasted in)."""
    with open(source_path(name), encoding="utf-8") as f:
        return expand_includes(f.read())


def kernel_names(code):
    """Names of the `extern "C" __global__` kernels defined in CUDA source text."""
    return _KERNEL.findall(code)


_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(\d+)\s*$", re.M)
_defines = {}


def define_value(src, name):
    """The integer value of `#define name N` in source `src` (e.g. BP_REDUCE_THREADS); read once."""
    if src not in _defines:
        _defines[src] = {k: int(v) for k, v in _DEFINE.findall(read_source(src))}
    try:
        return _defines[src][name]
    except KeyError:
        raise KeyError(f"{src} has no `#define {name} <integer>`") from None


def kernel_index():
    """{kernel name: source file} for every kernel of every source (read once)."""
    global _index
    if _index is None:
        index = {}
        for src in SOURCES:
            for name in kernel_names(read_source(src)):
                if name in index:
                    raise RuntimeError(f"CUDA kernel {name} is defined in both {index[name]} and {src}")
                index[name] = src
        _index = index
    return _index


def get_module(src):
    """The cupy.RawModule of source file `src`, created once per process."""
    with _lock:
        mod = _modules.get(src)
        if mod is None:
            import cupy
            mod = cupy.RawModule(code=read_source(src), options=OPTIONS)
            _modules[src] = mod
        return mod


def get_function(name):
    """The kernel `name` (a cupy.RawKernel); compiles its source on first use."""
    fn = _functions.get(name)
    if fn is None:
        src = kernel_index().get(name)
        if src is None:
            raise KeyError(f"no CUDA kernel named {name!r} in {', '.join(SOURCES)}")
        t = time.perf_counter()
        fn = get_module(src).get_function(name)
        _seconds[0] += time.perf_counter() - t
        _functions[name] = fn
    return fn


def compile_all():
    """Compile every source now (e.g. before timing or graph capture); returns the kernel names."""
    names = sorted(kernel_index())
    for name in names:
        get_function(name)
    return names


def compile_seconds():
    """Seconds spent so far compiling the modules with NVRTC (or loading them from CuPy's cache)."""
    return _seconds[0]
