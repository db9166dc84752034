#!/usr/bin/env bash
# The one command to run on a GPU machine: at most 8 minutes, installs nothing, no network,
# one table at the end.
#
#     bash scripts/gpu_check.sh [MNIST_FOLDER]    # on the GPU machine, from the checkout
#     bash scripts/gpu_check.sh --dry-run         # anywhere: the plan and each stage's budget
#     bash scripts/gpu_check.sh --cpu             # anywhere: every stage on the CPU, in miniature
#
# Uses what the GPU machine has (CuPy, PyTorch, pytest, NumPy, nvcc, compute-sanitizer) and
# BRAINPROP_KERNELS=numpy: comparisons against the NumPy reference, no numba compile. Stages:
#  1. device:     nvidia-smi, CuPy, PyTorch, the backend's own NVRTC/cuBLAS/cuRAND checks;
#  2. compile:    the CUDA kernels through NVRTC (cupy.RawModule), timed; nvcc/PTX compile tests;
#  3. gpu tests:  pytest -m gpu (every kernel, the batched GEMM, a training step per preset,
#                 against NumPy; fails if the cuBLAS GEMM fell back to cupy.matmul);
#  4. benchmark:  bench/gpu_epoch.py, BENCH_FRAC of an epoch of dense, conv, loccon (MNIST
#                 shapes; MNIST_FOLDER or random images) and deep (CIFAR-10 shapes), beside
#                 the same networks in PyTorch on the same card (--torch);
#  5. resume:     scripts/resume_check.py: a run killed with SIGINT inside epoch 2, resumed,
#                 compared with an uninterrupted run: bit-exact or not;
#  6. memcheck,
#  7. racecheck:  compute-sanitizer on the kernel tests of the reductions (BatchNorm statistics
#                 and feedback sums, the output step, the SGD update's ΣW²);
#  8. summary:    one table: each stage, its budget, its seconds, its status; the benchmark.
# Every stage runs under `timeout` with its budget (seconds; B_<STAGE> in the environment
# overrides, e.g. B_GPU_TESTS=200), killed GRACE s later if it ignores TERM, so that one hang
# cannot eat the rest; --dry-run prints the budgets and their worst-case sum (<= 480 s).
# BENCH_FRAC (default 0.1 of an epoch), BENCH_NETS, LOG_DIR (default $OUT when set, else a
# temporary folder), PYTHON. Exit status 0 when every stage passed (or was skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export BRAINPROP_KERNELS=numpy
MODE=gpu
case "${1:-}" in --dry-run) MODE=plan; shift ;; --cpu) MODE=cpu; shift ;; esac
PY="${PYTHON:-python}"
DATA="${1:-}"
STAGES=(device compile gpu_tests benchmark resume memcheck racecheck summary)
declare -A BUDGET=([device]=${B_DEVICE:-20} [compile]=${B_COMPILE:-70} [gpu_tests]=${B_GPU_TESTS:-105}
                   [benchmark]=${B_BENCHMARK:-85} [resume]=${B_RESUME:-65} [memcheck]=${B_MEMCHECK:-40}
                   [racecheck]=${B_RACECHECK:-40} [summary]=${B_SUMMARY:-10})
GRACE=5            # seconds between timeout's TERM and KILL, for a stage that ignores TERM
declare -A WHAT=([device]="nvidia-smi, CuPy, PyTorch, the backend's NVRTC/cuBLAS/cuRAND checks"
                 [compile]="NVRTC compile of kernels/*.cu (timed); nvcc/PTX tests (tests/test_cuda_compile.py)"
                 [gpu_tests]="pytest -m gpu: kernels, batched GEMM (no cuBLAS fallback), a step per preset"
                 [benchmark]="bench/gpu_epoch.py --torch: s/epoch of dense, conv, loccon, deep and PyTorch's"
                 [resume]="scripts/resume_check.py: killed with SIGINT in epoch 2, resumed: bit-exact?"
                 [memcheck]="compute-sanitizer memcheck on the reductions' kernel tests"
                 [racecheck]="compute-sanitizer racecheck on the reductions' kernel tests"
                 [summary]="this table")
SANITIZED="(batchnorm_stats or batchnorm_train_forward or batchnorm_forward_and_feedback or brainprop_step or sumsq) and not float64"
TOTAL=0
for s in "${STAGES[@]}"; do TOTAL=$((TOTAL + BUDGET[$s])); done
WORST=$((TOTAL + GRACE * ${#STAGES[@]}))

if [ "$MODE" = plan ]; then
  echo "gpu_check.sh plan (BRAINPROP_KERNELS=numpy, nothing installed); budget per stage:"
  i=0
  for s in "${STAGES[@]}"; do i=$((i + 1)); printf "%2d. %-10s %4d s  %s\n" "$i" "$s" "${BUDGET[$s]}" "${WHAT[$s]}"; done
  echo "total ${TOTAL} s; at most ${WORST} s with ${GRACE} s to kill each stage that hangs (one device command, <= 480 s)"
  exit 0
fi

if [ "$MODE" = cpu ]; then DEVICE=cpu; FRAC="${BENCH_FRAC:-0.002}"; WARMUP=1; NETS="${BENCH_NETS:-dense,conv}"
else DEVICE=gpu; FRAC="${BENCH_FRAC:-0.1}"; WARMUP=5; NETS="${BENCH_NETS:-dense,conv,loccon,deep}"; fi
LOG_DIR="${LOG_DIR:-${OUT:-$(mktemp -d)}}"
mkdir -p "$LOG_DIR"
DATA_ARGS=()
if [ -n "$DATA" ]; then
  if [ -d "$DATA" ]; then DATA_ARGS=(--data "$DATA"); else echo "no folder $DATA: using random data"; fi
fi
declare -A RC SECS NOTE
T0=$SECONDS

# run_stage NAME COMMAND...: the command under `timeout` with the stage's budget, output in its log
run_stage() {
  local name=$1; shift
  local t=$SECONDS
  echo; echo "== ${name} (budget ${BUDGET[$name]} s)   [$((SECONDS - T0)) s]"
  timeout -k "$GRACE" "${BUDGET[$name]}" "$@" > "$LOG_DIR/$name.log" 2>&1
  RC[$name]=$?
  SECS[$name]=$((SECONDS - t))
  tail -n "${TAIL:-12}" "$LOG_DIR/$name.log"
}
skip() { RC[$1]=skipped; SECS[$1]=0; NOTE[$1]="$2"; echo; echo "== $1: skipped ($2)"; }
counts() { grep -Eo '[0-9]+ (passed|failed|skipped|errors?|deselected)' "$1" 2>/dev/null | tr '\n' ' '; }

run_stage device "$PY" scripts/gpu_check_device.py "$DEVICE"

if [ "$MODE" = cpu ]; then skip compile "no GPU"; else
  run_stage compile bash -c "'$PY' scripts/gpu_check_device.py --compile && '$PY' -m pytest -q -p no:cacheprovider tests/test_cuda_compile.py"
  NOTE[compile]="$(grep -m1 -Eo '[0-9]+ kernels .* s' "$LOG_DIR/compile.log") $(counts "$LOG_DIR/compile.log")"
fi

GPU_TESTS=$(grep -l "mark.gpu" tests/test_*.py | tr '\n' ' ')
run_stage gpu_tests "$PY" -m pytest -q -m gpu -rs -p no:cacheprovider $GPU_TESTS
NOTE[gpu_tests]="$(counts "$LOG_DIR/gpu_tests.log")"
if [ "$MODE" = cpu ] && [ "${RC[gpu_tests]}" = 5 ]; then RC[gpu_tests]=0; fi     # no GPU: all deselected

rm -f "$LOG_DIR/bench.csv"
run_stage benchmark "$PY" bench/gpu_epoch.py --device "$DEVICE" --nets "$NETS" --epochs-frac "$FRAC" \
    --warmup "$WARMUP" --torch "${DATA_ARGS[@]}" --csv "$LOG_DIR/bench.csv"

rm -rf "$LOG_DIR/resume"
run_stage resume "$PY" scripts/resume_check.py --device "$DEVICE" --out "$LOG_DIR/resume"
NOTE[resume]="$(grep -m1 -Eo 'resume: .{0,60}' "$LOG_DIR/resume.log")"

for tool in memcheck racecheck; do
  if [ "$MODE" = cpu ]; then skip $tool "no GPU"
  elif ! command -v compute-sanitizer > /dev/null 2>&1; then skip $tool "no compute-sanitizer"
  else
    run_stage $tool env BRAINPROP_NO_POOL=1 compute-sanitizer --tool $tool --error-exitcode 97 --print-limit 20 \
        "$PY" -m pytest -v -x -m gpu -p no:cacheprovider tests/test_gpu_kernels.py -k "$SANITIZED"
    NOTE[$tool]="$(grep -c ' PASSED' "$LOG_DIR/$tool.log") passed; $(grep -m1 -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$LOG_DIR/$tool.log")"
  fi
done

echo; echo "== summary   [$((SECONDS - T0)) s]"
TABLE="$LOG_DIR/stages.tsv"
: > "$TABLE"
for s in "${STAGES[@]}"; do
  [ "$s" = summary ] && continue
  printf "%s\t%s\t%s\t%s\t%s\n" "$s" "${BUDGET[$s]}" "${SECS[$s]}" "${RC[$s]}" "${NOTE[$s]:-}" >> "$TABLE"
done
timeout -k "$GRACE" "${BUDGET[summary]}" "$PY" scripts/gpu_check_summary.py "$TABLE" "$LOG_DIR/bench.csv"
echo "total $((SECONDS - T0)) s of a ${TOTAL} s budget; logs in $LOG_DIR"
[ "${RC[resume]}" = 3 ] && echo "resume: the runs finished but the resumed one is NOT bit-exact (see $LOG_DIR/resume.log)"
for s in "${STAGES[@]}"; do
  case "${RC[$s]:-0}" in 0|skipped) ;; *) exit 1 ;; esac
done
