"""Run the CUDA sources of brainprop_np/kernels on the CPU, for checks without a GPU.

The `.cu` files are compiled as C++ by g++ against a small prelude that maps CUDA's
built-ins onto a sequential scheduler: every block runs after the previous one; inside
a block, threads run one after the other, and when a kernel calls __syncthreads() the
block is rerun with one fiber (ucontext) per thread, all of them reaching each barrier
before any passes it. What this checks is the kernels' index arithmetic, bounds,
reduction order and results; it cannot see data races or timing.

`Emulator().get_function(name)` returns a callable with cupy.RawKernel's calling
convention, `fn(grid, block, args)`, taking NumPy arrays. Unlike CuPy it checks every
argument against the kernel's C signature (count, numpy scalar type, array dtype,
contiguity, writability), the CUDA launch limits, and, for arrays made by `GuardedNumpy`
(the stand-in for cupy in kernels/gpu.py), that nothing was written past either end.

A source's `#include "x.cuh"` (philox.cuh) is pasted in as kernels/cuda_module.py does for
NVRTC. Assumptions the kernels meet: no dynamic shared memory, no warp intrinsics, atomics only
as completion counters (blocks run in order, so atomicAdd is a plain add), and re-running
a launch from the start is harmless (no write to global memory before the first
__syncthreads()), since a launch that meets its first __syncthreads() is restarted.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref

import numpy as np

from brainprop_np.kernels.cuda_module import expand_includes

KERNEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "brainprop_np", "kernels")

PRELUDE = r"""
#include <math.h>
#include <cstddef>
#include <utility>
struct dim3 { unsigned int x, y, z; };
namespace cuda_emu {
extern dim3 thread_idx, block_idx, block_dim, grid_dim;
void sync_threads();
[[noreturn]] void trap();
template <typename... A, std::size_t... I>
inline void call_impl(void (*f)(A...), void** p, std::index_sequence<I...>) { f(*static_cast<A*>(p[I])...); }
template <typename... A>
inline void call(void (*f)(A...), void** p) { call_impl(f, p, std::index_sequence_for<A...>{}); }
int launch(const unsigned* dims, void (*body)(void*), void* arg, int* mode, char* err, int errlen);
}
#define threadIdx (::cuda_emu::thread_idx)
#define blockIdx (::cuda_emu::block_idx)
#define blockDim (::cuda_emu::block_dim)
#define gridDim (::cuda_emu::grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() ::cuda_emu::sync_threads()
#define __trap() ::cuda_emu::trap()
// correctly rounded arithmetic without contraction (g++ -std=c++17 does not fuse a·b + c)
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
// blocks run one after the other: atomics are plain read-modify-writes, fences no-ops
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { unsigned int o = *p; *p = o + v; return o; }
inline void __threadfence() { asm volatile("" ::: "memory"); }
"""

RUNTIME = r"""
#include <ucontext.h>
#include <cstring>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
namespace cuda_emu {
dim3 thread_idx, block_idx, block_dim, grid_dim;
namespace {
struct NeedFibers {};
bool trapped = false;
const std::size_t kStack = 128 * 1024;
bool fiber_mode = false;
ucontext_t sched;
std::vector<ucontext_t> ctx;
std::unique_ptr<char[]> stacks;
std::size_t n_stacks = 0;
std::vector<int> state;          // 0 runnable, 1 waiting at a barrier, 2 finished
std::vector<dim3> tid;
int cur = 0;
void (*body_fn)(void*) = nullptr;
void* body_arg = nullptr;

void fiber_main(int i) { body_fn(body_arg); state[i] = 2; }

void for_each_block(void (*run)(int), int nthreads) {
    for (unsigned z = 0; z < grid_dim.z; ++z)
        for (unsigned y = 0; y < grid_dim.y; ++y)
            for (unsigned x = 0; x < grid_dim.x; ++x) {
                block_idx = dim3{x, y, z};
                run(nthreads);
            }
}

void block_direct(int) {
    for (unsigned z = 0; z < block_dim.z; ++z)
        for (unsigned y = 0; y < block_dim.y; ++y)
            for (unsigned x = 0; x < block_dim.x; ++x) {
                thread_idx = dim3{x, y, z};
                body_fn(body_arg);
            }
}

void block_fibers(int n) {
    if (n_stacks < (std::size_t)n) { stacks.reset(new char[kStack * n]); n_stacks = n; }
    ctx.resize(n); state.assign(n, 0); tid.resize(n);
    int i = 0;
    for (unsigned z = 0; z < block_dim.z; ++z)
        for (unsigned y = 0; y < block_dim.y; ++y)
            for (unsigned x = 0; x < block_dim.x; ++x, ++i) {
                tid[i] = dim3{x, y, z};
                getcontext(&ctx[i]);
                ctx[i].uc_stack.ss_sp = stacks.get() + kStack * i;
                ctx[i].uc_stack.ss_size = kStack;
                ctx[i].uc_link = &sched;
                makecontext(&ctx[i], (void (*)())fiber_main, 1, i);
            }
    int alive = n;
    while (alive) {
        int waiting = 0, finished = 0;
        for (i = 0; i < n; ++i) {
            if (state[i] == 2) continue;
            state[i] = 0; cur = i; thread_idx = tid[i];
            swapcontext(&sched, &ctx[i]);
            if (state[i] == 2) { --alive; ++finished; } else { ++waiting; }
        }
        if (trapped) throw std::runtime_error("__trap() called by the kernel");
        if (waiting && finished)
            throw std::runtime_error("__syncthreads() reached by some threads of a block while others exited");
    }
}
}  // namespace

void sync_threads() {
    asm volatile("" ::: "memory");
    if (!fiber_mode) throw NeedFibers();
    state[cur] = 1;
    swapcontext(&ctx[cur], &sched);
    asm volatile("" ::: "memory");
}

[[noreturn]] void trap() {
    if (!fiber_mode) throw std::runtime_error("__trap() called by the kernel");
    trapped = true;              // this fiber ends here: the scheduler never resumes it
    state[cur] = 2;
    swapcontext(&ctx[cur], &sched);
    for (;;) {}
}

int launch(const unsigned* d, void (*body)(void*), void* arg, int* mode, char* err, int errlen) {
    try {
        grid_dim = dim3{d[0], d[1], d[2]};
        block_dim = dim3{d[3], d[4], d[5]};
        const unsigned long long nthreads = (unsigned long long)d[3] * d[4] * d[5];
        if (!d[0] || !d[1] || !d[2] || !nthreads) throw std::runtime_error("empty grid or block");
        if (nthreads > 1024 || d[3] > 1024 || d[4] > 1024 || d[5] > 64)
            throw std::runtime_error("block larger than CUDA allows");
        if (d[0] > 2147483647u || d[1] > 65535 || d[2] > 65535)
            throw std::runtime_error("grid larger than CUDA allows");
        body_fn = body; body_arg = arg;
        trapped = false;
        if (*mode == 0) {
            try {
                fiber_mode = false;
                for_each_block(block_direct, (int)nthreads);
                return 0;
            } catch (NeedFibers&) {
                *mode = 1;     // this kernel synchronises: rerun the whole launch with fibers
            }
        }
        fiber_mode = true;
        for_each_block(block_fibers, (int)nthreads);
        fiber_mode = false;
        return 0;
    } catch (std::exception& e) {
        fiber_mode = false;
        std::snprintf(err, errlen, "%s", e.what());
        return 1;
    }
}
}  // namespace cuda_emu
"""

_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)
_C_TYPES = {
    "float": (np.float32, ctypes.c_float),
    "double": (np.float64, ctypes.c_double),
    "int": (np.int32, ctypes.c_int32),
    "unsigned int": (np.uint32, ctypes.c_uint32),
    "long long": (np.int64, ctypes.c_int64),
    "unsigned long long": (np.uint64, ctypes.c_uint64),
    "signed char": (np.int8, ctypes.c_int8),
    "unsigned char": (np.uint8, ctypes.c_uint8),
}


def parse_params(text):
    """[(name, base C type, is_pointer, is_const)] of a kernel's parameter list."""
    params = []
    for raw in text.split(","):
        raw = " ".join(raw.replace("*", " * ").split())
        if not raw:
            continue
        words = raw.split(" ")
        name = words[-1]
        words = [w for w in words[:-1] if w not in ("__restrict__", "__restrict")]
        is_const = "const" in words
        is_ptr = "*" in words
        base = " ".join(w for w in words if w not in ("const", "*"))
        if base not in _C_TYPES:
            raise ValueError(f"cuda_emulator: unsupported parameter type {raw!r}")
        params.append((name, base, is_ptr, is_const))
    return params


def kernel_signatures(code):
    return {m.group(1): parse_params(m.group(2)) for m in _SIGNATURE.finditer(code)}


def available():
    """True when a C++ compiler for the emulator is on the PATH."""
    return shutil.which(os.environ.get("CXX", "g++")) is not None


# ---- guarded arrays ------------------------------------------------------------------

_GUARD = 256
_GUARD_BYTE = 0xA5
_guarded = weakref.WeakValueDictionary()   # id(base buffer) -> base buffer


class GuardedNumpy:
    """numpy, except that new arrays sit between guard bytes and start as garbage.

    Stands in for cupy (`kernels.gpu.xp`) under the emulator: an element that a kernel
    fails to write reads as NaN (floats) or -1 (integers), and a write past either end
    of an array is caught after the launch.
    """

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, dtype=float, order="C"):
        dt = np.dtype(dtype)
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        buf = np.empty(nbytes + 2 * _GUARD, dtype=np.uint8)
        buf[:_GUARD] = _GUARD_BYTE
        buf[_GUARD + nbytes:] = _GUARD_BYTE
        buf[_GUARD:_GUARD + nbytes] = 0xFF
        _guarded[id(buf)] = buf
        return buf[_GUARD:_GUARD + nbytes].view(dt).reshape(shape)

    def empty_like(self, a, dtype=None):
        return self.empty(a.shape, a.dtype if dtype is None else dtype)

    def zeros(self, shape, dtype=float):
        out = self.empty(shape, dtype)
        out[...] = 0
        return out

    def zeros_like(self, a, dtype=None):
        return self.zeros(a.shape, a.dtype if dtype is None else dtype)


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def check_guards(a):
    """Raise if a guarded array's guard bytes were overwritten."""
    root = _root(a)
    if _guarded.get(id(root)) is not root:
        return
    if not (np.all(root[:_GUARD] == _GUARD_BYTE) and np.all(root[-_GUARD:] == _GUARD_BYTE)):
        raise AssertionError(f"a kernel wrote outside an array of shape {a.shape} ({a.dtype})")


# ---- the emulator --------------------------------------------------------------------

class EmulatedKernel:
    """One kernel, called like cupy.RawKernel: fn(grid, block, args)."""

    def __init__(self, emulator, name, params):
        self.emulator, self.name, self.params = emulator, name, params
        self._entry = getattr(emulator.lib, f"emu_{name}")
        self._entry.restype = ctypes.c_int
        self._entry.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_void_p),
                                ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int]
        self._mode = ctypes.c_int(0)

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if shared_mem:
            raise AssertionError(f"{self.name}: dynamic shared memory is not emulated")
        grid, block = tuple(grid), tuple(block)
        if len(grid) != 3 or len(block) != 3 or not all(isinstance(v, int) for v in grid + block):
            raise AssertionError(f"{self.name}: grid and block must be 3-tuples of ints, got {grid}, {block}")
        if len(args) != len(self.params):
            raise AssertionError(f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        holders, arrays = [], []
        for arg, (pname, base, is_ptr, is_const) in zip(args, self.params):
            dt, ctype = _C_TYPES[base]
            where = f"{self.name}({pname})"
            if is_ptr:
                if not isinstance(arg, np.ndarray):
                    raise AssertionError(f"{where}: expected an array of {np.dtype(dt)}, got {type(arg).__name__}")
                if arg.dtype != np.dtype(dt):
                    raise AssertionError(f"{where}: expected {np.dtype(dt)}, got an array of {arg.dtype}")
                if not arg.flags.c_contiguous:
                    raise AssertionError(f"{where}: the array is not C-contiguous")
                if not is_const and not arg.flags.writeable:
                    raise AssertionError(f"{where}: the output array is read-only")
                holders.append(ctypes.c_void_p(arg.ctypes.data))
                arrays.append(arg)
            else:
                if type(arg) is not dt:
                    raise AssertionError(f"{where}: expected a numpy.{np.dtype(dt).name} scalar, "
                                         f"got {type(arg).__name__} {arg!r}")
                holders.append(ctype(arg))
        params = (ctypes.c_void_p * len(holders))(
            *[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
        dims = (ctypes.c_uint * 6)(*(grid + block))
        err = ctypes.create_string_buffer(512)
        with self.emulator.lock:
            rc = self._entry(dims, params, ctypes.byref(self._mode), err, len(err))
            self.emulator.launches[self.name] = self.emulator.launches.get(self.name, 0) + 1
        if rc:
            raise AssertionError(f"{self.name}: {err.value.decode()}")
        for a in arrays:
            check_guards(a)


class Emulator:
    """The kernels of every `*.cu` in brainprop_np/kernels, built with g++ (cached)."""

    def __init__(self, kernel_dir=KERNEL_DIR, cache_dir=None):
        sources = sorted(f for f in os.listdir(kernel_dir) if f.endswith(".cu"))
        texts = {s: expand_includes(open(os.path.join(kernel_dir, s), encoding="utf-8").read(), kernel_dir)
                 for s in sources}
        self.signatures = {}
        for text in texts.values():
            self.signatures.update(kernel_signatures(text))
        digest = hashlib.sha256((PRELUDE + RUNTIME + "".join(texts[s] for s in sources)).encode()).hexdigest()[:16]
        cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), f"brainprop_cuda_emu_{os.getuid()}")
        os.makedirs(cache_dir, exist_ok=True)
        lib_path = os.path.join(cache_dir, f"kernels_{digest}.so")
        if not os.path.exists(lib_path):
            self._build(texts, lib_path)
        self.lib = ctypes.CDLL(lib_path)
        self.lock = threading.Lock()
        self.launches = {}
        self._functions = {}

    @staticmethod
    def _build(texts, lib_path):
        cxx = os.environ.get("CXX", "g++")
        work = tempfile.mkdtemp(prefix="cuda_emu_")
        try:
            units = [os.path.join(work, "runtime.cpp")]
            with open(units[0], "w") as f:
                f.write(PRELUDE + RUNTIME)
            for src, text in texts.items():
                wrappers = []
                for name in kernel_signatures(text):
                    wrappers.append(
                        f'extern "C" int emu_{name}(const unsigned* dims, void** params, int* mode,\n'
                        f"        char* err, int n) {{\n"
                        f"    struct Body {{ static void run(void* p) {{ ::cuda_emu::call(&{name}, (void**)p); }} }};\n"
                        f"    return ::cuda_emu::launch(dims, &Body::run, params, mode, err, n);\n}}\n")
                unit = os.path.join(work, src + ".cpp")
                with open(unit, "w") as f:
                    f.write(PRELUDE + f'#line 1 "{src}"\n' + text + "\n" + "".join(wrappers))
                units.append(unit)
            tmp_lib = os.path.join(work, "kernels.so")
            cmd = [cxx, "-std=c++17", "-O1", "-g", "-fPIC", "-shared", "-Wall", "-Wno-unused-variable",
                   "-o", tmp_lib] + units
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"building the CUDA emulator failed:\n{proc.stderr}")
            os.replace(tmp_lib, lib_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def get_function(self, name):
        fn = self._functions.get(name)
        if fn is None:
            if name not in self.signatures:
                raise KeyError(f"no CUDA kernel named {name!r}")
            fn = self._functions[name] = EmulatedKernel(self, name, self.signatures[name])
        return fn


# ---- cuBLAS ------------------------------------------------------------------------------

def _col_major_view(arr, rows, cols, ld, stride, batch, trans):
    """The batch of op(X) (rows × cols) that cuBLAS reads at arr's first element, column-major
    with leading dimension ld and batch stride (elements); trans: X is stored cols × rows."""
    it = arr.itemsize
    ptr = arr.__array_interface__["data"][0]
    root = _root(arr)
    lo, hi = root.__array_interface__["data"][0], root.__array_interface__["data"][0] + root.nbytes
    strides = (stride * it, ld * it, it) if trans else (stride * it, it, ld * it)
    last = ptr + sum((n - 1) * s for n, s in zip((batch, rows, cols), strides)) + it
    if batch and rows and cols and not (lo <= ptr and last <= hi):
        raise AssertionError(f"cuBLAS would read outside an array of shape {arr.shape}: "
                             f"rows {rows}, cols {cols}, ld {ld}, stride {stride}, batch {batch}, trans {trans}")
    if batch and rows and cols:
        start = root.reshape(-1).view(np.uint8)[ptr - lo:ptr - lo + it].view(arr.dtype)
    else:
        start = arr
    return np.lib.stride_tricks.as_strided(start, shape=(batch, rows, cols), strides=strides)


def gemm_strided_batched(dtype, transa, transb, m, n, k, a, lda, stride_a, b, ldb, stride_b,
                         c, ldc, stride_c, batch):
    """A NumPy model of cublasGemmStridedBatchedEx (alpha 1, beta 0), with kernels.gpu's
    signature: column-major C_i (m × n, ldc) = op(A_i) (m × k) · op(B_i) (k × n), op T when
    trans* is 1. Checks the leading dimensions and that every access stays inside its array."""
    for x in (a, b, c):
        assert x.dtype == np.dtype(dtype), (x.dtype, dtype)
    assert transa in (0, 1) and transb in (0, 1)
    assert lda >= max(1, k if transa else m) and ldb >= max(1, n if transb else k) and ldc >= max(1, m), \
        (lda, ldb, ldc, m, n, k, transa, transb)
    opa = _col_major_view(a, m, k, lda, stride_a, batch, transa)
    opb = _col_major_view(b, k, n, ldb, stride_b, batch, transb)
    cv = _col_major_view(c, m, n, ldc, stride_c, batch, 0)
    cv[...] = np.matmul(opa, opb)


# ---- test helpers ----------------------------------------------------------------------

def patch_gpu_kernels(monkeypatch, emulator):
    """Make brainprop_np.kernels.gpu run on `emulator` with guarded NumPy arrays.

    Returns a Backend whose array module is NumPy and whose kernels are kernels.gpu, for
    networks built with `build_network(..., device=backend)`.
    """
    from brainprop_np.backend import Backend
    from brainprop_np.kernels import gpu
    monkeypatch.setattr(gpu, "xp", GuardedNumpy())
    monkeypatch.setattr(gpu, "_function", emulator.get_function)
    monkeypatch.setattr(gpu, "_gemm_strided_batched", gemm_strided_batched)
    return Backend("numpy", np, gpu)
