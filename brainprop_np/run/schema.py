"""The config schema, declared once: one `Key` per dotted key (check, default, description).

From KEYS come the validator's tree (SCHEMA), the defaults (DEFAULTS), the required and
the resumable keys, the JSON Schema that editors use (`json_schema`) and the reference
page docs/config.md (scripts/config_reference.py writes both). The allowed values come
from the engine: rules/ (algorithms), backend.py (devices, kernel sets, dtypes),
feedback.py (feedback modes, sign scales), data/registry.py (datasets, label modes),
presets.py and specs.py (models).
"""
import os
from dataclasses import dataclass
from pathlib import Path

from ..backend import DEVICES, DTYPES, KERNEL_SETS
from ..feedback import MODES, SIGN_SCALES
from ..presets import PRESETS
from ..rules import ALGORITHMS
from .checks import Check, Choice, ConfigError, Flag, Int, Labels, Num, Text, bad


def _datasets():
    from ..data.registry import NAMES      # read when first needed: `import brainprop_np` stays light
    return NAMES


def _label_modes():
    from ..data.registry import LABEL_MODES
    return LABEL_MODES


class RunName(Check):
    """The run's name: it names the run folder."""
    kind, allowed = "string", "a non-empty string without '/' (it names the run folder)"

    def __call__(self, key, v):
        if v is None:
            return None
        if not isinstance(v, (str, int)) or isinstance(v, bool) or not str(v).strip() \
                or any(c in str(v) for c in "/\\") or str(v) in (".", ".."):
            raise bad(key, v, "use " + self.allowed)
        return str(v)

    def json(self):
        text = {"type": "string", "pattern": r"^[^/\\]*[^/\\\s][^/\\]*$", "not": {"enum": [".", ".."]}}
        return {"anyOf": [text, {"type": "integer"}, {"type": "null"}]}


class MLflow(Check):
    """null (off), true ($MLFLOW_TRACKING_URI, else the folder ./mlruns) or a tracking URI or
    folder. A folder is made absolute here, so that the run's config.yaml names the store it
    used and a resume (or a sweep's worker) from another directory finds it."""
    kind = "null, true or text"
    allowed = ("null (off), true ($MLFLOW_TRACKING_URI, else the folder ./mlruns) or a tracking URI or folder, "
               "e.g. ./mlruns or http://localhost:5000")

    def __call__(self, key, v):
        if v is None or v is False:
            return None
        if v is True:
            v = os.environ.get("MLFLOW_TRACKING_URI") or "mlruns"
        if isinstance(v, str) and v.strip():
            folder = "://" not in v and not v.startswith("file:")
            return str(Path(v).expanduser().resolve()) if folder else v
        raise bad(key, v, "use " + self.allowed)

    def json(self):
        return {"anyOf": [{"type": "null"}, {"type": "boolean"}, {"type": "string", "pattern": r"\S"}]}


class Model(Check):
    """A preset's name or a non-empty list of layer specs (specs.py checks each)."""
    kind, allowed = "preset or list", "a preset or a list of layer specs"

    def __call__(self, key, v):
        presets = ", ".join(PRESETS)
        if isinstance(v, str):
            if v not in PRESETS:
                raise bad(key, v, f"use a preset ({presets}) or a list of layer specs")
            return v
        if not (isinstance(v, list) and v):
            raise bad(key, v, f"use a preset ({presets}) or a non-empty list of layer specs")
        from ..specs import check_spec
        for i, spec in enumerate(v):
            try:
                check_spec(spec, i)
            except (ValueError, TypeError) as e:   # the text starts "model layer i"
                msg = str(e)
                raise ConfigError(msg if msg.startswith(key) else f"{key}: {msg}") from None
        return [dict(spec) for spec in v]

    def json(self):
        from ..specs import spec_json_schema
        return {"anyOf": [{"enum": list(PRESETS)},
                          {"type": "array", "minItems": 1, "items": spec_json_schema()}]}


@dataclass(frozen=True)
class Key:
    """One config key: dotted name, check, default, one-line description.

    required: the key must be given (its default None means "missing");
    resumable: a resume may change it (anything else would change the experiment).
    """
    name: str
    check: Check
    default: object
    help: str
    required: bool = False
    resumable: bool = False


_FEEDBACK = "feedback weights: symmetric (the paper; B = W) or untied (docs/untied_feedback.md)"

KEYS = (
    Key("name", RunName(), None, "run name; default: the file's stem. Run folder runs/<name>-<algorithm>/<time>",
        resumable=True),
    Key("algorithm", Choice(ALGORITHMS), "brainprop", "the learning rule: brainprop, or ebp (the "
        "error-backpropagation baseline)"),
    Key("device", Choice(DEVICES), "auto", "auto: the GPU when CuPy sees one, else the CPU (a resume: the "
        "device the run used)", resumable=True),
    Key("kernels", Choice(KERNEL_SETS), "auto", "CPU kernel set: auto (fast when numba imports), fast, or "
        "numpy (the reference); auto: $BRAINPROP_KERNELS when set, else (a resume) the set the run used",
        resumable=True),
    Key("dtype", Choice(DTYPES), "float32", "floating-point type of weights and activity"),
    Key("seed", Int(0, 2 ** 32 - 1, what="an integer from 0 to 4294967295"), 1,
        "seeds the weights, shuffling, exploration and dropout"),
    Key("model", Model(), None, "a preset (the paper's architectures) or a list of layer specs (below)",
        required=True),
    Key("init_from", Text(nullable=True, path=True), None, "weights to start from: an .npz of this project "
        "or a Keras .h5", resumable=True),
    Key("feedback", Choice(MODES), "symmetric", _FEEDBACK + "; a layer spec's `feedback` key overrides it"),
    Key("feedback_decay", Num(0.0), 0.001, "kolen_pollack: weight decay λ on both W and B "
        "(W ← W(1 − lr·λ) − lr·tag)"),
    Key("feedback_sign", Choice(SIGN_SCALES), "rms", "sign: |B| = RMS of the layer's W (uSF), or random: a "
        "fixed |R| (frSF)"),
    Key("alignment", Flag(), True, "untied feedback: angles W–B and update–gradient per layer and epoch, "
        "in alignment.csv", resumable=True),
    Key("data.name", Choice(_datasets), None, "the dataset", required=True),
    Key("data.root", Text(nullable=True, path=True), None, "folder holding the data; null: "
        "$BRAINPROP_DATA, else ~/.cache/brainprop_np", resumable=True),
    Key("data.download", Flag(), True, "download missing files from the official sources", resumable=True),
    Key("data.fallback", Choice(("mnist_sample", "none"), nullable=True, null_as="none"), "none",
        "what to train on when MNIST cannot be had: the bundled mnist_sample, or none (an error)"),
    Key("data.classes", Labels(), None, "train and validate on these classes only, relabelled 0..k−1 in "
        "the order given (n_classes = k); chosen before the holdout and the limits (null: all)"),
    Key("data.limit_train", Int(1, nullable=True), None, "use only the first N training images (null: all)"),
    Key("data.limit_test", Int(1, nullable=True), None, "use only the first N test images (null: all)"),
    Key("data.holdout", Int(0, what="an integer >= 0 (training images held out for validation; 0: none)"), 0,
        "N training images held out for validation (0: the test set validates)"),
    Key("data.label_mode", Choice(_label_modes, nullable=True), None, "CIFAR-100 only: fine (100 classes, "
        "the default) or coarse (20)"),
    Key("brainprop.epsilon", Num(0.0, 1.0), 0.02, "exploration probability ε: the chance of a random action"),
    Key("train.epochs", Int(1), 500, "most epochs", resumable=True),
    Key("train.batch_size", Int(1, nullable=True), None, "images per batch; null: the preset's (128; "
        "loccon 32)"),
    Key("train.lr", Num(0.0, strict_lo=True), 0.1, "initial learning rate of plain SGD"),
    Key("train.lr_halve_every", Int(0, what="an integer >= 0 (0: never halve)"), 100,
        "epochs between halvings of the learning rate (0: never)"),
    Key("train.l2", Num(0.0, nullable=True), None, "Keras l2(λ) on every kernel; null: the preset's "
        "(deep 5e-4, else 0)"),
    Key("train.init_std", Num(0.0, strict_lo=True, nullable=True), None, "weights ~ N(0, init_std²); null: "
        "the preset's (dense 0.01, else 0.005)"),
    Key("train.patience", Int(0, nullable=True, what="an integer >= 0, or null for no early stopping"), 45,
        "early stopping: epochs without improvement (null: never stop early)", resumable=True),
    Key("train.min_delta", Num(0.0), 0.001, "improvement means val_acc > best + min_delta (Keras "
        "EarlyStopping)", resumable=True),
    Key("train.eval_batch_size", Int(1), 256, "images per batch when evaluating", resumable=True),
    Key("log.tensorboard", Flag(), False, "TensorBoard event files in the run folder (pip install -e "
        "\".[tensorboard]\")", resumable=True),
    Key("log.mlflow", MLflow(), None, "one MLflow run per training run: null (off), true or a tracking URI",
        resumable=True),
)

SECTIONS = {
    "data": "the dataset and how much of it is used",
    "brainprop": "the BrainProp rule's settings",
    "train": "the training protocol (SGD, learning-rate schedule, early stopping)",
    "log": "optional loggers",
}


def _tree(value):
    """{key: value(Key)} with each section a nested dict, in KEYS order."""
    out = {}
    for k in KEYS:
        section, _, leaf = k.name.rpartition(".")
        (out.setdefault(section, {}) if section else out)[leaf] = value(k)
    return out


SCHEMA = _tree(lambda k: k.check)          # the validator's tree of checks
DEFAULTS = _tree(lambda k: k.default)      # None for the three per-preset settings: the preset's
BY_NAME = {k.name: k for k in KEYS}
REQUIRED = tuple(k.name for k in KEYS if k.required)
RESUMABLE_KEYS = tuple(k.name for k in KEYS if k.resumable)
