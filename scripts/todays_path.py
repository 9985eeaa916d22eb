"""Files/s of `predict.predict_file` one file after another, from whichever checkout is the working directory.

  python scripts/todays_path.py FOLDER [--rounds=3]

Issue 18 asks for 3x "today's" files/s: the one-file path as it was before the library path
existed. `gtzan_jax.benchmark --predict` times `predict_file` in the same run, but that function
now shares the faster features (and, under --predict_only, the inference flags), so this script
also times it from an old checkout, back to back on the same machine:

  git worktree add /tmp/before_18 9afff77~1      # the commit before issue 18's work
  (cd /tmp/before_18 && python /path/to/scripts/todays_path.py /tmp/clips)
  python scripts/todays_path.py /tmp/clips       # this checkout, with training's XLA flags

FOLDER gets 100 synthetic 30 s clips (as the benchmark's) if it holds no .wav yet. The model is
configs/default.py's with its initial weights; the process has the XLA flags importing gtzan_jax
gives it (training's). Prints each round's files/s; the best is the figure.
`gtzan_jax.benchmark --predict --predict_before=DIR` runs this script from checkout DIR in each
of its rounds, on its own clips: the path before issue 18 in the same run as the library path.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import time


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('folder')
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  sys.path.insert(0, os.getcwd())  # the checkout being timed, not necessarily this script's
  import gtzan_jax  # pylint: disable=g-import-not-at-top  (its XLA flags, before JAX)
  import jax  # pylint: disable=g-import-not-at-top
  from gtzan_jax import evaluation, models, predict, train  # pylint: disable=g-import-not-at-top
  if not glob.glob(os.path.join(args.folder, '*', '*.wav')):
    import soundfile as sf  # pylint: disable=g-import-not-at-top
    from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top
    for i in range(100):
      genre, index = i % len(synthetic.GENRES), i // len(synthetic.GENRES)
      os.makedirs(os.path.join(args.folder, synthetic.GENRES[genre]), exist_ok=True)
      sf.write(os.path.join(args.folder, synthetic.GENRES[genre], f'{synthetic.track_name(genre, index)}.wav'),
               synthetic.generate_clip(genre, index), synthetic.SAMPLE_RATE, subtype='PCM_16')
  spec = importlib.util.spec_from_file_location('config', os.path.join('configs', 'default.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  state = train.create_train_state(jax.random.PRNGKey(config.seed), config, models.create_model(config),
                                   steps_per_epoch=100, pretrained=False)
  trained = evaluation.Trained(config, jax.device_put(state, jax.local_devices()[0]), 0, 0.0)
  paths = sorted(glob.glob(os.path.join(args.folder, '*', '*.wav')))
  predict.predict_file(trained, paths[0])  # compiles
  print(f'{os.path.dirname(gtzan_jax.__file__)}; XLA_FLAGS={os.environ.get("XLA_FLAGS", "")}; '
        f'{len(paths)} files', flush=True)
  for round_ in range(args.rounds):
    start = time.perf_counter()
    segments = sum(len(predict.predict_file(trained, path).segment_probabilities) for path in paths)
    seconds = time.perf_counter() - start
    print(f'round {round_ + 1}: {len(paths) / seconds:.2f} files/s ({len(paths)} files, {segments} segments '
          f'in {seconds:.3f} s)', flush=True)


if __name__ == '__main__':
  main()
