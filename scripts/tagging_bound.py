"""What bounds tagging on a CPU: the model's forward pass and the features, each timed apart, per segment.

  python scripts/tagging_bound.py [--config=configs/default.py] [--audio=../shared/gtzan_mini]

Times `tagging.Forward` (the model as `predict` runs it: rows one at a time inside a compiled batch
of 64 over one XLA CPU device per core, and, for comparison, the batch computed as one on one and
on all devices) on random log-mels, and a tagging worker's decoding plus log-mels
(`tag_workers.file_features`) of 40 clips of --audio (one BLAS
thread, as each tagging worker), best of 3. Prints segments/s and core-milliseconds per segment,
and the files/s that two such costs allow on this machine's cores.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gtzan_jax import tagging  # noqa: E402  (no JAX yet)

tagging.set_inference_flags()  # as predict's command line: one CPU device per core, the inference flags

import importlib.util  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402

from gtzan_jax import predict_bench, tag_workers  # noqa: E402
from tfds_gtzan import feature_sets  # noqa: E402

BATCH = 64
SEGMENTS_PER_CLIP = 14


def _best(fn, rounds: int = 3) -> float:
  best = float('inf')
  for _ in range(rounds):
    start = time.perf_counter()
    count = fn()
    best = min(best, (time.perf_counter() - start) / count)
  return best


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='configs/default.py')
  parser.add_argument('--audio', default='../shared/gtzan_mini')
  args = parser.parse_args()
  spec = importlib.util.spec_from_file_location('config', args.config)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  trained = predict_bench.initial_model(module.get_config())
  mel = np.random.default_rng(0).normal(-40, 10, (BATCH, 128, 173)).astype(np.float16)
  cores = os.cpu_count() or 1
  devices = jax.local_devices()
  forward = {}
  for name, kwargs in (('rows one at a time, all devices (predict)', dict(per_row=True)),
                       ('one batch, one device', dict(per_row=False)),
                       ('one batch, all devices', dict(per_row=False, devices=devices))):
    fn = tagging.Forward(trained, BATCH, **kwargs)
    fn(mel), fn(mel)  # compile, warm up

    def run(fn=fn) -> int:
      for _ in range(5):
        fn(mel)
      return 5 * BATCH

    forward[name] = _best(run)
    print(f'forward, {name}: {1 / forward[name]:.0f} segments/s ({1e3 * forward[name]:.2f} ms a segment)')
  files = sorted(glob.glob(os.path.join(args.audio, '**', '*.wav'), recursive=True))[:40]
  if not files:
    raise SystemExit(f'error: no .wav under {args.audio}')
  fs = feature_sets.get('mel')

  def features() -> int:  # what a tagging worker runs for a file
    count = 0
    for f in files:
      for segments in tag_workers.file_features(f, fs, fs.max_segments):
        count += len(segments)
    return count

  with threadpoolctl.threadpool_limits(limits=1, user_api='blas'):
    features()
    feature_s = _best(features)
  print(f'decode + log-mel, one thread: {1e3 * feature_s:.2f} core-ms a segment ({len(files)} clips)')
  model_core_s = min(forward.values()) * cores
  per_segment = model_core_s + feature_s
  print(f'per segment: {1e3 * model_core_s:.2f} core-ms forward + {1e3 * feature_s:.2f} features = '
        f'{1e3 * per_segment:.2f}; {cores} cores: at most {cores / per_segment:.0f} segments/s, '
        f'{cores / per_segment / SEGMENTS_PER_CLIP:.1f} files/s of {SEGMENTS_PER_CLIP} segments')


if __name__ == '__main__':
  main()
