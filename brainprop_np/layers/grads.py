"""A layer's `grads`: {param name: ∂L/∂param}, read as arrays, whatever form a step stored.

A fused step of the fast set (blocks.FoldedTags) stores a Dense kernel's tags preᵀ · fb as
their two factors (OuterTag), so that the update multiplies them into W with one GEMM and
the (n_in, n_out) product is never written. Reading the entry (`grads["kernel"]`, `.get`,
`.items()`, `.values()`, `.copy()`) gives the product, made once and kept, so code that
reads the tags sees arrays as always; the optimiser reads what was stored (`stored`), and
its update is the same whether or not anyone read the tags first.
"""


class OuterTag:
    """The tags preᵀ · fb (n_in, n_out) of a Dense kernel, kept as pre (B, n_in) and fb (B, n_out)."""

    def __init__(self, pre, fb):
        self.pre, self.fb, self._product = pre, fb, None

    def product(self):
        """preᵀ · fb, computed on the first call."""
        if self._product is None:
            self._product = self.pre.T @ self.fb
        return self._product


def _array(g):
    return g.product() if isinstance(g, OuterTag) else g


class Grads(dict):
    """{param name: tags}; an OuterTag entry reads as its product."""

    def __getitem__(self, name):
        return _array(dict.__getitem__(self, name))

    def get(self, name, default=None):
        return self[name] if name in self else default

    def items(self):
        return [(name, self[name]) for name in self]

    def values(self):
        return [self[name] for name in self]

    def copy(self):
        return dict(self.items())

    def stored(self, name):
        """The entry as stored: an array, or an OuterTag (the optimiser folds it into W)."""
        return dict.__getitem__(self, name)
