"""Trains each model family on splits saved as one .npz and reports segment and track accuracy.

For machines without TFDS or librosa (such as a GPU box): export the splits
here, carry the .npz, and run

  python scripts/study_arrays.py --arrays=mini_tracks.npz --out=DIR [--models=vgg,cnn,lstm,gru]

The .npz holds `<split>/<key>` arrays as `tfds_gtzan.data.read_split` returns
them (export with `scripts/export_arrays.py`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gtzan_jax import arrays_io, cli, evaluation, input_pipeline, train  # noqa: E402

CONFIGS = {'vgg': 'configs.paper', 'cnn': 'configs.cnn', 'lstm': 'configs.lstm', 'gru': 'configs.gru'}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--arrays', required=True)
  parser.add_argument('--out', required=True)
  parser.add_argument('--models', default='vgg,cnn,lstm,gru')
  parser.add_argument('--epochs', type=int, default=30)
  parser.add_argument('--dtype', default='float32')
  parser.add_argument('--seeds', default='0')
  args = parser.parse_args()
  cli.quiet_library_logs()
  datasets = arrays_io.load_splits(args.arrays)
  rows = []
  for model in args.models.split(','):
    for seed in map(int, args.seeds.split(',')):
      config = importlib.import_module(CONFIGS[model]).get_config()
      config.dataset = f'arrays:{os.path.basename(args.arrays)}'
      config.num_epochs, config.seed, config.dtype = args.epochs, seed, args.dtype
      workdir = os.path.join(args.out, f'{model}_seed{seed}')
      start = time.perf_counter()
      results = train.train_and_evaluate(
          config, workdir, datasets, data_source=input_pipeline.arrays_source(
              f'the splits of {args.arrays}', input_pipeline.legacy_class_names()))
      seconds = time.perf_counter() - start
      row = {'model': model, 'seed': seed, 'epochs': args.epochs, 'wall_s': round(seconds, 1),
             'train_examples_per_s': results['train_examples_per_s'], 'device': results['device_kind']}
      for which, scores in evaluation.evaluate_checkpoints(workdir, datasets['test']).items():
        row[f'{which}_segment_acc'] = scores['segment']['accuracy']
        row[f'{which}_track_acc'] = scores['track']['accuracy']
      row['validation_acc'] = results['validation']['accuracy']
      rows.append(row)
      print(json.dumps(row), flush=True)
  with open(os.path.join(args.out, 'study.json'), 'w') as f:
    json.dump(rows, f, indent=2)


if __name__ == '__main__':
  main()
