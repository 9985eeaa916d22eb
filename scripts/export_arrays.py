"""Saves the splits of a prepared gtzan_mel dataset as one .npz (`<split>/<key>` arrays).

  python scripts/export_arrays.py --dataset=gtzan_mel/tracks --data_dir=data --out=tracks.npz

For training where TFDS or librosa are not installed: see scripts/study_arrays.py.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfds_gtzan import data  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--dataset', required=True)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--out', required=True)
  args = parser.parse_args()
  arrays = {f'{split}/{key}': value
            for split in ('train', 'validation', 'test')
            for key, value in data.read_split(args.dataset, split, args.data_dir).items()}
  np.savez(args.out, **arrays)
  print(f'{args.out}: {", ".join(f"{k} {v.shape}" for k, v in arrays.items() if k.endswith("/label"))}')


if __name__ == '__main__':
  main()
