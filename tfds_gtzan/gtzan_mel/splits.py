"""Train/validation/test assignment for the `gtzan_mel` configs.

All assignments are deterministic: they depend only on the (sorted) items and a
fixed seed, never on file-system order or on how many workers featurised them.
"""

from __future__ import annotations

import collections
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


def group_split(items: Sequence[tuple[T, int, str]], *, seed: int | tuple[int, ...],
                fractions: Mapping[str, float], at_least_one_from: int = 3) -> dict[T, str]:
  """{item: split} for (item, label, group) triples: stratified by label, no group in two splits.

  A group (an artist, an album; '' makes an item a group of its own) goes whole to one split.
  Its label is the one most of its items have (ties: the lowest). Each label's groups, sorted
  then shuffled by (seed, label), are dealt as `shuffled_split` deals tracks: each split of
  `fractions` (in its order; 'train' gets the rest) takes groups in that order until it holds
  round(n * share) of the label's n items, at least one group when the label has
  `at_least_one_from` groups or more; a group that would take it past twice that is passed
  over for a smaller one. Train always keeps a group. So a label of few artists still gets
  one artist in validation and one in test, and a big artist does not swamp a small split.
  A split that no label filled gets the smallest group of a label with two in train.
  """
  members = _group_members(items)
  by_label = collections.defaultdict(list)
  for key, group_items in members.items():
    counts = collections.Counter(label for _, label in group_items)
    by_label[min(counts, key=lambda label: (-counts[label], label))].append(key)
  assignment = {}
  for label in sorted(by_label):
    keys = sorted(by_label[label])
    keys = [keys[i] for i in np.random.default_rng(_seed(seed, label)).permutation(len(keys))]
    sizes = {key: len(members[key]) for key in keys}
    total = sum(sizes.values())
    for split, share in fractions.items():
      target = int(total * share + 0.5)
      if len(by_label[label]) >= at_least_one_from:
        target = max(target, 1)
      taken = 0
      while taken < target and len(keys) > 1:
        fitting = [key for key in keys if taken + sizes[key] <= 2 * target]
        if not fitting and taken:
          break
        key = fitting[0] if fitting else min(keys, key=lambda k: sizes[k])
        keys.remove(key)
        assignment |= {item: split for item, _ in members[key]}
        taken += sizes[key]
    assignment |= {item: 'train' for key in keys for item, _ in members[key]}
  # A split no label gave a group (every label has few): the smallest group of a label that keeps
  # another one in train, so that each split exists when there are enough groups at all.
  for split in fractions:
    if split not in assignment.values():
      spare = [key for keys in by_label.values() for key in keys
               if assignment[members[key][0][0]] == 'train'
               and sum(assignment[members[k][0][0]] == 'train' for k in keys) > 1]
      if spare:
        key = min(spare, key=lambda k: (len(members[k]), k))
        assignment |= {item: split for item, _ in members[key]}
  return assignment


def _seed(seed: int | tuple[int, ...], label: int) -> tuple[int, ...]:
  return (*seed, label) if isinstance(seed, tuple) else (seed, label)


def assign_groups(items: Sequence[tuple[T, int, str]], shares: Mapping[Hashable, float], *,
                  seed: int | tuple[int, ...]) -> dict[T, Hashable]:
  """Deals whole groups of (item, label, group) triples into parts of about `shares` of each label.

  Deterministic in (items, seed): the groups, in sorted order, are shuffled by `seed`, then
  taken largest first; each goes to the part it fills least, measured for its own labels as
  (that part's count of the label after adding the group) / (the part's share of the label's
  total). So every label is spread over the parts in about the shares asked for, as far as
  its groups' sizes allow (a label of one artist lands whole in one part). Every part gets at
  least one group when there are as many groups as parts (the smallest groups of the largest
  parts move). An item with group '' is a group of its own.
  """
  members = _group_members(items)
  keys = sorted(members)
  keys = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
  keys.sort(key=lambda k: -len(members[k]))  # stable: ties keep the shuffled order
  parts = list(shares)
  totals = collections.Counter(label for _, label, _ in items)
  counts = {part: collections.Counter() for part in parts}
  part_of = {}
  for key in keys:
    labels = collections.Counter(label for _, label in members[key])

    def fill(part):
      return sum(n * (counts[part][label] + n) / max(shares[part] * totals[label], 1e-9)
                 for label, n in labels.items())

    part_of[key] = min(parts, key=fill)  # ties: the first part
    counts[part_of[key]].update(labels)
  if len(keys) >= len(parts):
    for part in parts:
      if part not in part_of.values():
        sizes = collections.Counter(part_of.values())
        donor = max(parts, key=lambda p: sizes[p])
        smallest = min((k for k in keys if part_of[k] == donor), key=lambda k: len(members[k]))
        part_of[smallest] = part
  return {item: part_of[key] for key in keys for item, _ in members[key]}


def _group_members(items: Sequence[tuple[T, int, str]]) -> dict[tuple[str, str], list[tuple[T, int]]]:
  """{group key: its (item, label) pairs}; an item with group '' is a group of its own."""
  members = collections.defaultdict(list)
  for item, label, group in items:
    members[(group, '') if group else ('', str(item))].append((item, label))
  return members
