"""Batch normalisation with Keras semantics (`BatchNormalization()`, channels last)."""
from .base import Layer


class BatchNorm(Layer):
    """Per channel c (the last axis), over all other axes (M = B·H·W values):

    training:  mean, var = batch statistics (biased variance)
               xhat = (x − mean) / sqrt(var + ε),  y = gamma·xhat + beta
               moving_mean ← momentum·moving_mean + (1 − momentum)·mean
               moving_variance ← momentum·moving_variance + (1 − momentum)·var·M/(M − 1)
    inference: y = gamma·(x − moving_mean)/sqrt(moving_variance + ε) + beta

    Feedback (training): the units' feedback fb is centred and decorrelated from xhat,
    as the derivative of batch normalisation requires:
        fb_in = gamma/sqrt(var + ε) · (fb − mean(fb) − xhat·mean(fb·xhat))
    (inference: fb_in = gamma/sqrt(moving_variance + ε) · fb).
    Tags: grads['gamma'] = Σ fb·xhat, grads['beta'] = Σ fb.
    Defaults are Keras's: momentum 0.99, ε 1e-3.
    """
    keras_class = "batch_normalization"

    def __init__(self, momentum=0.99, epsilon=1e-3):
        super().__init__()
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def _build(self, input_shape, rng):
        c = input_shape[-1]
        xp, dt = self.xp, self.dtype
        self.params["gamma"] = xp.ones(c, dtype=dt)
        self.params["beta"] = xp.zeros(c, dtype=dt)
        self.state["moving_mean"] = xp.zeros(c, dtype=dt)
        self.state["moving_variance"] = xp.ones(c, dtype=dt)
        return input_shape

    def forward(self, x, train):
        self.train = train
        if train:
            # and moving_mean ← momentum·moving_mean + (1 − momentum)·mean, moving_variance likewise
            # with the unbiased var·M/(M − 1), in place (on the GPU inside the statistics kernel)
            self.xhat, y, mean, var, self.inv_std = self.k.batchnorm_train_forward_update(
                x, self.params["gamma"], self.params["beta"], self.epsilon,
                self.state["moving_mean"], self.state["moving_variance"], self.momentum)
            return y
        self.inv_std = 1.0 / self.xp.sqrt(self.state["moving_variance"] + self.epsilon)
        self.xhat, y = self.k.batchnorm_forward(x, self.state["moving_mean"], self.inv_std,
                                                self.params["gamma"], self.params["beta"])
        return y

    def feedback(self, fb, need_input_fb=True):
        gamma = self.params["gamma"]
        step = self.k.batchnorm_feedback_train if self.train else self.k.batchnorm_feedback_inference
        fb_in, dgamma, dbeta = step(fb, self.xhat, gamma, self.inv_std)
        self.grads["gamma"] = dgamma
        self.grads["beta"] = dbeta
        return fb_in if need_input_fb else None
