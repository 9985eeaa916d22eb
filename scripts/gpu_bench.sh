#!/usr/bin/env bash
# The GPU benchmark run recorded in BENCHMARKS.md, on an image with jax/flax/optax/orbax but not
# ml_collections (carried as a wheel in .device_carry/). Results land in $OUT (default ./bench_out).
set -u
OUT=${OUT:-bench_out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --target /tmp/site .device_carry/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if ! python3 -c "import gtzan_jax, jax; print(jax.__version__, jax.devices())"; then
  export GTZAN_JAX_TUNE_XLA=0; python3 -c "import gtzan_jax, jax; print(jax.__version__, jax.devices())"
fi
B="python3 -m gtzan_jax.benchmark --config=configs/default.py --steps=20 --rounds=2 --nopeer"
timeout 150 $B --dtype=bfloat16 --batch_sizes=64,128,256,512,1024 --epoch_steps=100 \
  --recipe_examples=10000 --recipe_epochs=50 --out="$OUT/bench_gpu_bf16.json" 2>&1 | grep -v "^W\|^I" | tail -20
timeout 100 $B --dtype=float32 --batch_sizes=64,256,1024 --epoch_steps=100 \
  --recipe_examples=10000 --recipe_epochs=50 --out="$OUT/bench_gpu_fp32.json" 2>&1 | grep -v "^W\|^I" | tail -20
