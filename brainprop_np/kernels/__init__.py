"""Hot loops, one signature for every kernel set.

`cpu.py` holds the NumPy reference (plain, vectorised; the tests compare with it),
`fast/` the compiled, fused, multi-core CPU set (numba; the default on the CPU),
`gpu.py` the CuPy versions built on the hand-written CUDA sources `*.cu` in this folder.
`threads.py` sets the CPU thread count of BLAS and the fast set together. Layers reach
the kernels through `backend.kernels`, never by importing these modules directly.
"""
