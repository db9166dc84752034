"""The eval command: the accuracy of saved weights on the config's test set, through the
same set-up as training (setup.py) and the same evaluation (loop.py: argmax q in inference mode)."""
from .failures import guarded
from .loop import evaluate
from .setup import as_config, build, check_device, check_weights_file, load_weights, prepare_data


def evaluate_weights(config, weights, overrides=(), verbose=True, progress=None):
    """Accuracy of saved weights (.npz or Keras .h5) on the config's test set.

    progress: draw a bar (default: when verbose and stderr is a terminal).
    Returns (accuracy, n_images, dataset_name).
    """
    from ..data import BatchIterator
    cfg = as_config(config, overrides)
    check_device(cfg)
    check_weights_file(weights)
    split, info = prepare_data(cfg, "evaluating")
    net = build(cfg, split.input_shape, split.n_classes)
    load_weights(net, weights, "--load")
    with guarded(f"evaluating {weights}", "evaluation", cfg):
        it = BatchIterator(split.x_test, split.y_test, net.backend, cfg["dtype"])
        acc = evaluate(net, it, cfg["train"]["eval_batch_size"], progress=progress if verbose else False,
                       label="evaluating")
    return acc, len(split.x_test), info["used"]
