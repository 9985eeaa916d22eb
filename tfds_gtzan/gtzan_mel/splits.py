"""Train/validation/test assignment for the `gtzan_mel` configs.

All assignments are deterministic: they depend only on the (sorted) items and a
fixed seed, never on file-system order or on how many workers featurised them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import importlib_resources
import numpy as np

SPLITS = ('train', 'validation', 'test')
# File names of the shipped fault-filtered lists (Kereliuk, Sturm & Larsen 2015).
_FAULT_FILTERED_FILES = {'train': 'train.txt', 'validation': 'valid.txt', 'test': 'test.txt'}

T = TypeVar('T', bound=Hashable)


def fault_filtered_tracks() -> dict[str, str]:
  """{'blues.00029': 'train', ...} for the 930 tracks of the shipped lists."""
  lists = importlib_resources.files('tfds_gtzan.gtzan_mel') / 'splits' / 'fault_filtered'
  track_split = {}
  for split, file_name in _FAULT_FILTERED_FILES.items():
    for line in (lists / file_name).read_text().split():
      track_split[line.rsplit('/', 1)[-1].rsplit('.', 1)[0]] = split  # genre/track.wav
  return track_split


def stratified_split(items_by_group: Mapping[int, Sequence[T]], *, seed: int,
                     fractions: Mapping[str, float]) -> dict[T, str]:
  """Shuffles each group's items with `seed` and splits every group by `fractions`."""
  assignment = {}
  for group, items in sorted(items_by_group.items()):
    assignment |= shuffled_split(items, seed=(seed, group), fractions=fractions)
  return assignment


def shuffled_split(items: Sequence[T], *, seed: int | tuple[int, ...],
                   fractions: Mapping[str, float]) -> dict[T, str]:
  """Shuffles `items` (in sorted order first) and cuts them into splits.

  `fractions` gives the 'validation' and 'test' shares: each gets round(n * share)
  items (halves round up), but at least one when n >= 3; 'train' gets the rest.
  """
  ordered = sorted(items)
  shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
  minimum = 1 if len(items) >= len(SPLITS) else 0
  n_validation, n_test = (max(minimum, int(len(items) * fractions[split] + 0.5))
                          for split in SPLITS[1:])
  n_train = len(items) - n_validation - n_test
  names = ['train'] * n_train + ['validation'] * n_validation + ['test'] * n_test
  return dict(zip(shuffled, names))
