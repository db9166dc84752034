"""BrainProp: reward-based, attention-gated learning (Pozzi, Bohté & Roelfsema, 2020).

One trial, batched over B images:
  1. forward: q = network(x), the Q-values of the C actions;
  2. select:  action = argmax q with probability 1 − ε, else a sample of softmax(q);
  3. reward:  reward = 1 if action = label else 0;
  4. delta:   delta = reward − q[action]   (the reward-prediction error, broadcast globally);
  5. feedback from the chosen unit only (attention): fb_out[b, c] = [c = action_b], which
     every layer sends down and uses to tag its synapses (tag = pre × fb);
  6. update:  ΔW = lr · (1/B) · Σ_b delta_b · tag_b.
The random numbers of step 2 (and of dropout) come from the counter-based generator
Philox4x32-10 (brainprop_np/philox.py): image b's u_explore and u_sample are a pure function
of (seed, EXPLORE, output layer; trial number net.draws.step, b), the same on every backend.
Since tags are linear in fb_out, folding −delta_b/B into fb_out gives every layer
∂L/∂W of L = Σ_b ½ delta_b² / B directly (`trial` does this;
tests/test_brainprop_rule.py::test_per_trial_delta_times_tag_equals_folded_update shows
that the two agree).
"""
from .. import philox
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

    def key(self, net):
        """The key of the action choice's draws: (seed, EXPLORE, the output layer's index)."""
        return net.draws.key(philox.EXPLORE, len(net.layers) - 1)

    def uniforms(self, net, b, dtype):
        """(u_explore, u_sample), each (B,) uniforms in [0, 1): what a training trial at
        net.draws.step draws for its B images (the kernels draw them themselves; this is
        the NumPy reference, on the host)."""
        return philox.explore_uniforms(self.key(net), net.draws.step, b, dtype)

    def select(self, net, q):
        """action (B,) int64: argmax with probability 1 − ε, else sampled from softmax(q)."""
        u_explore, u_sample = self.uniforms(net, q.shape[0], q.dtype)
        xp = net.xp
        return net.backend.kernels.select_actions(q, self.epsilon, xp.asarray(u_explore), xp.asarray(u_sample))

    def trial(self, net, x, labels, train=True, actions=None, batch_size=None, metrics=None):
        """One batch of trials (steps 1–5 above; `SGD.step` does 6): leaves ∂L/∂W on the layers.

        Steps 2–4 and the feedback that enters at the output are one kernel,
        `brainprop_step` (one launch on the GPU):
          select:   action = select_actions(q, ε, u_explore, u_sample) when training, with
                    the uniforms of `uniforms` drawn inside the kernel; argmax q at test
                    time; the given `actions` when there are some;
          reward:   reward = [action = label];
          delta:    delta = reward − q[action];
          feedback: fb[b, c] = −delta_b / nominal if c = action_b else 0: attention at
                    the chosen unit, with delta folded in;
          and the batch's loss ½·Σ delta² / nominal and reward count Σ reward, and with
          `metrics` the epoch's sums (rules.base.METRICS) added on the device.
        nominal = batch_size (the nominal batch size; default the batch's own). A training
        trial draws (dropout, exploration) at trial number net.draws.step, then advances it.
        Returns a Trial (device arrays; nothing waits for the device).
        """
        q = net.forward(x, train)                                       # 1. forward
        nominal = batch_size or q.shape[0]
        key = self.key(net) if actions is None and train else None      # none: argmax
        actions, reward, delta, fb, loss, n_correct = net.backend.kernels.brainprop_step(   # 2.–5.
            q, labels, self.epsilon, key, net.draws.step, nominal, actions, metrics)
        net.feedback(fb)        # 5. down through every layer: tags, and grads ∂L/∂W (SGD.step does 6.)
        if train:
            net.draws.step += 1
        return Trial(q, actions, reward, delta, loss, n_correct)
