"""The paper's networks in PyTorch, in the variants a PyTorch user would try, and the step.

Used by bench/vs_pytorch.py; imports torch only inside its functions (pass the module in).

A variant is `layout` or `layout-gemm`:

    layout  nchw   torch's default memory format; the flatten before the first dense
                   layer reads (C, H, W), which is free in that format
            cl     model and input converted with memory_format=torch.channels_last; the
                   flatten reads (H, W, C) (Keras's order), which is free in that format
    gemm    (loccon only: the locally-connected layer, unfold + one GEMM per position)
            einsum F.unfold → (B, C·k·k, P), einsum with the (P, C·k·k, F) weight
            bmm    F.unfold, cols permuted to (P, B, C·k·k), torch.bmm with the weight
            strided  Tensor.unfold windows (a view, no im2col), permuted and copied once
                   to (P, B, K), torch.bmm; K in the layout's order ((C, k, k) for nchw,
                   (k, k, C) for cl)

All variants of a network compute the same function: their parameters hold the same
numbers in another order where the flatten or K order differs, and `to_variant` /
`to_reference` convert between the reference variant (the first of VARIANTS) and any
other, so that --check can compare q and the weight update of every variant.

Seen with torch 2.13.0 (CPU): torch.compile of cl-strided aborts with a corrupted heap in
the backward pass (inductor's code for the gradient of unfold windows copied in (k, k, C)
order; on a small case it gives wrong gradients without aborting). Its eager step is
right. vs_pytorch.py therefore probes every compiled step against eager before using it.
The ReLUs run in place (their backward needs only their output).

The step is the BrainProp trial of brainprop_np by autograd: q = net(x); action = argmax q
with probability 1 − ε, else a sample of softmax(q); reward = [action = label];
delta = reward − q[action]; loss = ½·Σ delta² / B; backward; W ← W − lr·∂L/∂W for every
parameter (kernels and BatchNorm's γ, β; l2 = 0 for these presets). The convolutions pad
'same' symmetrically (1 on each side), where Keras pads the stride-2 layer at the bottom
and right only: the same shapes and work.
"""

VARIANTS = {
    "dense": ["nchw"],
    "conv": ["nchw", "cl"],
    "loccon": ["nchw-einsum", "nchw-bmm", "nchw-strided", "cl-einsum", "cl-bmm", "cl-strided"],
}
BATCH = {"dense": 128, "conv": 128, "loccon": 32}
COMPILE_MODES = ["model", "step"]   # torch.compile(net) inside the eager step; torch.compile(step)
# probe's bounds: max|Δq| ≤ TOL["q"]·max|q|; per parameter, max|Δ update| ≤ TOL["update"]·max|update|
# + TOL["ulps"]·2⁻²³·max|W| (the update is W_after − W_before: W's own rounding, e.g. a fused
# multiply-add in compiled code, shows in it as a few units in the last place of W)
TOL = {"q": 1e-4, "update": 1e-3, "ulps": 4}


def _split(variant):
    layout, _, gemm = variant.partition("-")
    return layout, gemm or None


def _lc_class(torch):
    nn = torch.nn

    class LocallyConnected2d(nn.Module):
        """Valid, unshared k×k weights (P, K, F): one GEMM per output position."""

        def __init__(self, c, f, hw, k, stride, variant):
            super().__init__()
            self.c, self.f, self.k, self.s = c, f, k, stride
            self.ho = (hw - k) // stride + 1
            self.layout, self.gemm = _split(variant)
            self.weight = nn.Parameter(torch.empty(self.ho * self.ho, c * k * k, f))

        def cols(self, x):
            k, s, p, b = self.k, self.s, self.ho * self.ho, x.shape[0]
            if self.gemm == "strided":
                win = x.unfold(2, k, s).unfold(3, k, s)                      # (B, C, Ho, Wo, k, k) view
                order = (2, 3, 0, 1, 4, 5) if self.layout == "nchw" else (2, 3, 0, 4, 5, 1)
                return win.permute(*order).reshape(p, b, -1)                 # (P, B, K), one copy
            return torch.nn.functional.unfold(x, k, stride=s)                # (B, C·k·k, P)

        def forward(self, x):
            b, ho, cols = x.shape[0], self.ho, self.cols(x)
            cl = self.layout == "cl"
            if self.gemm == "einsum":
                y = torch.einsum("bqp,pqf->bpf" if cl else "bqp,pqf->bfp", cols, self.weight)
                return y.reshape(b, ho, ho, self.f).permute(0, 3, 1, 2) if cl else y.reshape(b, self.f, ho, ho)
            if self.gemm == "bmm":
                cols = cols.permute(2, 0, 1)                                 # (P, B, C·k·k)
            y = torch.bmm(cols, self.weight)                                 # (P, B, F)
            if cl:
                return y.permute(1, 0, 2).reshape(b, ho, ho, self.f).permute(0, 3, 1, 2)
            return y.permute(1, 2, 0).reshape(b, self.f, ho, ho)

    return LocallyConnected2d


def _flatten_class(torch):
    class Flatten(torch.nn.Module):
        """Flatten in memory order: (C, H, W) for nchw, (H, W, C) for channels_last."""

        def __init__(self, layout):
            super().__init__()
            self.layout = layout

        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1) if self.layout == "cl" else x.flatten(1)

    return Flatten


def _layers(torch, model, variant):
    """The layer list and {parameter name: (reference shape, permutation)} where orders differ."""
    nn = torch.nn
    layout, gemm = _split(variant)
    lc, flat = _lc_class(torch), _flatten_class(torch)

    def bn(c):                                      # Keras: epsilon 1e-3, momentum 0.99
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    relu = (lambda: nn.ReLU(inplace=True))
    if model == "dense":
        return [nn.Flatten(), nn.Linear(784, 1500, bias=False), relu(), nn.Linear(1500, 1000, bias=False),
                relu(), nn.Linear(1000, 500, bias=False), relu(), nn.Linear(500, 10, bias=False)], {}
    if model == "conv":
        first = [nn.Conv2d(1, 32, 3, 1, 1, bias=False), relu(), bn(32),
                 nn.Conv2d(32, 32, 3, 2, 1, bias=False), relu(), bn(32)]
        c, hw = 32, 14
    else:
        first = [lc(1, 32, 28, 3, 1, variant), relu(), bn(32), lc(32, 32, 26, 3, 2, variant), relu(), bn(32)]
        c, hw = 32, 12
    layers = first + [nn.Dropout(0.3), flat(layout), nn.Linear(hw * hw * c, 500, bias=False), relu(),
                      nn.Dropout(0.3), nn.Linear(500, 10, bias=False)]
    orders = {}
    if layout == "cl":
        orders[f"{len(first) + 2}.weight"] = ((500, c, hw, hw), (0, 2, 3, 1))
        if gemm == "strided":
            orders["3.weight"] = ((144, 32, 3, 3, 32), (0, 2, 3, 1, 4))
    return layers, orders


def build(torch, model, variant, seed=1):
    """The network in `variant`, initialised as the paper (normal, the preset's init_std)."""
    from brainprop_np.presets import PRESET_SETTINGS
    layers, orders = _layers(torch, model, variant)
    net = torch.nn.Sequential(*layers)
    std = PRESET_SETTINGS[model]["init_std"]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight") and p.dim() > 1:                     # kernels; BN keeps γ=1, β=0
                p.copy_(torch.randn(p.shape, generator=g) * std)
    net.orders = orders
    if _split(variant)[0] == "cl":
        net = net.to(memory_format=torch.channels_last)
    return net.train()


def to_variant(torch, net, ref_state):
    """Load the reference variant's parameters into `net` (same numbers, net's order)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            w = ref_state[name]
            if name in net.orders:
                shape, perm = net.orders[name]
                w = w.reshape(shape).permute(*perm).reshape(p.shape)
            p.copy_(w)


def to_reference(torch, net):
    """{name: parameter in the reference variant's order} (copies)."""
    out = {}
    for name, p in net.named_parameters():
        w = p.detach()
        if name in net.orders:
            shape, perm = net.orders[name]
            inverse = [perm.index(i) for i in range(len(perm))]
            w = w.reshape([shape[i] for i in perm]).permute(*inverse).reshape(p.shape)
        out[name] = w.clone()
    return out


def make_step(torch, net, lr=0.1, epsilon=0.02):
    """step(x, y) -> q: one BrainProp trial by autograd, then plain SGD on every parameter."""
    params = list(net.parameters())

    def step(x, y):
        q = net(x)
        with torch.no_grad():
            greedy = q.argmax(1)
            sampled = torch.multinomial(torch.softmax(q, 1), 1)[:, 0]
            explore = torch.rand(q.shape[0]) < epsilon
            action = torch.where(explore, sampled, greedy)
            reward = (action == y).to(q.dtype)
        delta = reward - q.gather(1, action[:, None])[:, 0]
        loss = 0.5 * (delta * delta).sum() / q.shape[0]
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
        return q.detach()

    return step


def setup(torch, model, variant, compile_mode=None, epsilon=0.02, seed=0):
    """(step, net, x, y): the network, a batch of random MNIST-shaped inputs and labels, and
    the step, compiled per compile_mode (None: eager; "model": torch.compile(net) inside the
    step; "step": torch.compile of the whole step function)."""
    net = build(torch, model, variant)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH[model], 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (BATCH[model],), generator=g)
    if _split(variant)[0] == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    if compile_mode == "model":
        step = make_step(torch, torch.compile(net, dynamic=False), epsilon=epsilon)
    elif compile_mode == "step":
        step = torch.compile(make_step(torch, net, epsilon=epsilon), dynamic=False)
    else:
        step = make_step(torch, net, epsilon=epsilon)
    return step, net, x, y


def one_update(torch, model, variant, mode=None, ref_state=None):
    """(q, {name: weight update}, {name: weights before}) of one step on one batch with ε = 0
    and dropout off (deterministic), in the reference variant's order; weights from ref_state
    when given (else the variant's own initialisation)."""
    step, net, x, y = setup(torch, model, variant, mode, epsilon=0.0)
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    if ref_state is not None:
        to_variant(torch, net, ref_state)
    before = to_reference(torch, net)
    q = step(x, y).clone()
    after = to_reference(torch, net)
    return q, {k: after[k] - before[k] for k in after}, before


def probe(torch, model, variant, mode=None):
    """How far one step of (variant, compile mode) is from the reference variant's eager step
    (the first of VARIANTS), from the same weights and batch: max |Δq| and, for the parameter
    nearest its bound (TOL), max |Δ update|, each with its bound; ok when all are within."""
    q0, u0, before = one_update(torch, model, VARIANTS[model][0])
    q, u, _ = one_update(torch, model, variant, mode, before)

    def amax(t):
        return float(t.abs().max())
    dq, bound_q = amax(q - q0), TOL["q"] * amax(q0)
    du = {k: amax(u[k] - u0[k]) for k in u}
    bound = {k: TOL["update"] * amax(u0[k]) + TOL["ulps"] * 2.0 ** -23 * amax(before[k]) for k in u}
    share = {k: du[k] / max(bound[k], 1e-30) for k in u}
    worst = max(share, key=share.get)
    ok = dq <= bound_q and all(s <= 1.0 for s in share.values())            # NaN fails
    return {"variant": variant, "mode": mode, "dq": dq, "bound_q": bound_q, "du": du[worst],
            "bound_update": bound[worst], "worst": worst, "ok": bool(ok)}
