#!/usr/bin/env bash
# The kit's GPU run (issue #22), in one call of at most BUDGET_S seconds (default 540),
# on the JAX backend (no TensorFlow needed). Each stage runs under `timeout` with its cap or
# what the budget has left, in this order:
#   1. equivalence: in-step accumulation vs the full-batch gradient on the device;
#   2. the targets' rows of the throughput table, at the fit level (train() with validation,
#      records and checkpoints; device pipeline): plain and in-step N = 4, one seed and 10
#      side by side;
#   3. the paper's regime: paper-size model, 40 epochs, 10 seeds x {baseline, GAO N=4 sum}
#      on the bundled real CIFAR-10 and MNIST samples (benchmarks/gpu/params), each
#      configuration's seeds side by side (run-all --executor side-by-side), records and report;
#   4. as time allows: seeds side by side vs alone on the device (seeds_check.py), then
#      the rest of the table: plain at the micro-batch and optimizer mode, bfloat16, N = 2
#      and 8, the host pipeline.
# Raw outputs go to WORK (default /tmp/swin-gao-gpu-run); OUT receives only what the device
# machine can send back (at most 8 files): gpu-run.tar.gz (all of WORK but checkpoints,
# repacked after every stage, so a timeout still leaves the stages done), SUMMARY.md
# (benchmarks/gpu/summarize.py), progress.txt and environment.txt.
#
# Usage: GIT_COMMIT=$(git rev-parse HEAD) benchmarks/gpu/run.sh OUT [--smoke]
#   --smoke     tiny sizes for a CPU check of the script itself (JAX CPU, TensorFlow blocked)
# Environment:
#   GIT_COMMIT    the commit the tree was sent from (the device's .git may be stale)
#   BUDGET_S      seconds for the whole call (default 540; --smoke: 7200)
#   CAP_SCALE     multiplies every stage's time cap (default 1; --smoke: 12)
#   EPOCHS        epochs of the paper's regime (default: the params files' 40)
#   WHEELS        where Keras's wheels are when Keras is missing (default .whl, made by
#                 benchmarks/gpu/fetch_wheels.sh)
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu/run.sh OUT [--smoke]}
SMOKE=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
if [[ "$SMOKE" == "--smoke" ]]; then BUDGET_S=${BUDGET_S:-7200}; else BUDGET_S=${BUDGET_S:-540}; fi
# Each stage's cap is sized for the GPU; a CPU smoke run needs them CAP_SCALE times longer.
if [[ "$SMOKE" == "--smoke" ]]; then CAP_SCALE=${CAP_SCALE:-12}; else CAP_SCALE=${CAP_SCALE:-1}; fi
RESERVE_S=25  # the summary and the last pack
WORK=${WORK:-/tmp/swin-gao-gpu-run}
PY=${PYTHON:-python3}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
cd "$REPO" || exit 2
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=jax

log() {
  local line; line="[$(printf '%4d' "$SECONDS") s] $*"
  echo "$line"; echo "$line" >> "$WORK/stages.txt"; cp "$WORK/stages.txt" "$OUT/progress.txt"
}
pack() {  # everything but checkpoints (a killed run's weights), into one file
  tar -czf "$OUT/.gpu-run.tar.gz" --exclude=checkpoint -C "$WORK" . \
    && mv "$OUT/.gpu-run.tar.gz" "$OUT/gpu-run.tar.gz"
}
left() { echo $(( BUDGET_S - RESERVE_S - SECONDS )); }
stage() {  # NAME MAX_S MIN_S COMMAND...: run COMMAND for at most MAX_S (or what is left)
  local name=$1 max=$(($2 * CAP_SCALE)) min=$(($3 * CAP_SCALE)) t t0 rc; shift 3
  t=$(left); (( t > max )) && t=$max
  if (( t < min )); then log "SKIPPED $name: needs ~${min} s, ${t} s left"; return; fi
  log "start $name (up to ${t} s)"
  t0=$SECONDS
  timeout --kill-after=10 "$t" "$@" > "$WORK/$name.log" 2>&1; rc=$?
  local note=""; [[ $rc == 124 || $rc == 137 ]] && note=" (stopped: time limit)"
  log "end $name: exit $rc after $((SECONDS - t0)) s$note"
  tail -n 3 "$WORK/$name.log" | sed 's/^/    /'
  pack
}

# --- 0. dependencies and environment
if ! "$PY" -c "import keras, yaml, h5py" 2>/dev/null; then
  WHEELS=${WHEELS:-.whl}
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "no keras here and no $WHEELS/ (run benchmarks/gpu/fetch_wheels.sh)"; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [[ "$SMOKE" == "--smoke" ]]; then  # as on the GPU machine: no TensorFlow anywhere
  mkdir -p "$WORK/.blocked/tensorflow"
  echo "raise ImportError('tensorflow is blocked by the smoke run')" > "$WORK/.blocked/tensorflow/__init__.py"
  export PYTHONPATH="$WORK/.blocked${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[[ -n "${GIT_COMMIT:-}" ]] && export SWIN_GAO_COMMIT=$GIT_COMMIT  # into every record
# Compiled programs shared between the stages' processes (the benchmark's repeats, the
# seeds check's second run); the regime runs first, so its compile times are real.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/swin-gao-jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
{
  "$PY" -c "import sys, jax, keras, numpy; print('python', sys.version.split()[0]); print('jax', jax.__version__); print('keras', keras.__version__); print('numpy', numpy.__version__); print('devices', jax.devices())"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "nvidia-smi: none"
  if [[ -n "${GIT_COMMIT:-}" ]]; then echo "commit $GIT_COMMIT (GIT_COMMIT)"
  else echo "commit $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown) (from the tree's .git, which may be stale: pass GIT_COMMIT)"; fi
  echo "budget ${BUDGET_S} s${SMOKE:+ ($SMOKE)}; JAX compilation cache $JAX_COMPILATION_CACHE_DIR"
} > "$WORK/environment.txt" 2>&1
cp "$WORK/environment.txt" "$OUT/environment.txt"
cat "$WORK/environment.txt"
: > "$WORK/stages.txt"

# The regime's params: benchmarks/gpu/params as they are, or shrunk for the smoke run.
"$PY" - "$WORK/params" "$SMOKE" "${EPOCHS:-}" <<'PYEOF' || exit 2
import sys, yaml
from pathlib import Path
out, smoke, epochs = Path(sys.argv[1]), sys.argv[2] == "--smoke", sys.argv[3]
out.mkdir(parents=True)
for f in sorted(Path("benchmarks/gpu/params").glob("*.yaml")):
    values = yaml.safe_load(f.read_text())
    if smoke:
        values.update(embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8, epochs=2,
                      max_train_samples=128, max_test_samples=64, seeds=[0, 1])
    if epochs:
        values["epochs"] = int(epochs)
    (out / f.name).write_text(f"# from {f} (smoke: {smoke})\n" + yaml.safe_dump(values))
PYEOF

if [[ "$SMOKE" == "--smoke" ]]; then
  SIZE=(--models tiny --batch 16 --train-samples 64 --epochs 2 --dataset cifar10)
  EQ=(--smoke); SEEDS=(--smoke)
else
  SIZE=(--models paper --batch 128 --epochs 4 --dataset cifar10)
  EQ=(); SEEDS=()
fi
bench() {  # STAGE MAX_S MIN_S BENCH-OPTIONS...
  local name=$1 max=$2 min=$3; shift 3
  stage "bench-$name" "$max" "$min" "$PY" -m swin_gao_lib.cli bench --backend jax --level fit \
    --repeats 1 "${SIZE[@]}" "$@" --out "$WORK/bench-$name"
}

stage equivalence 60 20 "$PY" benchmarks/gpu/equivalence.py "$WORK/equivalence.json" \
  --budget $((45 * CAP_SCALE)) "${EQ[@]}"
cp "$WORK/equivalence.log" "$WORK/equivalence.txt" 2>/dev/null
# the three rows the targets read: plain and in-step N=4, one seed and 10 side by side
bench targets 120 40 --pipeline device --seeds 1 10 --n 1 4 --variants plain_full in_step \
  --precision float32
stage paper-regime 330 60 "$PY" -m swin_gao_lib.cli run-all "$WORK/params" \
  --executor side-by-side --output "$WORK/paper-regime"
stage seeds 70 40 "$PY" benchmarks/gpu/seeds_check.py "$WORK/seeds.json" "$WORK/seeds-runs" \
  "${SEEDS[@]}"
cp "$WORK/seeds.log" "$WORK/seeds.txt" 2>/dev/null
bench modes 90 30 --pipeline device --seeds 1 --n 4 --variants plain_micro optimizer \
  --precision float32
bench bfloat16 70 30 --pipeline device --seeds 1 10 --n 1 4 --variants plain_full in_step \
  --precision mixed_bfloat16
bench n2-n8 90 30 --pipeline device --seeds 1 --n 2 8 --precision float32 \
  --variants plain_micro in_step optimizer
bench host 60 30 --pipeline host --seeds 1 --n 1 4 --variants plain_full in_step \
  --precision float32

log "summary"
"$PY" benchmarks/gpu/summarize.py "$WORK" > "$WORK/summary.log" 2>&1 || log "summary: failed (see summary.log)"
cp "$WORK/SUMMARY.md" "$OUT/SUMMARY.md" 2>/dev/null
log "done"
pack
ls -la "$OUT"
