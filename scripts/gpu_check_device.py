"""The device as gpu_check.sh reports it (stage 1), and the CUDA modules compiled with NVRTC (stage 2).

    python scripts/gpu_check_device.py gpu|cpu     # nvidia-smi, CuPy, PyTorch, the backend's checks
    python scripts/gpu_check_device.py --compile   # every kernel of kernels/*.cu through NVRTC, timed

Exit status 3 when the backend refuses the device (its one-line reason is printed).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def nvidia_smi():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit",
                              "--format=csv"], capture_output=True, text=True, timeout=15)
        print(out.stdout.strip() or out.stderr.strip())
    except (OSError, subprocess.SubprocessError) as e:
        print(f"nvidia-smi: {type(e).__name__}: {e}")


def cupy_line():
    try:
        import cupy
        rt, dev = cupy.cuda.runtime, cupy.cuda.Device()
        props = rt.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"python {sys.version.split()[0]}, CuPy {cupy.__version__}, CUDA runtime {rt.runtimeGetVersion()}, "
              f"driver {rt.driverGetVersion()}")
        print(f"device {dev.id}: {name}, compute capability {dev.compute_capability}, "
              f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.1f} GiB")
    except Exception as e:
        print(f"CuPy: {type(e).__name__}: {e}".splitlines()[0])


def torch_line():
    try:
        import torch
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}")
    except Exception as e:
        print(f"torch not importable: {e}")


def device(which):
    if which == "gpu":
        nvidia_smi()
    cupy_line()
    torch_line()
    import brainprop_np as bp
    try:
        be = bp.get_backend(which)          # device=gpu: the NVRTC, cuBLAS and cuRAND checks
    except Exception as e:
        print(f"backend: {e}")
        return 3
    print(f"backend: {be} on {be.device_name()}")
    return 0


def compile_all():
    from brainprop_np.kernels import cuda_module
    t = time.perf_counter()
    names = cuda_module.compile_all()
    print(f"{len(names)} kernels from {len(cuda_module.SOURCES)} sources in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "gpu"
    sys.exit(compile_all() if arg == "--compile" else device(arg))
