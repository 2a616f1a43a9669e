#!/usr/bin/env bash
# The kit's GPU run, in one go, on the JAX backend (no TensorFlow needed):
#   1. GPU equivalence: in-step accumulation vs the full-batch gradient on the device;
#   2. the paper pair (baseline, GAO N=4 sum) trained on real CIFAR-10 images;
#   3. the benchmark: paper-size (then larger) model, N in {1,2,4,8}, float32 (then
#      mixed_bfloat16), 3 fresh processes per variant;
# everything under OUT. Benchmark stages after the first start only while the time
# budget (BUDGET_S, default 450 s) has room for them; skipped ones are listed in
# OUT/stages.txt.
#
# Usage: benchmarks/gpu/run.sh OUT [--smoke]
#   --smoke     tiny sizes, for a CPU check of the script itself (JAX CPU is enough)
# Environment:
#   BUDGET_S      seconds for the whole run (default 450)
#   TRAIN_SOURCE  the data of step 3 (default: `sample`, the real CIFAR-10 images bundled
#                 with the kit; `dir:/path/to/cifar-10-batches-py/..` for the published files)
#   EPOCHS        epochs of each training run (default 40, the paper's)
#
# On a machine without Keras (the GPU machines: Python 3.12, JAX with CUDA, numpy, pandas,
# matplotlib), the wheels fetched beforehand by benchmarks/gpu/fetch_wheels.sh into .whl/
# are installed into /tmp/site first.
set -euo pipefail
OUT=${1:?usage: benchmarks/gpu/run.sh OUT [--smoke]}
SMOKE=${2:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUDGET_S=${BUDGET_S:-450}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
log() { echo "[$(printf '%4d' "$SECONDS") s] $*" | tee -a "$OUT/stages.txt"; }
: > "$OUT/stages.txt"

# --- 0. dependencies and environment
if ! "$PY" -c "import keras, yaml, h5py" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no keras here and no .whl/ (run benchmarks/gpu/fetch_wheels.sh)"; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
# Every worker is a fresh process; the compiled programs are shared through this cache
# (compilation is outside the measured steps anyway, this only saves wall time).
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/swin-gao-jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
{
  "$PY" -c "import sys, jax, keras, numpy; print('python', sys.version.split()[0]); print('jax', jax.__version__); print('keras', keras.__version__); print('numpy', numpy.__version__); print('devices', jax.devices())"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "nvidia-smi: none"
  # the device machine gets a copy of the tree without .git: the caller passes the commit
  echo "commit $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "${GIT_COMMIT:-unknown}")"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

if [[ "$SMOKE" == "--smoke" ]]; then
  BENCH=(--batch 8 --n 1 2 --steps 3 --warmup 1 --repeats 1 --dataset mnist)
  TRAIN=(--set max_train_samples=256 --set max_test_samples=128 --set embed_dim=16
         --set "num_heads=[2]" --set mlp_dim=32 --set head_units=8)
  EPOCHS=${EPOCHS:-1}
else
  BENCH=(--batch 128 --n 1 2 4 8 --steps 20 --warmup 10 --repeats 3 --dataset cifar10)
  TRAIN=()
  EPOCHS=${EPOCHS:-40}
fi

# --- 1. equivalence on the device
log "equivalence"
"$PY" benchmarks/gpu/equivalence.py "$OUT/equivalence.json" $SMOKE 2>"$OUT/equivalence.log" \
  | tee "$OUT/equivalence.txt" || log "equivalence: FAILED or errored (see equivalence.{txt,log})"

# --- 2./3. the paper pair (its images/s is the speed target's number), then the
# benchmark stages while the budget lasts
bench() {  # name, then bench options
  local name=$1; shift
  local t0=$SECONDS
  log "bench $name"
  "$PY" -m swin_gao_lib.cli bench --backend jax "${BENCH[@]}" "$@" --out "$OUT/bench-$name" \
    > "$OUT/bench-$name.log" 2>&1 || log "bench $name: exit $? (see bench-$name.log)"
  LAST=$((SECONDS - t0))
}
room() {  # a stage that takes about $1 s fits in what is left
  (( SECONDS + $1 <= BUDGET_S ))
}

train_pair() {
  log "train the paper pair: $EPOCHS epochs on ${TRAIN_SOURCE:-sample}"
  for run in cifar10-baseline cifar10-gao; do
    "$PY" -m swin_gao_lib.cli train "params/paper/$run.yaml" --overwrite --verbose 2 \
      --set backend=jax --set "source=${TRAIN_SOURCE:-sample}" --set "epochs=$EPOCHS" \
      --set "output_dir=$OUT/train" "${TRAIN[@]}" > "$OUT/train-$run.log" 2>&1 \
      || log "train $run: exit $? (see train-$run.log)"
  done
}
train_pair


bench paper-float32 --models paper --precision float32
STAGE=$LAST  # the cost of one model at one precision: the estimate for the others

for stage in "paper-mixed_bfloat16 --models paper --precision mixed_bfloat16" \
             "large-float32 --models large --precision float32" \
             "large-mixed_bfloat16 --models large --precision mixed_bfloat16"; do
  read -r name args <<< "$stage"
  if [[ "$SMOKE" == "--smoke" && "$name" != "paper-mixed_bfloat16" ]]; then continue; fi
  # the larger model costs about twice the paper-size one
  need=$STAGE
  if [[ "$name" == large-* ]]; then need=$((2 * STAGE)); fi
  if room "$need"; then bench $name $args; else log "SKIPPED bench $name (budget: needs ~${need} s)"; fi
done

# --- summary
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
lines = [f"# GPU run\n", (out / "environment.txt").read_text(), "\n## Equivalence\n",
         (out / "equivalence.txt").read_text()]
for md in sorted(out.glob("bench-*/bench.md")):
    lines += [f"\n## {md.parent.name}\n", md.read_text()]
for metrics in sorted(out.glob("train/*/metrics.json")):
    m = json.loads(metrics.read_text())
    lines.append(f"\n{m['run_name']}: test accuracy {m['test_accuracy']:.4f}, "
                 f"{m['epochs_completed']} epochs, {m['images_per_s']:.0f} images/s (steady), "
                 f"fit {m['fit_wall_s']:.1f} s, compile {m['compile_s']:.1f} s, "
                 f"peak {m['peak_memory_mib']} MiB ({m['peak_memory_kind']})")
lines += ["\n## Stages\n", (out / "stages.txt").read_text()]
(out / "SUMMARY.md").write_text("".join(lines))
print("".join(lines))
EOF
log "done"
