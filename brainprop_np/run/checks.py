"""Value checks of the config schema (run/schema.py) and the error they raise.

Each check is called as check(key, value): it returns the value (normalised: a float for
a number, "none" for a null fallback) or raises ConfigError, one line naming the key, the
value and what is allowed. Each also knows that rule as text (`allowed`, for the
reference page and the messages: "use " + allowed) and as JSON Schema (`json()`).
"""
import re

from ..errors import one_line


class ConfigError(ValueError):
    """A bad config, key or value; the message is one line (key, value, what is allowed)."""

    def __init__(self, message):
        super().__init__(one_line(message, limit=10_000))


def show(value):
    """repr(value), cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad(key, value, rule):
    """The ConfigError `key=value is not allowed; rule`."""
    return ConfigError(f"{key}={show(value)} is not allowed; {rule}")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _or_null(schema, nullable):
    """`schema` that also accepts null when `nullable`."""
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


class Check:
    """A value check: kind (the type, in words), allowed (the rule), json() (JSON Schema)."""
    kind, allowed, nullable = "", "", False

    def __call__(self, key, v):
        raise NotImplementedError

    def json(self):
        raise NotImplementedError


class Choice(Check):
    """One of `options` (a tuple, or a function giving it: read when first needed); null → null_as."""
    kind = "choice"

    def __init__(self, options, nullable=False, null_as=None):
        self._options, self.nullable, self.null_as = options, nullable, null_as

    @property
    def options(self):
        return tuple(self._options() if callable(self._options) else self._options)

    @property
    def allowed(self):
        return f"one of {', '.join(self.options)}"

    def __call__(self, key, v):
        if v is None and self.nullable:
            return self.null_as
        if not isinstance(v, str) or v not in self.options:
            raise bad(key, v, "use " + self.allowed)
        return v

    def json(self):
        return {"enum": list(self.options) + ([None] if self.nullable else [])}


class Int(Check):
    """An integer from lo (to hi); `what` replaces the rule's text."""
    kind = "integer"

    def __init__(self, lo, hi=None, nullable=False, what=None):
        self.lo, self.hi, self.nullable = lo, hi, nullable
        self.allowed = what or (f"an integer >= {lo}" + (" or null" if nullable else ""))

    def __call__(self, key, v):
        if v is None and self.nullable:
            return None
        if not is_int(v) or v < self.lo or (self.hi is not None and v > self.hi):
            raise bad(key, v, "use " + self.allowed)
        return int(v)

    def json(self):
        bounds = {"minimum": self.lo} if self.hi is None else {"minimum": self.lo, "maximum": self.hi}
        return _or_null(dict({"type": "integer"}, **bounds), self.nullable)


_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class Num(Check):
    """A finite number >= lo (> lo when strict_lo) and <= hi; a float."""
    kind = "number"

    def __init__(self, lo=None, hi=None, strict_lo=False, nullable=False):
        self.lo, self.hi, self.strict_lo, self.nullable = lo, hi, strict_lo, nullable
        parts = ([f"> {lo}" if strict_lo else f">= {lo}"] if lo is not None else []) + \
            ([f"<= {hi}"] if hi is not None else [])
        self.allowed = "a number " + " and ".join(parts) + (" or null" if nullable else "")

    def __call__(self, key, v):
        if v is None and self.nullable:
            return None
        if isinstance(v, str) and _FLOAT_TEXT.match(v.strip()):
            v = float(v)       # PyYAML reads 5e-4 (no dot) as text; take it as the number it is
        ok = is_num(v) and v == v and v not in (float("inf"), float("-inf"))
        if ok and self.lo is not None:
            ok = v > self.lo if self.strict_lo else v >= self.lo
        if ok and self.hi is not None:
            ok = v <= self.hi
        if not ok:
            raise bad(key, v, "use " + self.allowed)
        return float(v)

    def json(self):
        out = {"type": "number"}
        if self.lo is not None:
            out["exclusiveMinimum" if self.strict_lo else "minimum"] = self.lo
        if self.hi is not None:
            out["maximum"] = self.hi
        return _or_null(out, self.nullable)


class Text(Check):
    """A non-empty string (a path when `path`)."""

    def __init__(self, nullable=False, path=False):
        self.nullable, self.kind = nullable, "path" if path else "string"
        self.allowed = "a non-empty string" + (" (a path)" if path else "") + (" or null" if nullable else "")

    def __call__(self, key, v):
        if v is None and self.nullable:
            return None
        if not isinstance(v, str) or not v.strip():
            raise bad(key, v, "use " + self.allowed)
        return v

    def json(self):
        return _or_null({"type": "string", "pattern": r"\S"}, self.nullable)


class Flag(Check):
    """true or false."""
    kind, allowed = "boolean", "true or false"

    def __call__(self, key, v):
        if not isinstance(v, bool):
            raise bad(key, v, "use " + self.allowed)
        return v

    def json(self):
        return {"type": "boolean"}


class Labels(Check):
    """null (every class) or a list of at least `least` distinct class labels (integers >= 0).

    Whether each label is one of the dataset's is checked once the dataset is known
    (data/split.py)."""
    kind = "list or null"

    def __init__(self, least=2):
        self.least, self.nullable = least, True
        self.allowed = (f"null (every class) or a list of at least {least} distinct class labels, "
                        "integers >= 0, e.g. [3, 8]")

    def __call__(self, key, v):
        if v is None:
            return None
        if not isinstance(v, (list, tuple)) or len(v) < self.least \
                or not all(is_int(x) and x >= 0 for x in v) or len(set(v)) != len(v):
            raise bad(key, v, "use " + self.allowed)
        return [int(x) for x in v]

    def json(self):
        items = {"type": "integer", "minimum": 0}
        return _or_null({"type": "array", "items": items, "minItems": self.least, "uniqueItems": True}, True)
