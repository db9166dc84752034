"""BrainProp: reward-based, attention-gated learning (Pozzi, Bohté & Roelfsema, 2020).

One trial, batched over B images:
  1. forward: q = network(x), the Q-values of the C actions;
  2. select:  action = argmax q with probability 1 − ε, else a sample of softmax(q);
  3. reward:  reward = 1 if action = label else 0;
  4. delta:   delta = reward − q[action]   (the reward-prediction error, broadcast globally);
  5. feedback from the chosen unit only (attention): fb_out[b, c] = [c = action_b], which
     every layer sends down and uses to tag its synapses (tag = pre × fb);
  6. update:  ΔW = lr · (1/B) · Σ_b delta_b · tag_b.
Since tags are linear in fb_out, folding −delta_b/B into fb_out gives every layer
∂L/∂W of L = Σ_b ½ delta_b² / B directly (`trial` does this; `tags_per_trial` in the
tests shows the two agree).
"""
from .base import Rule, Trial


class BrainProp(Rule):
    """ε-greedy Boltzmann selection, reward, delta and attention-gated feedback.

    epsilon: exploration probability (0.02 in the paper).
    The loss divides by the nominal batch size (`batch_size`), also for a last, smaller
    batch, as the original code does.
    """
    name = "brainprop"

    def __init__(self, epsilon=0.02):
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon={epsilon!r} is not allowed; use 0 <= epsilon <= 1")
        self.epsilon = float(epsilon)

    def select(self, net, q):
        """action (B,) int64: argmax with probability 1 − ε, else sampled from softmax(q)."""
        b = q.shape[0]
        u_explore = net.rng.random(b, dtype=q.dtype)
        u_sample = net.rng.random(b, dtype=q.dtype)
        return net.backend.kernels.select_actions(q, self.epsilon, u_explore, u_sample)

    def trial(self, net, x, labels, train=True, actions=None, batch_size=None):
        xp, k = net.xp, net.backend.kernels
        q = net.forward(x, train)
        if actions is None:
            actions = self.select(net, q) if train else q.argmax(axis=1)
        nominal = batch_size or q.shape[0]
        reward, delta, fb = k.brainprop_output(q, labels, actions, 1.0 / nominal)
        net.feedback(fb)
        loss = 0.5 * xp.sum(delta * delta) / nominal
        return Trial(q, actions, reward, delta, loss, xp.sum(reward))
