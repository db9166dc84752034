"""Reading a YAML config file: UTF-8 text, valid YAML, each key once per mapping.

Every problem is a ConfigError naming the file (and the line), so that the command exits
2 as for any bad config.
"""
from pathlib import Path

import yaml

from .checks import ConfigError


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping: the key and both lines."""

    def __init__(self, key, first, again):
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first, self.again = key, first, again


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:          # an unhashable key: PyYAML's own error follows
                continue
        return super().construct_mapping(node, deep=deep)


def _text(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                          f"offset {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({e.strerror or e}); "
                          "give the path of a YAML file, e.g. configs/mnist_conv.yaml") from None


def read_yaml(path):
    """The mapping in the YAML file `path` (ConfigError when unreadable, not UTF-8 or not YAML)."""
    path = Path(path)
    text = _text(path)
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKey as e:
        raise ConfigError(f"config file {str(path)!r} gives the key {e.key!r} twice in one mapping (line {e.first} "
                          f"and line {e.again}); keep one (YAML keys are unique)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{at}: {problem}; "
                          "fix the file (YAML mapping of keys)") from None
    if raw is None:
        raise ConfigError(f"config file {str(path)!r} is empty; it needs at least model and data.name, "
                          "e.g. model: conv and data: {name: mnist} (see configs/quickstart.yaml)")
    return raw
