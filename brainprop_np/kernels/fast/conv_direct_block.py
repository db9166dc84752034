"""A 1-channel Conv2D → ReLU → BatchNorm (→ Dropout) in training, as one block (MNIST's first).

Run as DirectConv and then the lean ReluBatchNorm, this block makes these passes over its
(M, F) maps, M = N·Ho·Wo (12.8 MB each on MNIST conv at batch 128):

  forward   conv1_forward writes z; the ReLU and BatchNorm's sums read z; the
            normalisation reads z and writes y
  feedback  the sums dbeta, dgamma read fb and z; fb_in reads fb and z and writes fb_in;
            conv1_tags reads fb_in

Here the two ends are joined:

  forward   pass 1: z, an output row at a time (conv_direct's conv_row), each position's
                    max(z, 0) added to BatchNorm's shifted sums as it is written, in
                    relu_batchnorm's fixed chunks (conv1_relu_stats);
            pass 2: the lean block's normalisation, given those statistics.
  feedback  pass 1: the lean block's sums (lean_sums);
            pass 2: tags = Σ x-window · fb_in, each image row's fb_in (Wo·F values,
                    relu_batchnorm_lean's fb_in_value) made in a buffer of its chunk and
                    used there (conv_direct's add_row_tags): fb_in is never stored
                    (conv1_relu_batchnorm_tags).

Every value goes through the same operations in the same order as the two blocks: the
same bits (tests/test_blocks.py). In float64 the statistics take the two blocks' path
(its centred second pass reads post), as does an empty batch. Only the tags are made: the
first layer of a network passes no feedback to its input (a network asked for it runs the
two blocks).
"""
import numpy as np

from .batchnorm import _rows, chunks
from .conv_direct import add_row_tags, chunk_sums, conv1_forward, conv_row, pad_images, tag_sums
from .jit import kernel, prange, serial
from .elementwise import relu_value
from .relu_batchnorm import _relu_stats, relu_shift, relu_sums_stats
from .relu_batchnorm_lean import fb_in_value, fb_in_coefficients, lean_sums


@serial
def _first_row(xp, w, stride, zero, out):
    """out (Wo, F) = z's first output row of image 0."""
    conv_row(xp, w, stride, 0, 0, zero, out)


@kernel
def _conv_relu_sums(xp, w, stride, n_chunks, shift, zero, z, s1, s2):
    """z (M, F) = the convolution, row i = (image, oy, ox), an output row (Wo, F) at a time
    in a buffer of the chunk; s1[k, c], s2[k, c] = Σ (post − shift), Σ (post − shift)² over the
    rows of chunk k in order, post = max(z, 0) (float64)."""
    m, f = z.shape
    wo = (xp.shape[2] - w.shape[1]) // stride + 1
    per_image = m // xp.shape[0]
    for k in prange(n_chunks):
        row, a1, a2 = np.empty((wo, f), z.dtype), np.zeros(f), np.zeros(f)
        r0, r1 = m * k // n_chunks, m * (k + 1) // n_chunks
        i = r0
        while i < r1:
            b, p = i // per_image, i % per_image
            oy, ox0 = p // wo, p % wo
            conv_row(xp, w, stride, b, oy, zero, row)
            for ox in range(ox0, min(wo, ox0 + r1 - i)):
                zi = z[i]
                for j in range(f):
                    v = row[ox, j]
                    zi[j] = v
                    d = np.float64(relu_value(v, zero)) - shift[j]
                    a1[j] += d
                    a2[j] += d * d
                i += 1
        s1[k] = a1
        s2[k] = a2


def conv1_relu_stats(x, kernel_w, stride, pads, out_hw):
    """(z (N, Ho, Wo, F), mean, var): the direct convolution of x (N, H, W, 1) and the batch
    statistics of max(z, 0), as conv1_forward and then relu_batchnorm's _relu_stats."""
    if x.dtype == np.float64 or x.shape[0] == 0:          # (no images: _relu_stats says so)
        z = conv1_forward(x, kernel_w, stride, pads, out_hw)
        return (z, *_relu_stats(_rows(z), store=False)[1:])
    kh, kw, _, f = kernel_w.shape
    xp, w = pad_images(x, (kh, kw), stride, pads, out_hw), np.ascontiguousarray(kernel_w.reshape(kh, kw, f))
    z = np.empty((x.shape[0] * out_hw[0] * out_hw[1], f), x.dtype)
    m, k, zero = z.shape[0], chunks(z.shape[0]), x.dtype.type(0)
    first = np.empty((out_hw[1], f), x.dtype)
    _first_row(xp, w, stride, zero, first)
    shift = relu_shift(first[0])
    s1, s2 = np.zeros((k, f)), np.zeros((k, f))
    _conv_relu_sums(z.size * kh * kw, xp, w, stride, k, shift, zero, z, s1, s2)
    return (z.reshape((x.shape[0],) + tuple(out_hw) + (f,)), *relu_sums_stats(shift, s1, s2, m, x.dtype))


@kernel
def _tags_of_fb_in(xp, fb, mask, masked, z, zero, mean, inv_std, a, b, s, stride, n_chunks, acc):
    """acc[k] = Σ over the images of chunk k of x-window · fb_in, fb_in = fb_in_value(fb, mask, z)
    made one image row at a time in a buffer (Wo, F) of the chunk; fb, mask, z (N, Ho, Wo, F)."""
    n = xp.shape[0]
    _, ho, wo, f = fb.shape
    for k in prange(n_chunks):
        row = np.empty((wo, f), fb.dtype)
        part, acc_k = chunk_sums(acc.shape[1], acc.shape[2], f, fb.dtype)
        for im in range(n * k // n_chunks, n * (k + 1) // n_chunks):
            for oy in range(ho):
                for ox in range(wo):
                    for j in range(f):
                        row[ox, j] = fb_in_value(fb[im, oy, ox, j], mask[im, oy, ox, j], masked, z[im, oy, ox, j],
                                                 zero, mean[j], inv_std[j], a[j], b[j], s[j])
                add_row_tags(xp, row, im, oy, stride, part, acc_k)
        acc[k] = acc_k


def conv1_relu_batchnorm_tags(x, fb, mask, z, mean, gamma, inv_std, kernel_shape, stride, pads):
    """The block's training feedback, fb (N, Ho, Wo, F) at its output (after the dropout,
    if any): (tags (kh, kw, 1, F), dgamma, dbeta), with the tags of fb_in, the feedback that
    BatchNorm and the ReLU pass to the convolution (relu_batchnorm_feedback_lean's)."""
    kh, kw, _, f = kernel_shape
    t, n = x.dtype, x.shape[0]
    fbc, zc = np.ascontiguousarray(fb), np.ascontiguousarray(z)
    mc = fbc if mask is None else np.ascontiguousarray(mask)     # not read without a mask
    dgamma, dbeta = lean_sums(_rows(fbc), _rows(mc), mask is not None, _rows(zc), mean, inv_std)
    a, b, s = fb_in_coefficients(dgamma, dbeta, gamma, inv_std, zc.size // f)
    acc = tag_sums(n, kernel_shape)
    _tags_of_fb_in(fbc.size * kh * kw, pad_images(x, (kh, kw), stride, pads, fb.shape[1:3]), fbc, mc,
                   mask is not None, zc, t.type(0), mean, inv_std, a, b, s, stride, len(acc), acc)
    return acc.sum(axis=0).astype(t).reshape(kernel_shape), dgamma, dbeta
