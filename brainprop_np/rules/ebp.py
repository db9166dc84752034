"""Error backpropagation baseline: softmax output, categorical cross-entropy.

L = −(1/B) Σ_b log softmax(q_b)[label_b]; the feedback entering the output units is
∂L/∂q = (softmax(q) − onehot(label)) / B, at every unit (no attention gating).
"""
from .base import Rule, Trial


class EBP(Rule):
    """Supervised baseline; the mean is over the images actually in the batch (Keras)."""
    name = "ebp"

    def trial(self, net, x, labels, train=True, actions=None, batch_size=None, metrics=None):
        xp, k = net.xp, net.backend.kernels
        q = net.forward(x, train)                 # dropout draws at trial net.draws.step
        b = q.shape[0]
        p, fb = k.ebp_output(q, labels, 1.0 / b)
        net.feedback(fb)
        loss = -xp.sum(xp.log(xp.maximum(p[xp.arange(b), labels], 1e-30))) / b
        chosen = q.argmax(axis=1)
        reward = (chosen == labels).astype(q.dtype)
        n_correct = xp.sum(reward)
        if metrics is not None:                   # views: added in place, no copy back
            loss_sum, correct = metrics[0:1], metrics[1:2]
            loss_sum += loss * b
            correct += n_correct
        if train:
            net.draws.step += 1
        return Trial(q, chosen, reward, None, loss, n_correct)
