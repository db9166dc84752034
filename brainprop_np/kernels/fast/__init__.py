"""The fast CPU kernel set: compiled (numba), fused, multi-core twins of kernels/cpu.py.

Same names, signatures and layouts as the NumPy reference; `backend.get_backend("cpu")`
takes this set when numba imports (`BRAINPROP_KERNELS=numpy`, or the config key
`kernels: numpy`, selects the reference). What is not worth compiling (the tiny
per-channel updates, softmax, EBP's output step) is the reference's own function.

Agreement with the reference (tests/test_fast_kernels.py):
  same bits    im2col, col2im, max-pool, ReLU, dropout mask and forward (its mask drawn
               in the kernel), the counter-based uniforms (philox.py), the output step's
               draws, SGD, BatchNorm's normalisation and feedback given the same statistics;
  rounding     BatchNorm's statistics and (dgamma, dbeta) (float64 sums in another order:
               within 1 ulp of float32 in practice); the output step's loss and the
               epoch's metrics (float64 sums in another order). The locally-connected
               GEMMs go through BLAS as in the reference.
Blocks of this set alone (blocks.py decides where they run; tests/test_blocks.py):
  same bits    relu_batchnorm_forward / _feedback against ReLU, BatchNorm and Dropout
               run one after another with this set's kernels, and
               relu_batchnorm_train_lean / _feedback_lean (the same, keeping only z), and
               conv1_relu_stats / conv1_relu_batchnorm_tags against conv1_forward,
               conv1_tags and those lean kernels;
  rounding     conv1_forward, conv1_tags, conv1_input_feedback (the direct convolution of
               a 1-channel input) against im2col and BLAS; conv_tiled_forward and
               conv_tiled_feedback (a tile of images at a time) against one GEMM of the batch;
               sgd_update_outer (a Dense kernel's update as one GEMM into W, the tags never
               stored) against the tags' product and sgd_update.
The thread count is set in kernels/threads.py, together with BLAS's.
"""
from ..cpu import (batched_matmul, batchnorm_update_moving, brainprop_output, ebp_output,  # noqa: F401
                   select_actions, softmax, xp)
from .conv_direct import conv1_forward, conv1_input_feedback, conv1_tags  # noqa: F401
from .conv_direct_block import conv1_relu_batchnorm_tags, conv1_relu_stats  # noqa: F401
from .conv_tiled import conv_tile_images, conv_tiled_feedback, conv_tiled_forward  # noqa: F401
from .batchnorm import (batchnorm_feedback_inference, batchnorm_feedback_train,  # noqa: F401
                        batchnorm_forward, batchnorm_stats, batchnorm_train_forward,
                        batchnorm_train_forward_update)
from .elementwise import (dropout_forward, dropout_mask, relu_feedback, relu_forward,  # noqa: F401
                          sgd_update)
from .im2col import col2im, im2col, maxpool_feedback, maxpool_forward  # noqa: F401
from .locally_connected import lc_feedback, lc_forward  # noqa: F401
from .output import brainprop_step  # noqa: F401
from .philox import philox_uniforms  # noqa: F401
from .relu_batchnorm import relu_batchnorm_feedback, relu_batchnorm_forward  # noqa: F401
from .relu_batchnorm_lean import relu_batchnorm_feedback_lean, relu_batchnorm_train_lean  # noqa: F401
from .update import sgd_update_outer  # noqa: F401

NAME = "fast"
