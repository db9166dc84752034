"""The CPU speed tables of docs/gpu_and_speed.md, from the JSON files of bench/vs_pytorch.py.

    BRAINPROP_THREADS=2 python bench/vs_pytorch.py --kernels fast --json vs.json
    BRAINPROP_THREADS=2 python bench/vs_pytorch.py --per-core --compile none \\
        --variant dense=nchw,conv=cl,loccon=cl-strided --json per_core.json
    python scripts/speed_page.py vs.json [per_core.json] [--write docs/gpu_and_speed.md]
    BRAINPROP_THREADS=2 python bench/step_profile.py --json profile.json
    python scripts/speed_page.py --profile profile.json [--write docs/gpu_and_speed.md]

The first table gives, per network, the medians over rounds of ms per step of PyTorch
eager (the variant the pick chose), torch.compile and the fast set, ours ÷ eager, ours ÷
compiled, the share of the float32 GEMM rate measured in the same run, and peak RSS;
the rounds' own figures show the machine's noise; the second, images per second per core of one process on two threads against two
one-thread processes at once. With --write the tables replace the text between the
`cpu-speed` marker lines of the page; they are printed in any case. --profile writes the
`step-profile` section instead: per network the step's time, its GEMMs alone (the floor
they set) and the rest, the step's GEMM work and the time it would take at the GEMM rate,
and the time of every step of the plan, forward and feedback.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import print_and_write  # noqa: E402

MARKER = "cpu-speed"
PROFILE_MARKER = "step-profile"


def _f(v, fmt):
    return "–" if v is None else format(v, fmt)


def _step_table(data):
    rows = [f"Measured {data['started'][:10]} on {data['cpu']} ({data['cores']} cores), {data['threads']} "
            f"threads per process, torch {data['torch']}, NumPy {data['numpy']}, numba {data['numba']}; "
            f"{data['rounds']} rounds × {data['steps']} steps, medians; float32 GEMM rate "
            f"{data['gemm_gflops_median']:.0f} GFLOP/s (2048³, same run).", "",
            "| network | implementation | ms/step | rounds | s per 60k epoch | ours ÷ eager | ours ÷ compiled "
            "| share of GEMM rate | peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data["table"]:
        impl = r["impl"] + (f": {r['torch_variant']}" if r["torch_variant"] else "")
        per_round = " / ".join(_f(v, ".1f") for v in r["ms_rounds"])
        rows.append(f"| {r['net']} | {impl} | {_f(r['ms_step'], '.1f')} | {per_round} | {_f(r['s_epoch'], '.1f')} | "
                    f"{_f(r['ours_over_eager'], '.2f')} | {_f(r['ours_over_compile'], '.2f')} | "
                    f"{_f(r['of_gemm'], '.0%')} | {_f(r['rss_mib'], '.0f')} |")
    comp = [r for r in data["table"] if r["impl"] == "torch-compile"]
    if comp:
        rows += ["", "torch.compile's seconds per process with its cache warm, left out of ms/step: "
                 + ", ".join(f"{r['net']} {_f(r['compile_s'], '.1f')}" for r in comp) + "."]
    return rows


def _per_core_table(data):
    n = data["per_core_cores"]
    rows = ["", f"Images per second per core: one process on {n} threads against {n} one-thread "
            f"processes at once (what a sweep runs), {data['rounds']} rounds × {data['steps']} steps, medians.",
            "", f"| network | implementation | 1 × {n} threads | {n} × 1 thread | ratio |", "|---|---|---|---|---|"]
    for r in data["per_core"]:
        rows.append(f"| {r['net']} | {r['impl']} | {_f(r['img_s_core_one'], '.0f')} | "
                    f"{_f(r['img_s_core_many'], '.0f')} | {_f(r['many_over_one'], '.2f')} |")
    return rows


def _profile_tables(data):
    rows = [f"Measured {data['started'][:10]} by `bench/step_profile.py` with the fast kernel set on "
            f"{data['threads']} threads, NumPy {data['numpy']}; float32 GEMM rate {data['gemm_gflops']:.0f} "
            "GFLOP/s (2048³, same run); medians over the rounds.", "",
            "| network | batch | ms/step | its GEMMs alone, ms | share of the step | everything else, ms | "
            "GEMM work, GFLOP | that work at the GEMM rate, ms |", "|---|---|---|---|---|---|---|---|"]
    for p in data["profiles"]:
        rest = p["step_ms"] - p["gemm_floor_ms"]
        rows.append(f"| {p['net']} | {p['batch']} | {p['step_ms']:.1f} | {p['gemm_floor_ms']:.1f} | "
                    f"{p['gemm_floor_ms'] / p['step_ms']:.0%} | {rest:.1f} | {p['gflop']:.2f} | "
                    f"{1e3 * p['gflop'] / data['gemm_gflops']:.1f} |")
    for p in data["profiles"]:
        rows += ["", f"{p['net']}: ms per step of the plan (blocks.py).", "",
                 "| step of the plan | forward | feedback |", "|---|---|---|"]
        rows += [f"| {r['step']} | {r['forward_ms']:.2f} | {r['feedback_ms']:.2f} |" for r in p["steps"]]
        rows += [f"| output step (selection, reward, delta) | {p['output_ms']:.2f} | |",
                 f"| update (SGD) | {p['update_ms']:.2f} | |"]
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps_json", nargs="?")
    ap.add_argument("per_core_json", nargs="?")
    ap.add_argument("--profile", help="bench/step_profile.py's JSON: write the step-profile section")
    ap.add_argument("--write", help="the page whose section to replace")
    a = ap.parse_args(argv)
    if a.profile and a.steps_json:
        ap.error("give either vs_pytorch.py's JSON or --profile, not both")
    if a.profile:
        rows, marker = _profile_tables(json.loads(Path(a.profile).read_text())), PROFILE_MARKER
    elif a.steps_json:
        rows, marker = _step_table(json.loads(Path(a.steps_json).read_text())), MARKER
        if a.per_core_json:
            rows += _per_core_table(json.loads(Path(a.per_core_json).read_text()))
    else:
        ap.error("give vs_pytorch.py's JSON, or --profile with step_profile.py's")
    print_and_write("\n".join(rows) + "\n", a.write, marker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
