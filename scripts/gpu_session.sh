#!/usr/bin/env bash
# One GPU device call: the benchmark (bf16 and fp32) then cross-validation arms side by side.
#
#   bash scripts/gpu_session.sh   # results in $OUT (default ./gpu_out); ~420 s of device time with CV=0
#
# For an image with jax/flax/optax/orbax/matplotlib but not ml_collections and tensorboardX (carry them
# as wheels: `.venv/bin/python -m pip download --no-deps ml_collections tensorboardX -d .device_carry`,
# then run with carry [".device_carry"]) nor TFDS/librosa: the CV data (CV=1) is a pooled .npz made here:
#   python scripts/export_arrays.py --pooled --dataset=gtzan_mel/tracks --data_dir=data \
#       --manual_dir=../shared/gtzan_mini --audio_copies=1 --quantize --out=.device_carry/mini_pooled_aug1_u8.npz
# Every phase has its own time limit and writes what it measured as it goes, so a cut-off run
# still returns figures. BENCH=0 skips the benchmark, LARGE=0 its batch 512/1024 run, CV=1 adds the
# cross-validation arms. The 2026-11-28 lease: machine start ~30 s; compilation ~9-31 s per batch size.
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"; BUDGET_S=${BUDGET_S:-560}; LOG="$OUT/log.txt"
say() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$LOG"; }
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device_carry/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 GTZAN_JAX_TUNE_XLA=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOG"
python3 -c "import jax, flax, optax, orbax.checkpoint, ml_collections; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" 2>&1 | tee -a "$LOG"
say setup done
# The max-pool gradient check of tests/test_models.py (no pytest needed): every window keeps its gradient
# inside the compiled VGG. It failed on CPU before the 2026-11-30 fix; never run on a GPU yet.
timeout 120 python3 -c "import sys; sys.path.insert(0, 'tests'); import test_models as t
t.test_pool_gradients_keep_every_windows_gradient_inside_the_model(); print('pool gradient check: passed')" \
  2>&1 | tail -3 | tee -a "$LOG"
quiet() { grep --line-buffered -v '^[IW][0-9]\{4\} '; }  # absl INFO/WARNING lines stay in the log only
if [ "${BENCH:-1}" != 0 ]; then
  B="python3 -m gtzan_jax.benchmark --config=configs/paper.py --steps=20 --rounds=2 --nopeer --notune_cpu --nointerleave"
  # XLA autotunes each convolution at compile time: ~9-23 s at batch 64 and ~18-31 s at 256 on an H200
  # (fp32-bf16), longer for larger batches, which therefore run last, in a process of their own.
  timeout ${BF16_S:-200} $B --dtype=bfloat16 --batch_sizes=64,256 --epoch_steps=100 --recipe_examples=10000 \
    --recipe_epochs=50 --profile_dir=/tmp/profile --out="$OUT/bench_gpu_bf16.json" 2>&1 | tee -a "$LOG" | quiet
  say bf16 benchmark exit ${PIPESTATUS[0]}
  timeout ${FP32_S:-45} $B --dtype=float32 --batch_sizes=64,256 --noepoch --nomel --out="$OUT/bench_gpu_fp32.json" \
    2>&1 | tee -a "$LOG" | quiet
  say fp32 benchmark exit ${PIPESTATUS[0]}
  if [ "${LARGE:-1}" != 0 ]; then  # the larger per-device batches the 2026-11-28 lease had no time for
    timeout ${LARGE_S:-150} $B --dtype=bfloat16 --batch_sizes=512,1024 --noepoch --nomel \
      --out="$OUT/bench_gpu_bf16_large.json" 2>&1 | tee -a "$LOG" | quiet
    say large-batch benchmark exit ${PIPESTATUS[0]}
  fi
fi
if [ "${CV:-0}" != 0 ]; then  # CV=1: the ablation arms (done on 2026-11-28; docs/study.md)
  DEADLINE=$((BUDGET_S - SECONDS - 30))
  say "cross-validation arms, deadline ${DEADLINE}s"
  python3 scripts/crossval_arms.py --arms=scripts/cv_arms.txt --arrays=.device_carry/mini_pooled_aug1_u8.npz \
    --workdir=/tmp/cv --out="$OUT" --jobs=${JOBS:-12} --deadline_s=$DEADLINE 2>&1 | tee -a "$LOG" | quiet
  say cross-validation exit ${PIPESTATUS[0]}
fi
