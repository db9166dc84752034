"""Hot loops, one signature for both backends.

`cpu.py` holds the NumPy reference (vectorised); `gpu.py` the CuPy versions built on the
hand-written CUDA sources `*.cu` in this folder. Layers reach them through
`backend.kernels`, never by importing either module directly.
"""
