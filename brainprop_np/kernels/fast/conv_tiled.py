"""A convolution's GEMMs over a tile of images at a time: the im2col matrix never exists whole.

Conv2D.forward builds cols = im2col(x) (B·Ho·Wo, k·k·C) for the whole batch and keeps it
for the tags: for the CIFAR deep network's 64-channel 32×32 layer that is 302 MB per
step, written once and read three times from main memory. Here the batch is cut into
tiles of about TILE_BYTES of im2col rows, and each tile's rows are built, used and
dropped while they sit in the cache. MNIST conv's stride-2 layer (29 MB per batch of 128)
runs in tiles of 18 images, which shortens the whole step on one thread and on two
(docs/gpu_and_speed.md gives the measurement and its command):

  forward   y_t = im2col(x_t) · W                             for every tile t
  tags      grads = Σ_t im2col(x_t)ᵀ · fb_t                   (tiles in order)
  input fb  fb_in_t = col2im(fb_t · Bᵀ)                       (B: the feedback weights)

The feedback builds each tile's rows again from x instead of keeping them. A batch whose
whole im2col matrix fits one tile (WHOLE_MAX = TILE_BYTES) is one tile: blocks.TiledConv
then runs the layer's own methods. x (N, H, W, C), W and B (kh, kw, C, F), fb (N·Ho·Wo, F).
Forward and input feedback are the layer's products row by row, the tags add the tiles'
products in order: they agree with one GEMM of the batch to float rounding (BLAS may
block a tile otherwise than the whole matrix), not bit for bit.
"""
import numpy as np

from .im2col import _col2im, _im2col

TILE_BYTES = 4 << 20        # im2col rows per tile (bench/train_step.py --tile-mb: docs/gpu_and_speed.md)
MIN_TILE = 2                # images: im2col and col2im run one image per thread
WHOLE_MAX = TILE_BYTES      # up to this the whole matrix is built (one tile)


def conv_tile_images(x_shape, kernel_shape, out_hw, itemsize):
    """Images per tile for input x_shape: the whole batch when its im2col matrix fits
    WHOLE_MAX, else about TILE_BYTES of rows, at least MIN_TILE images. Never the thread
    count: the tiles set the order in which the tags are summed, so tiling adds no
    dependence on it (OpenBLAS's own products can round by its thread count, which is
    why a run keeps its count: docs/gpu_and_speed.md, Threads)."""
    kh, kw, c, _ = kernel_shape
    per_image = out_hw[0] * out_hw[1] * kh * kw * c * itemsize
    n = x_shape[0]
    if n * per_image <= WHOLE_MAX:
        return n
    return min(n, max(MIN_TILE, TILE_BYTES // per_image))


def _rows(x, kernel_shape, stride, pads, out_hw, cols):
    """cols[:rows of x] = im2col(x); returns that view."""
    ho, wo = out_hw
    k = kernel_shape[0] * kernel_shape[1] * x.shape[3]
    view = cols[:x.shape[0] * ho * wo]
    _im2col(view.size, x, kernel_shape[0], kernel_shape[1], stride, pads[0], pads[2], ho, wo, False,
            view.reshape((1, -1, k)))
    return view


def conv_tiled_forward(x, kernel_w, stride, pads, out_hw, tile):
    """y (N·Ho·Wo, F) = im2col(x) · W, `tile` images at a time."""
    n, (ho, wo), f = x.shape[0], out_hw, kernel_w.shape[-1]
    x, w2, p = np.ascontiguousarray(x), kernel_w.reshape(-1, f), ho * wo
    cols = np.empty((tile * p, w2.shape[0]), x.dtype)
    y = np.empty((n * p, f), x.dtype)
    for i in range(0, n, tile):
        rows = _rows(x[i:i + tile], kernel_w.shape, stride, pads, out_hw, cols)
        np.matmul(rows, w2, out=y[i * p:i * p + rows.shape[0]])
    return y


def conv_tiled_feedback(x, fb2, kernel_shape, fb_kernel, stride, pads, out_hw, tile):
    """(tags (kh, kw, C, F) = Σ_t im2col(x_t)ᵀ · fb_t, fb_in (N, H, W, C) = col2im(fb · Bᵀ) or
    None when fb_kernel is None), `tile` images at a time."""
    n, (ho, wo), f = x.shape[0], out_hw, kernel_shape[-1]
    x, fb2, p = np.ascontiguousarray(x), np.ascontiguousarray(fb2), ho * wo
    k = kernel_shape[0] * kernel_shape[1] * kernel_shape[2]
    cols = np.empty((tile * p, k), x.dtype)
    tags, part = np.zeros((k, f), x.dtype), np.empty((k, f), x.dtype)
    fb_in = None if fb_kernel is None else np.empty(x.shape, x.dtype)
    bt = None if fb_kernel is None else np.ascontiguousarray(fb_kernel.reshape(k, f).T)
    dcols = None if fb_kernel is None else np.empty((tile * p, k), x.dtype)
    for i in range(0, n, tile):
        rows = _rows(x[i:i + tile], kernel_shape, stride, pads, out_hw, cols)
        fb_t = fb2[i * p:i * p + rows.shape[0]]
        tags += np.matmul(rows.T, fb_t, out=part)
        if fb_in is not None:
            d = np.matmul(fb_t, bt, out=dcols[:rows.shape[0]])
            out = fb_in[i:i + tile]
            _col2im(d.size, d.reshape((1, -1, k)), kernel_shape[0], kernel_shape[1], stride, pads[0], pads[2],
                    ho, wo, False, out)
    return tags.reshape(kernel_shape), fb_in
