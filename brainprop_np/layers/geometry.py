"""Output size and padding of a sliding window, Keras's rules.

'valid': out = ceil((n − k + 1) / s), no padding.
'same':  out = ceil(n / s), total padding max((out − 1)·s + k − n, 0), split with the
         smaller half at the top/left (the extra row/column goes to the bottom/right).
"""
PADDINGS = ("same", "valid")


def window_1d(n, k, s, padding):
    """(out, pad_before, pad_after) along one axis of length n, kernel k, stride s."""
    if padding == "valid":
        out = (n - k) // s + 1
        return out, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def window_2d(h, w, k, s, padding, where="layer"):
    """((Ho, Wo), (top, bottom, left, right)) for an (h, w) input; one-line error if empty."""
    if padding not in PADDINGS:
        raise ValueError(f"{where}: padding={padding!r} is not allowed; use one of {', '.join(PADDINGS)}")
    ho, top, bottom = window_1d(h, k, s, padding)
    wo, left, right = window_1d(w, k, s, padding)
    if ho < 1 or wo < 1:
        raise ValueError(f"{where}: a {k}x{k} kernel with padding {padding!r} does not fit the {h}x{w} input")
    return (ho, wo), (top, bottom, left, right)


def check_window(kernel, stride, where):
    """Validate kernel size and stride (positive ints; odd kernel)."""
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"{where}: kernel={kernel!r} is not allowed; use an odd integer >= 1")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"{where}: stride={stride!r} is not allowed; use an integer >= 1")
