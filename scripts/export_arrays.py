"""Saves a prepared gtzan_mel dataset as one .npz, for machines without TFDS or librosa.

  # The three splits as `<split>/<key>` arrays, for scripts/study_arrays.py:
  python scripts/export_arrays.py --dataset=gtzan_mel/tracks --data_dir=data --out=tracks.npz
  # All segments pooled (plus K augmented copies of every clip), for `gtzan_jax.crossval --arrays`:
  python scripts/export_arrays.py --pooled --dataset=gtzan_mel/tracks --data_dir=data \
      --manual_dir=../shared/gtzan_mini --audio_copies=1 --quantize --out=pooled.npz

--quantize stores the log-mel values as uint8 (256 levels over the data's range,
about 0.45 dB apart on gtzan_mini) to halve the file; they are read back as float16.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gtzan_jax import arrays_io  # noqa: E402
from tfds_gtzan import data  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dataset', required=True)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--out', required=True)
  parser.add_argument('--pooled', action='store_true', help='All splits pooled, as crossval reads them.')
  parser.add_argument('--manual_dir', default=None, help='The GTZAN audio (to build, or for --audio_copies).')
  parser.add_argument('--audio_copies', type=int, default=0, help='With --pooled: augmented copies per clip.')
  parser.add_argument('--quantize', action='store_true', help='With --pooled: mel as uint8.')
  args = parser.parse_args()
  if args.pooled:
    from configs import paper  # pylint: disable=g-import-not-at-top
    from gtzan_jax import folds  # pylint: disable=g-import-not-at-top
    config = paper.get_config()
    config.dataset, config.data_dir, config.manual_dir = args.dataset, args.data_dir or '', args.manual_dir or ''
    config.augment.audio_copies = args.audio_copies
    pooled, class_names = folds.pooled_segments(config)
    arrays_io.save_pooled(args.out, pooled, class_names, quantize=args.quantize)
    print(f'{args.out}: {len(pooled["label"])} segments, {int(np.sum(pooled["copy"] == 0))} original, '
          f'{len(np.unique(pooled["track"]))} tracks, {os.path.getsize(args.out) / 2**20:.1f} MiB')
    return
  datasets = {split: data.read_split(args.dataset, split, args.data_dir)
              for split in ('train', 'validation', 'test')}
  arrays_io.save_splits(args.out, datasets)
  counts = ', '.join(f'{split} {len(d["label"])} segments' for split, d in datasets.items())
  print(f'{args.out}: {counts}')


if __name__ == '__main__':
  main()
