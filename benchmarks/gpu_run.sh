#!/usr/bin/env bash
# The whole GPU session in one command (issue 15): benchmark the zoo, train it on brain-tumor-mri,
# and leave results in $OUT however a step ends. Run from the repository root.
#
#   bash benchmarks/gpu_run.sh            # on the H200: needs .whl/ and .device-data/ (gpu_prepare.sh)
#   OUT=/tmp/out PYTHON=.venv/bin/python bash benchmarks/gpu_run.sh --smoke   # CPU rehearsal, 1-2 min
#
# Each step runs under `timeout` with its own budget, taken from what is left of GPU_TOTAL_S, so
# packing the results always has its GPU_PACK_S. Settings (environment):
#   OUT           folder for the results (required)
#   PYTHON        interpreter (python3)
#   GPU_WORK      scratch folder (/tmp/gpu-run; --smoke: a fresh temporary one)
#   GPU_TOTAL_S   whole script (530)         GPU_BENCH_S   step 1 (150)       GPU_PACK_S  step 3 (45)
#   GPU_RETURN_BYTES  what may come back in all (64 MiB)
#   (and per bench model at most 110 s, so a slow compiler is recorded as failed, not cut off)
#   BENCH_MODELS  models of step 1, in order (the zoo, resnet50 first)
#   TRAIN_MODELS  models of step 2, in order (the zoo, resnet50 first: what is cut is the last ones)
#   TRAIN_ARGS    extra train_all.py arguments (e.g. "--batch-size 128")
# Results: run-small.tar.gz, bench.json, gpu_run.json, log.txt, <model>.w16.partNN (gpu_pack.py);
# turn them into a run folder with: python benchmarks/gpu_unpack.py $OUT --data ../shared/data/brain-tumor-mri
set -u

SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    *) echo "usage: bash benchmarks/gpu_run.sh [--smoke]" >&2; exit 2 ;;
  esac
done
: "${OUT:?set OUT to the folder that receives the results}"
STARTED=$(date +%s)
PY=${PYTHON:-python3}
ZOO=resnet50,custom_cnn,vgg16,simple_cnn,mobilenetv2,densenet121
if [ "$SMOKE" = 1 ]; then
  WORK=${GPU_WORK:-$(mktemp -d)}
  # Budgets far above the 1-2 min this takes on 2 cores: a busy machine must not cut it.
  TOTAL=${GPU_TOTAL_S:-400}; BENCH_S=${GPU_BENCH_S:-120}; PACK_S=${GPU_PACK_S:-60}
  # Room for simple_cnn's weights but not custom_cnn's, so both kinds of model come back.
  RETURN_BYTES=${GPU_RETURN_BYTES:-$(( 2 * 1024 * 1024 ))}
  BENCH_MODELS=${BENCH_MODELS:-simple_cnn}; TRAIN_MODELS=${TRAIN_MODELS:-simple_cnn,custom_cnn}
  SIZE=32; BATCH=8; BENCH_STEPS=2; REPEATS=1; EPOCHS=1; WORKERS=1; MODEL_S=100
  DATA_TAR=$WORK/demo.tar; RUN_ID=$(date -u +%Y%m%d-%H%M%S)-demo-smoke
else
  WORK=${GPU_WORK:-/tmp/gpu-run}
  TOTAL=${GPU_TOTAL_S:-530}; BENCH_S=${GPU_BENCH_S:-150}; PACK_S=${GPU_PACK_S:-45}
  RETURN_BYTES=${GPU_RETURN_BYTES:-$(( 64 * 1024 * 1024 ))}  # the device's limit on what comes back
  BENCH_MODELS=${BENCH_MODELS:-$ZOO}; TRAIN_MODELS=${TRAIN_MODELS:-$ZOO}
  SIZE=224; BATCH=128; BENCH_STEPS=20; REPEATS=3; EPOCHS=30; WORKERS=8
  MODEL_S=110  # one bench model at most: a slow compiler (mobilenetv2) is then recorded, not cut off
  DATA_TAR=.device-data/brain-tumor-mri.tar; RUN_ID=$(date -u +%Y%m%d-%H%M%S)-brain-tumor-mri-h200
fi
mkdir -p "$OUT" "$WORK/data"
LOG=$WORK/log.txt
exec > >(tee -a "$LOG") 2>&1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2

left() { echo $(( TOTAL - ($(date +%s) - STARTED) )); }
STEPS=()
# However the script ends: the log's tail, and a gpu_run.json naming the steps if packing wrote none.
finish() {
  [ -f "$OUT/gpu_run.json" ] || printf '{"steps": "%s", "packed": false}\n' "${STEPS[*]:-}" > "$OUT/gpu_run.json"
  echo "== done in $(( $(date +%s) - STARTED ))s: $(ls "$OUT" | tr '\n' ' ')"
  tail -c $(( 512 * 1024 )) "$LOG" > "$OUT/log.txt"
}
trap finish EXIT
# run_step NAME BUDGET COMMAND...: run under timeout, record NAME:RC:SECONDS:BUDGET.
run_step() {
  local name=$1 budget=$2; shift 2
  if [ "$budget" -lt 5 ]; then echo "== $name: skipped, no time left"; STEPS+=("$name:125:0:$budget"); return; fi
  echo "== $name (budget ${budget}s): $*"
  local t0; t0=$(date +%s)
  timeout -k 10 "$budget" "$@"
  local rc=$?
  STEPS+=("$name:$rc:$(( $(date +%s) - t0 )):$budget")
  echo "== $name: exit $rc after $(( $(date +%s) - t0 ))s"
}

echo "== gpu_run.sh $([ "$SMOKE" = 1 ] && echo --smoke) at $(date -u +%FT%TZ), work $WORK, out $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [ "$SMOKE" = 1 ]; then  # the venv has the packages; the device's wheels are for another Python
  # Hide what the H200 image lacks (TensorFlow, the dashboard's and explanations' packages), so
  # whatever would need them there fails here first.
  for missing in tensorflow tf_keras_vis imagehash streamlit plotly; do
    mkdir -p "$WORK/hidden/$missing"
    echo "raise ImportError('$missing is hidden by gpu_run.sh --smoke: the H200 image has none')" \
      > "$WORK/hidden/$missing/__init__.py"
  done
  export PYTHONPATH=$WORK/hidden:$PWD${PYTHONPATH:+:$PYTHONPATH}
  "$PY" -c "from bt_core.data.demo import generate_demo_dataset as g; g('$WORK/src/demo', per_class=24, image_size=64)" \
    && tar -cf "$DATA_TAR" -C "$WORK/src" demo || exit 1
else
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/*.whl: run benchmarks/gpu_prepare.sh first"; exit 1; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
tar -xf "$DATA_TAR" -C "$WORK/data" || { echo "cannot unpack $DATA_TAR"; exit 1; }
DATA=$WORK/data/$(tar -tf "$DATA_TAR" | head -1 | cut -d/ -f1)

# 1. Throughput: in-memory tensors beside the project's pipeline (uint8, on-device augmentation).
BUDGET=$(( BENCH_S < $(left) - PACK_S ? BENCH_S : $(left) - PACK_S ))
run_step bench "$BUDGET" "$PY" benchmarks/bench_train.py --models "$BENCH_MODELS" --img-size "$SIZE" \
  --batch-size "$BATCH" --steps "$BENCH_STEPS" --repeats "$REPEATS" --precision mixed_bfloat16 \
  --augment device --workers "$WORKERS" --child-timeout "$MODEL_S" --json "$WORK/bench.json"

# 2. The zoo on the dataset; a model still training when time runs out stays "running" in the manifest.
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
run_step train "$(( $(left) - PACK_S ))" "$PY" train_all.py --data "$DATA" --models "$TRAIN_MODELS" \
  --epochs "$EPOCHS" --img-size "$SIZE" --precision mixed_bfloat16 --no-explain --workers "$WORKERS" \
  --out "$WORK/artifacts" --run-id "$RUN_ID" ${TRAIN_ARGS:-}

# 3. Everything small, then as many float16 weights as the return limits allow.
run_step pack "$(( $(left) > 10 ? $(left) - 5 : 5 ))" "$PY" benchmarks/gpu_pack.py \
  --run "$WORK/artifacts/$RUN_ID" --out "$OUT" --bench "$WORK/bench.json" \
  --return-bytes "$RETURN_BYTES" "${STEPS[@]/#/--step=}"
