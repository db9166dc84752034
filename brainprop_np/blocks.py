"""The network's plan: which runs of layers execute as one fused block of the kernel set.

A network is a list of layers, and every layer can run on its own (`Layer.forward`,
`Layer.feedback`): that is the path to read, and the only one of the NumPy reference.
A kernel set may also offer fused blocks, which do the work of several layers in fewer
passes over memory. `plan` walks the layer list once and decides where they apply:

  ReLU → BatchNorm [→ Dropout]   ReluBatchNorm: two passes forward, two in feedback
                                 (kernels.relu_batchnorm_forward / _feedback); where the
                                 block runs its own feedback, training keeps only its
                                 input (kernels.relu_batchnorm_train_lean / _feedback_lean)
  Conv2D with a 1-channel input  DirectConv: no im2col (kernels.conv1_forward, conv1_tags,
                                 conv1_input_feedback); only where feedback runs through
                                 the layers themselves (symmetric or per-layer feedback
                                 weights; an untied network's wiring calls layer.feedback)
  that Conv2D → ReLU → BatchNorm DirectConvReluBatchNorm: the two blocks above joined where
  [→ Dropout]                    ReluBatchNorm is lean: the convolution takes BatchNorm's
                                 sums as it writes its output, and its tags are taken from
                                 the block's feedback as it is made (kernels.conv1_relu_stats,
                                 conv1_relu_batchnorm_tags): 12.8 MB read once less forward
                                 and 12.8 MB neither written nor read in feedback on MNIST
                                 conv; the same bits as the two blocks
  Conv2D with C > 1 channels     TiledConv: im2col, GEMMs and col2im a tile of images at a
                                 time (kernels.conv_tiled_forward / _feedback) when the
                                 whole im2col matrix would be more than one tile of
                                 kernels.conv_tile_images (about 4 MB: MNIST conv's 29 MB,
                                 the CIFAR deep network's 14–302 MB); a batch that fits one
                                 tile runs the layer's own methods. Same condition on the
                                 feedback as DirectConv

  Dense (not the output layer)   FoldedTags: the tags preᵀ·fb kept as their two factors
                                 (layers/grads.py's OuterTag; read, they are the array)
                                 until the update, which multiplies them into W with one
                                 GEMM (kernels.sgd_update_outer): the tags are never
                                 written (9.2 MB a step on MNIST loccon). Same condition
                                 on the feedback as DirectConv

Everything else is a `Single` step: one layer, its own methods.
ReluBatchNorm leaves on its layers exactly the state their own forward would (post,
xhat, inv_std, mask; the running statistics; grads after feedback), so a step may be
fused forward and run layer by layer in feedback; only its lean training forward (where
the block runs its own feedback) keeps its input instead of post and xhat. DirectConv,
and TiledConv when it tiles, keep the input instead of cols, which only their own
feedback reads. DirectConvReluBatchNorm leaves what DirectConv and the lean ReluBatchNorm
leave (the same state, the same bits). tests/test_blocks.py proves every block equal to
the layer-by-layer path for every preset, rule and feedback mode.
"""
from . import layers as L
from .layers.grads import OuterTag


class Single:
    """One layer run by its own forward and feedback."""

    def __init__(self, layers, first):
        self.layers, self.first, self.last = layers, first, first + len(layers) - 1

    def forward(self, h, train):
        return self.layers[0].forward(h, train)

    def feedback(self, fb, need_input_fb):
        return self.layers[0].feedback(fb, need_input_fb)

    def describe(self):
        return "+".join(l.name for l in self.layers)


class ReluBatchNorm(Single):
    """ReLU → BatchNorm, and the Dropout after them if there is one, fused.

    lean (the block runs its own feedback, and the set has the kernels): a training forward
    keeps only its input z, from which the feedback recomputes post and xhat; the layers'
    post and xhat are None until the next inference forward."""

    def __init__(self, layers, first, lean=False):
        super().__init__(layers, first)
        self.lean, self.z, self.mean = lean, None, None

    def forward(self, z, train, stats=None):
        """stats: None, or the batch (mean, var) of max(z, 0), taken by z's producer (lean only)."""
        relu, bn = self.layers[0], self.layers[1]
        drop = self.layers[2] if len(self.layers) == 3 else None
        self.z = None
        if drop is not None and drop.fixed_mask is not None:      # a check's fixed mask: layer by layer
            for layer in self.layers:
                z = layer.forward(z, train)
            return z
        dropout = None
        if drop is not None and train and drop.rate > 0.0:
            dropout = (drop.rate, drop.key, drop.draws.step)
        moving = (bn.state["moving_mean"], bn.state["moving_variance"], bn.momentum)
        gamma, beta = bn.params["gamma"], bn.params["beta"]
        if train and self.lean:
            y, self.mean, bn.inv_std, mask = bn.k.relu_batchnorm_train_lean(z, gamma, beta, bn.epsilon, moving,
                                                                           dropout, stats)
            self.z, relu.post, bn.xhat = z, None, None
        else:
            relu.post, bn.xhat, y, bn.inv_std, mask = bn.k.relu_batchnorm_forward(
                z, gamma, beta, bn.epsilon, train, moving, dropout)
        bn.train = train
        if drop is not None:
            drop.mask = mask
        return y

    def dropout_mask(self):
        """The mask of the block's Dropout from its last forward (None without one)."""
        return self.layers[2].mask if len(self.layers) == 3 else None

    def feedback(self, fb, need_input_fb):
        relu, bn = self.layers[0], self.layers[1]
        mask = self.dropout_mask()
        if self.z is not None:
            fb_in, bn.grads["gamma"], bn.grads["beta"] = bn.k.relu_batchnorm_feedback_lean(
                fb, mask, self.z, self.mean, bn.params["gamma"], bn.inv_std, need_input_fb)
        else:
            fb_in, bn.grads["gamma"], bn.grads["beta"] = bn.k.relu_batchnorm_feedback(
                fb, mask, bn.xhat, relu.post, bn.params["gamma"], bn.inv_std, bn.train, need_input_fb)
        return fb_in


class DirectConv(Single):
    """A convolution of a 1-channel input computed straight from the image (no im2col)."""

    def keep_input(self, x):
        """The layer keeps x for the tags (no cols)."""
        conv = self.layers[0]
        conv.x_shape, conv.x, conv.cols = x.shape, x, None
        return conv

    def forward(self, x, train):
        conv = self.keep_input(x)
        return conv.k.conv1_forward(x, conv.params["kernel"], conv.stride, conv.pads, conv.out_hw)

    def feedback(self, fb, need_input_fb):
        conv = self.layers[0]
        w = conv.params["kernel"]
        conv.grads["kernel"] = conv.k.conv1_tags(conv.x, fb, w.shape, conv.stride, conv.pads)
        if not need_input_fb:
            return None
        return conv.k.conv1_input_feedback(conv.x_shape, fb, conv.feedback_weights(), conv.stride, conv.pads)


class DirectConvReluBatchNorm(Single):
    """A 1-channel Conv2D → ReLU → BatchNorm [→ Dropout] in training: the convolution takes the
    batch statistics while it writes z, and the tags are taken from the block's feedback as it
    is made (kernels.conv1_relu_stats, conv1_relu_batchnorm_tags). Inference, a fixed dropout
    mask, and feedback to the network's input run DirectConv and ReluBatchNorm."""

    def __init__(self, layers, first):
        super().__init__(layers, first)
        self.conv, self.norm = DirectConv(layers[:1], first), ReluBatchNorm(layers[1:], first + 1, lean=True)

    @property
    def z(self):
        """The convolution's output kept by a training forward (None after inference)."""
        return self.norm.z

    def forward(self, x, train):
        drop = self.layers[3] if len(self.layers) == 4 else None
        if not train or (drop is not None and drop.fixed_mask is not None):
            return self.norm.forward(self.conv.forward(x, train), train)
        conv = self.conv.keep_input(x)
        z, mean, var = conv.k.conv1_relu_stats(x, conv.params["kernel"], conv.stride, conv.pads, conv.out_hw)
        return self.norm.forward(z, train, stats=(mean, var))

    def feedback(self, fb, need_input_fb):
        if self.norm.z is None or need_input_fb:
            return self.conv.feedback(self.norm.feedback(fb, True), need_input_fb)
        conv, bn = self.layers[0], self.layers[2]
        conv.grads["kernel"], bn.grads["gamma"], bn.grads["beta"] = conv.k.conv1_relu_batchnorm_tags(
            conv.x, fb, self.norm.dropout_mask(), self.norm.z, self.norm.mean, bn.params["gamma"], bn.inv_std,
            conv.params["kernel"].shape, conv.stride, conv.pads)
        return None


class TiledConv(Single):
    """A Conv2D (C > 1) whose im2col matrix is large, run a tile of images at a time; the layer
    keeps x instead of cols. A batch that is one tile runs the layer's own methods."""

    def forward(self, x, train):
        conv = self.layers[0]
        w = conv.params["kernel"]
        tile = conv.k.conv_tile_images(x.shape, w.shape, conv.out_hw, x.dtype.itemsize)
        if tile >= x.shape[0]:
            conv.x = None
            return conv.forward(x, train)
        conv.x_shape, conv.x, conv.cols, conv.tile = x.shape, x, None, tile
        y = conv.k.conv_tiled_forward(x, w, conv.stride, conv.pads, conv.out_hw, tile)
        return y.reshape((x.shape[0],) + conv.output_shape)

    def feedback(self, fb, need_input_fb):
        conv = self.layers[0]
        if conv.cols is not None:                       # the forward ran the layer's own method
            return conv.feedback(fb, need_input_fb)
        conv.grads["kernel"], fb_in = conv.k.conv_tiled_feedback(
            conv.x, fb.reshape(-1, conv.filters), conv.params["kernel"].shape,
            conv.feedback_weights() if need_input_fb else None, conv.stride, conv.pads, conv.out_hw, conv.tile)
        return fb_in


class FoldedTags(Single):
    """A Dense layer whose tags stay as their factors until the update (OuterTag)."""

    def feedback(self, fb, need_input_fb):
        dense = self.layers[0]
        dense.grads["kernel"] = OuterTag(dense.pre, fb)
        return fb @ dense.feedback_weights().T if need_input_fb else None


def _relu_batchnorm_at(layers, i):
    """How many layers a ReluBatchNorm block starting at i covers (0: none)."""
    if not (i + 1 < len(layers) and isinstance(layers[i], L.ReLU) and isinstance(layers[i + 1], L.BatchNorm)):
        return 0
    return 3 if i + 2 < len(layers) and isinstance(layers[i + 2], L.Dropout) else 2


def _single_block_at(layers, i, layer_feedback):
    """DirectConv or TiledConv for a Conv2D at i, FoldedTags for a Dense at i (not the output
    layer), where the feedback runs through the layer; else None."""
    layer = layers[i]
    if not layer_feedback:
        return None
    if type(layer) is L.Dense:
        return FoldedTags
    if type(layer) is not L.Conv2D:
        return None
    return DirectConv if layer.input_shape[-1] == 1 else TiledConv


def plan(layers, kernels, layer_feedback=True):
    """The steps that run `layers` (a list of Single, ReluBatchNorm, DirectConv,
    DirectConvReluBatchNorm, TiledConv and FoldedTags).

    kernels: the kernel set (a block applies only where the set has its kernels);
    layer_feedback: False when an untied network's wiring drives the feedback.
    """
    fused, lean = hasattr(kernels, "relu_batchnorm_forward"), hasattr(kernels, "relu_batchnorm_train_lean")
    offered = {DirectConv: hasattr(kernels, "conv1_forward"), TiledConv: hasattr(kernels, "conv_tiled_forward"),
               FoldedTags: hasattr(kernels, "sgd_update_outer")}
    joined = lean and layer_feedback and hasattr(kernels, "conv1_relu_stats")
    steps, i = [], 0
    while i < len(layers):
        n = _relu_batchnorm_at(layers, i) if fused else 0
        kind = ReluBatchNorm
        if n == 0 and offered.get(_single_block_at(layers, i, layer_feedback)):
            n, kind = 1, _single_block_at(layers, i, layer_feedback)
            if kind is DirectConv and joined and _relu_batchnorm_at(layers, i + 1):
                n, kind = 1 + _relu_batchnorm_at(layers, i + 1), DirectConvReluBatchNorm
        if n == 0:
            n, kind = 1, Single
        if kind is ReluBatchNorm:
            steps.append(ReluBatchNorm(layers[i:i + n], i, lean=layer_feedback and lean))
        else:
            steps.append(kind(layers[i:i + n], i))
        i += n
    return steps
