"""Every CUDA source compiles, without a GPU.

* nvcc (where it is on the PATH): each `brainprop_np/kernels/*.cu` for sm_80 and sm_90
  (`nvcc -std=c++17 -arch=sm_XX --cubin`), warnings as errors, no register spills; each
  defines the `extern "C"` kernels that kernels/gpu.py launches.
* NVRTC (what cupy.RawModule uses; no host headers), where libnvrtc can be found: the
  same sources with the options of kernels/cuda_module.py. Set BRAINPROP_NVRTC to the
  library's path to point at one (e.g. from the `nvidia-cuda-nvrtc` wheel).
"""
import ctypes
import ctypes.util
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from brainprop_np.kernels import cuda_module  # noqa: E402

KERNEL_DIR = cuda_module.DIRECTORY
SOURCES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(KERNEL_DIR, "*.cu")))
NVCC = shutil.which("nvcc")
ARCHS = ("sm_80", "sm_90")


def test_sources_are_registered():
    """cuda_module loads every .cu of the folder, and no kernel name is defined twice."""
    assert sorted(cuda_module.SOURCES) == SOURCES
    index = cuda_module.kernel_index()
    assert len(index) == sum(len(cuda_module.kernel_names(cuda_module.read_source(s))) for s in SOURCES)


def test_sources_have_no_includes():
    """NVRTC has no host headers: a source includes only the .cuh headers of its folder (philox.cuh),
    which read_source pastes in, so that what NVRTC and CuPy's cache see has no #include left."""
    for src in SOURCES:
        raw = open(os.path.join(KERNEL_DIR, src), encoding="utf-8").read()
        for name in re.findall(r'^\s*#\s*include\s*(.*)$', raw, re.M):
            assert re.fullmatch(r'"\w+\.cuh"', name.strip()) and os.path.isfile(
                os.path.join(KERNEL_DIR, name.strip().strip('"'))), f"{src} includes {name}"
        text = cuda_module.read_source(src)
        assert not re.search(r"^\s*#\s*include", text, re.M), f"{src} has an #include after expansion"


def test_every_launched_kernel_is_defined():
    """Each kernel name that gpu.py launches exists, in both float widths."""
    text = open(os.path.join(KERNEL_DIR, "gpu.py"), encoding="utf-8").read()
    launched = set(re.findall(r'_launch\(\s*"(\w+)"', text))
    assert launched, "no _launch calls found in gpu.py"
    index = cuda_module.kernel_index()
    for name in sorted(launched):
        for suffix in ("f32", "f64"):
            assert f"{name}_{suffix}" in index, f"gpu.py launches {name}_{suffix}, which no .cu defines"


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("src", SOURCES)
def test_nvcc_compiles(src, arch, tmp_path):
    out = tmp_path / (src + f".{arch}.cubin")
    cmd = [NVCC, "-std=c++17", f"-arch={arch}", "--cubin", "-Werror", "all-warnings",
           "-Xptxas", "-v", "-o", str(out), os.path.join(KERNEL_DIR, src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    assert out.stat().st_size > 0
    report = proc.stdout + proc.stderr
    # every kernel of the source is in the cubin, and none spills registers to local memory
    for name in cuda_module.kernel_names(cuda_module.read_source(src)):
        assert f"Function properties for {name}" in report, f"{name} missing from the {arch} cubin"
    spills = re.findall(r"(\d+) bytes spill stores", report)
    assert all(int(s) == 0 for s in spills), f"register spills in {src} for {arch}:\n{report}"


# ---- NVRTC ---------------------------------------------------------------------------

def _find_nvrtc():
    cands = []
    if os.environ.get("BRAINPROP_NVRTC"):
        cands.append(os.environ["BRAINPROP_NVRTC"])
    for home in (os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            cands += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    for path in sys.path:   # the nvidia-cuda-nvrtc wheels
        cands += sorted(glob.glob(os.path.join(path, "nvidia", "*", "lib", "libnvrtc.so*")))
        cands += sorted(glob.glob(os.path.join(path, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
    found = ctypes.util.find_library("nvrtc")
    if found:
        cands.append(found)
    for cand in cands:
        if "builtins" in os.path.basename(cand) or ".alt." in os.path.basename(cand):
            continue
        try:
            # libnvrtc opens libnvrtc-builtins by name at compile time: load the one
            # beside it first, so that a library outside the loader's path works too
            for b in sorted(glob.glob(os.path.join(os.path.dirname(cand), "libnvrtc-builtins.so*"))):
                if ".alt." not in os.path.basename(b):
                    ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(cand)
        except OSError:
            continue
    return None


_NVRTC = _find_nvrtc()


def nvrtc_compile(lib, code, name, options):
    """Compile `code` with NVRTC; returns (ok, log)."""
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), name.encode(), 0, None, None)
    assert rc == 0, f"nvrtcCreateProgram failed ({rc})"
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, buf)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc == 0, buf.value.decode(errors="replace")


@pytest.mark.skipif(_NVRTC is None, reason="libnvrtc not found (set BRAINPROP_NVRTC to its path)")
@pytest.mark.parametrize("arch", ("compute_80", "compute_90"))
@pytest.mark.parametrize("src", SOURCES)
def test_nvrtc_compiles(src, arch):
    options = list(cuda_module.OPTIONS) + [f"--gpu-architecture={arch}"]
    ok, log = nvrtc_compile(_NVRTC, cuda_module.read_source(src), src, options)
    assert ok, f"NVRTC failed on {src} with {options}:\n{log}"
    assert "warning" not in log.lower(), f"NVRTC warnings on {src}:\n{log}"


# ---- rounding: no fused multiply-add where the reference's bits are claimed -------------

def _ptx_entries(ptx):
    """{kernel name: PTX body} of the `.entry` functions of a PTX text."""
    parts = re.split(r"^\s*\.(?:visible\s+)?\.entry\s+(\w+)\s*\(", ptx, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("src", SOURCES)
def test_bit_exact_kernels_have_no_fma(src, tmp_path):
    """nvcc -ptx with the default -fmad=true (NVRTC's default too): the kernels that claim the
    NumPy reference's bits (kernels.gpu.BIT_EXACT_KERNELS) hold no fma instruction."""
    from brainprop_np.kernels import gpu
    out = tmp_path / (src + ".ptx")
    cmd = [NVCC, "-std=c++17", "-arch=sm_90", "-ptx", "-o", str(out), os.path.join(KERNEL_DIR, src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    entries = _ptx_entries(out.read_text())
    names = cuda_module.kernel_names(cuda_module.read_source(src))
    assert sorted(entries) == sorted(names), f"PTX entries {sorted(entries)} != kernels {sorted(names)}"
    exact = [n for n in names if n.rsplit("_", 1)[0] in gpu.BIT_EXACT_KERNELS]
    fused = {n: len(re.findall(r"\bfma\.rn", entries[n])) for n in exact}
    assert not any(fused.values()), f"fused multiply-adds in kernels that claim NumPy's bits: {fused}"
    if src == "relu_batchnorm.cu":   # the check sees contraction at all: the Welford update contracts
        assert re.search(r"\bfma\.rn", entries["bn_stats_f32"])


def test_bit_exact_kernels_exist():
    from brainprop_np.kernels import gpu
    index = cuda_module.kernel_index()
    for name in gpu.BIT_EXACT_KERNELS:
        assert f"{name}_f32" in index and f"{name}_f64" in index, name
