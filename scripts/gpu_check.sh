#!/usr/bin/env bash
# The one script to run on a GPU machine (no network needed; run from the checkout):
#
#     bash scripts/gpu_check.sh [MNIST_FOLDER]
#
# 1. the device, as nvidia-smi and as CuPy see it;
# 2. the CUDA kernels compiled with NVRTC (cupy.RawModule), timed;
# 3. the GPU tests: every kernel and a whole training step per preset against NumPy
#    (python -m pytest -q -m gpu tests/test_gpu_*.py), and the nvcc compile test;
# 4. the epoch benchmark (bench/gpu_epoch.py): eager and with TF32 (CUDA-graph capture is
#    not tried here: CuPy refuses cuBLAS calls during stream capture, cupy/cupy#6290;
#    `python bench/gpu_epoch.py --graph` checks that first and says so);
# 4b. a training smoke run through run.py on the GPU: 1 epoch, then --resume to 2;
# 5. compute-sanitizer memcheck / racecheck on a subset of the kernel tests (time-limited);
# 6. a short table last.
# MNIST_FOLDER holds MNIST's IDX files (train-images-idx3-ubyte[.gz], ...); without it
# the benchmark uses random images of the right shape. Environment: BENCH_FRAC (fraction
# of an epoch timed, default 0.5), BENCH_NETS (default dense,conv,loccon,deep),
# LOG_DIR (where logs and CSVs go; default $OUT when set, else a temporary folder),
# BENCH_DEVICE (default gpu; `cpu` dry-runs this script on a machine without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
DATA="${1:-}"
FRAC="${BENCH_FRAC:-0.5}"
NETS="${BENCH_NETS:-dense,conv,loccon,deep}"
DEVICE="${BENCH_DEVICE:-gpu}"
LOG_DIR="${LOG_DIR:-${OUT:-$(mktemp -d)}}"
mkdir -p "$LOG_DIR"
DATA_ARGS=()
if [ -n "$DATA" ]; then
  if [ -d "$DATA" ]; then DATA_ARGS=(--data "$DATA"); else echo "no folder $DATA: using random data"; fi
fi
status() { if [ "$1" -eq 0 ]; then echo ok; else echo "FAILED (exit $1)"; fi; }

echo "== 1. device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1 || echo "nvidia-smi failed"
"$PY" - <<'EOF'
import sys
try:
    import cupy
except Exception as e:
    print(f"CuPy not importable: {e}"); sys.exit(0)
rt = cupy.cuda.runtime
dev = cupy.cuda.Device()
props = rt.getDeviceProperties(dev.id)
name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
print(f"python {sys.version.split()[0]}, CuPy {cupy.__version__}, CUDA runtime {rt.runtimeGetVersion()}, "
      f"driver {rt.driverGetVersion()}")
print(f"device {dev.id}: {name}, compute capability {dev.compute_capability}, "
      f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.1f} GiB")
EOF

echo
echo "== 2. compile the CUDA kernels (NVRTC via cupy.RawModule)"
"$PY" - <<'EOF'
import time
from brainprop_np.kernels import cuda_module
t = time.perf_counter()
names = cuda_module.compile_all()
print(f"{len(names)} kernels from {len(cuda_module.SOURCES)} sources in {time.perf_counter() - t:.1f} s")
EOF
rc_compile=$?

echo
echo "== 3. GPU tests"
"$PY" -m pytest -q -m gpu -rs tests/test_gpu_kernels.py tests/test_gpu_training_step.py 2>&1 | tee "$LOG_DIR/gpu_tests.log" | tail -40
rc_tests=${PIPESTATUS[0]}
"$PY" -m pytest -q tests/test_cuda_compile.py 2>&1 | tail -3
rc_nvcc=${PIPESTATUS[0]}

echo
echo "== 4. benchmark (${FRAC} of an epoch per network, extrapolated)"
rc_bench=0
for mode in eager tf32; do
  case $mode in
    eager) extra=() ;;
    tf32) extra=(--tf32) ;;
  esac
  echo "-- $mode"
  "$PY" bench/gpu_epoch.py --device "$DEVICE" --nets "$NETS" --epochs-frac "$FRAC" "${extra[@]}" \
      "${DATA_ARGS[@]}" --csv "$LOG_DIR/bench_$mode.csv" 2>&1 | tee "$LOG_DIR/bench_$mode.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && rc_bench=$rc
done

echo
echo "== 4b. training smoke run (run.py on the GPU: 1 epoch, then resumed to 2)"
rc_smoke=0
"$PY" run.py configs/quickstart.yaml device="$DEVICE" train.epochs=1 data.limit_train=2000 --no-progress \
    --out "$LOG_DIR/smoke" 2>&1 | tail -2 || rc_smoke=1
"$PY" run.py --resume "$LOG_DIR/smoke" train.epochs=2 --no-progress 2>&1 | tail -2 || rc_smoke=1
echo "smoke run: $(status $rc_smoke)"

echo
echo "== 5. compute-sanitizer (memcheck, racecheck) on some kernel tests; SANITIZE=0 skips, SANITIZE_S limits"
rc_san="skipped"
if [ "${SANITIZE:-1}" != "0" ] && command -v compute-sanitizer >/dev/null 2>&1; then
  rc_san=0
  for tool in memcheck racecheck; do
    case $tool in
      memcheck) sel="im2col_col2im and (k3s2 or k5s2) or maxpool or relu or dropout or brainprop or ebp" ;;
      racecheck) sel="batchnorm or brainprop_step" ;;
    esac
    BRAINPROP_NO_POOL=1 timeout "${SANITIZE_S:-90}" compute-sanitizer --tool "$tool" --error-exitcode 97 --print-limit 20 \
        "$PY" -m pytest -q -x -m gpu -p no:cacheprovider tests/test_gpu_kernels.py -k "$sel" \
        > "$LOG_DIR/sanitize_$tool.log" 2>&1
    rc=$?
    echo "$tool: $(status $rc) ($(grep -Eo '[0-9]+ (passed|failed|skipped)' "$LOG_DIR/sanitize_$tool.log" | tr '\n' ' ')$(grep -m1 -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$LOG_DIR/sanitize_$tool.log"))"
    [ "$rc" -eq 124 ] && echo "  (timed out after ${SANITIZE_S:-90} s: partial; see $LOG_DIR/sanitize_$tool.log)"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && rc_san=$rc && grep -m5 -E "Invalid|Race|Hazard|ERROR" "$LOG_DIR/sanitize_$tool.log"
  done
fi

echo
echo "== 6. summary"
echo "kernels compiled: $(status $rc_compile); GPU tests: $(status $rc_tests) ($(grep -Eo '[0-9]+ (passed|failed|skipped|error)[a-z]*' "$LOG_DIR/gpu_tests.log" | tr '\n' ' '))"
echo "nvcc compile test: $(status $rc_nvcc); benchmark: $(status $rc_bench); smoke run: $(status $rc_smoke); compute-sanitizer: $rc_san; logs in $LOG_DIR"
"$PY" - "$LOG_DIR" <<'EOF'
import csv, os, sys
d = sys.argv[1]
rows = {}
MODES = ("eager", "tf32")
for mode in MODES:
    p = os.path.join(d, f"bench_{mode}.csv")
    if os.path.exists(p):
        for r in csv.DictReader(open(p)):
            rows.setdefault(r["network"], {"batch": r["batch"], "target": float(r["target"])})[mode] = r
def cell(r, mode):
    v = r.get(mode)
    if v is None:
        return "-"
    s = f"{float(v['s_per_epoch']):.3f}"
    return s
print(f"{'network':<8}{'batch':>6}" + "".join(f"{m + ' s':>9}" for m in MODES) + f"{'target':>8}{'submit':>8}  met")
for net, r in rows.items():
    best = min(float(r[m]["s_per_epoch"]) for m in MODES if m in r)
    sub = f"{float(r['eager']['submit_share']):.0%}" if "eager" in r else "-"
    print(f"{net:<8}{r['batch']:>6}" + "".join(f"{cell(r, m):>9}" for m in MODES)
          + f"{r['target']:>8.2f}{sub:>8}  {'yes' if best <= r['target'] else 'no'}")
print("submit = share of the eager time the host spent enqueueing (~100%: launch-bound)")
EOF
[ "$rc_tests" -eq 0 ] && [ "$rc_compile" -eq 0 ] && [ "$rc_bench" -eq 0 ]
