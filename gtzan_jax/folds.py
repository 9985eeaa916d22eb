"""Cross-validation's data: every segment of a dataset pooled, dealt into track-disjoint folds.

  data, class_names = pooled_segments(config)          # or arrays_io.load_pooled(path)
  fold_of = assign_folds(tracks, labels, folds=5, seed=0, groups=groups)
  splits = fold_splits(data, fold_of, fold, validation_fraction=0.1, seed=0)

Folds keep groups whole where the data has them (a collection's artist or album column):
no artist is in two folds, nor in a fold's training and validation tracks. Without groups
(GTZAN) they are track-disjoint, dealt as before.

`fold_data` rebuilds one fold's splits from the record a fold's checkpoints keep
(`fold_source`), so evaluating a fold's workdir scores exactly its own test tracks.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections
import numpy as np

from gtzan_jax import arrays_io
from gtzan_jax import input_pipeline

Arrays = dict[str, np.ndarray]
KEYS = arrays_io.POOLED_KEYS


def pooled_segments(config: ml_collections.ConfigDict) -> tuple[Arrays, list[str]]:
  """Every segment of `config.dataset`'s three splits in one set of arrays, and the class names.

  Of the config's feature set (`config.features`: with 'musicnn', those of
  `gtzan_mel/<base>_musicnn`, as `input_pipeline.dataset_name` names them). With
  `config.augment.audio_copies` = K > 0, also K augmented copies of every clip
  (`copy` 1..K), made by the dataset builder as for training splits (copy k of a
  track is the same audio as in a `<base>_aug<K>` build) and kept in the data_dir as
  `gtzan_mel/<base>_aug<K>all_<hash>` (`<base>_musicnn_aug<K>all_<hash>`), so a rerun reads them.
  """
  splits, source = input_pipeline.load_datasets_with_source(config, augment_splits=input_pipeline.SPLITS)
  streamed = [s for s in input_pipeline.SPLITS if input_pipeline.is_streamed(splits[s])]
  if streamed:
    raise ValueError(f'crossval pools every segment of {source["name"]} in memory, but its {", ".join(streamed)} '
                     f'split(s) exceed config.memory_budget={config.get("memory_budget")!r}: raise it '
                     '(e.g. --config.memory_budget=16GB), or train on the dataset\'s own splits (gtzan_jax.main).')
  return ({k: np.concatenate([splits[s][k] for s in input_pipeline.SPLITS]) for k in KEYS},
          source['class_names'])


def select_copies(data: Arrays, copies: int) -> Arrays:
  """The originals and augmented copies 1..`copies` of `data` (which may hold more)."""
  copy = data.get('copy', np.zeros(len(data['label']), np.int32))
  available = int(copy.max(initial=0))
  if copies > available:
    raise ValueError(f'config.augment.audio_copies={copies}, but the data holds {available} augmented '
                     'copies per clip.')
  keep = copy <= copies
  return {k: v[keep] for k, v in data.items()} | {'copy': copy[keep]}


def assign_folds(tracks: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0,
                 groups: np.ndarray | None = None) -> dict[str, int]:
  """Track name -> fold in [0, folds), stratified by label.

  Within each label the tracks are shuffled by `seed` and dealt round-robin;
  the deal continues across labels, so fold sizes differ by at most one. With `groups`
  (per segment, '' for none) that name any group, whole groups are dealt instead
  (`splits.assign_groups`, equal shares): no group is in two folds.
  """
  names, first = np.unique(tracks, return_index=True)
  track_labels = labels[first]
  if groups is not None and any(groups):
    from tfds_gtzan.gtzan_mel import splits  # pylint: disable=g-import-not-at-top
    track_groups = groups[first]
    if len({g or f'track {t}' for t, g in zip(names, track_groups)}) < folds:
      raise ValueError(f'The data has fewer groups (artists, albums) than --folds={folds}.')
    fold_of = splits.assign_groups([(str(t), int(l), str(g)) for t, l, g in zip(names, track_labels, track_groups)],
                                   {fold: 1 / folds for fold in range(folds)}, seed=seed)
    return {track: int(fold) for track, fold in fold_of.items()}
  rng = np.random.default_rng(seed)
  fold_of, position = {}, 0
  for label in np.unique(track_labels):
    members = names[track_labels == label]
    if len(members) < folds:
      raise ValueError(f'Label {label} has {len(members)} tracks, fewer than --folds={folds}.')
    for name in members[rng.permutation(len(members))]:
      fold_of[str(name)] = position % folds
      position += 1
  return fold_of


def fold_splits(data: Arrays, fold_of: dict[str, int], fold: int, validation_fraction: float,
                seed: int = 0) -> dict[str, Arrays]:
  """train / validation / test arrays of `fold`, track-disjoint.

  The test set is fold `fold`; of the other tracks, `validation_fraction` of each label
  (at least one, never all) validate; the rest train. Where the data has groups, the
  validation tracks are whole groups (`splits.group_split`: at least one group of each label
  that has two, never all), so no group both trains and validates. Augmented copies only train.
  """
  track_fold = np.array([fold_of[str(t)] for t in data['track']])
  rest = sorted({str(t) for t, f in zip(data['track'], track_fold) if f != fold})
  rest_labels = {str(t): int(l) for t, l in zip(data['track'], data['label'])}
  groups = data.get('group')
  if groups is not None and any(groups):
    from tfds_gtzan.gtzan_mel import splits  # pylint: disable=g-import-not-at-top
    rest_groups = {str(t): str(g) for t, g in zip(data['track'], groups)}
    part = splits.group_split([(t, rest_labels[t], rest_groups[t]) for t in rest], seed=(seed, fold),
                              fractions={'validation': validation_fraction}, at_least_one_from=2)
    validation = {t for t, p in part.items() if p == 'validation'}
  else:
    rng = np.random.default_rng((seed, fold))
    validation = set()
    for label in sorted({rest_labels[t] for t in rest}):
      members = [t for t in rest if rest_labels[t] == label]
      count = max(1, int(round(validation_fraction * len(members)))) if validation_fraction > 0 else 0
      count = min(count, len(members) - 1)
      validation.update(members[i] for i in rng.permutation(len(members))[:count])
  in_test = track_fold == fold
  in_validation = np.array([str(t) in validation for t in data['track']])
  original = data['copy'] == 0 if 'copy' in data else np.ones(len(in_test), bool)
  masks = {'train': ~in_test & ~in_validation, 'validation': in_validation & original,
           'test': in_test & original}
  return {split: {k: v[mask] for k, v in data.items()} for split, mask in masks.items()}


def fold_source(config: ml_collections.ConfigDict, *, fold: int, folds: int, fold_seed: int,
                validation_fraction: float, arrays: str | None, class_names: list[str],
                pooled_by_caller: bool = False) -> dict[str, Any]:
  """The data record a fold's checkpoints keep: enough for `fold_data` to rebuild its splits.

  The pooled segments came from `arrays` (an .npz), from `config.dataset`, or, with
  `pooled_by_caller`, from arrays a script passed in (which `fold_data` cannot rebuild).
  The feature set is recorded where it is not 'mel' (records written before feature sets compare equal).
  """
  source = {'kind': 'crossval_fold', 'dataset': config.dataset, 'fold': fold, 'folds': folds,
            'fold_seed': fold_seed, 'validation_fraction': validation_fraction,
            'audio_copies': int(config.augment.get('audio_copies', 0)),
            'arrays': os.path.abspath(arrays) if arrays else None, 'pooled_by_caller': pooled_by_caller,
            'class_names': list(class_names)}
  features = input_pipeline.feature_set_name(config)
  if features != 'mel':
    source['features'] = features
  return source


def fold_data(config: ml_collections.ConfigDict, source: dict[str, Any]) -> dict[str, Arrays]:
  """The splits of the fold `source` records (originals only: augmented copies only ever train)."""
  if source.get('pooled_by_caller'):
    raise ValueError(f'fold {source["fold"]} was cross-validated on segments a script passed in, which no '
                     'file records; evaluate it with gtzan_jax.evaluation.evaluate_checkpoints on them.')
  if source['arrays']:
    if not os.path.exists(source['arrays']):
      raise FileNotFoundError(f'{source["arrays"]}: the arrays file this fold was trained on is gone.')
    data = arrays_io.load_pooled(source['arrays'])
  else:
    base = config.copy_and_resolve_references()
    with base.unlocked():
      base.augment.audio_copies = 0
    data, _ = pooled_segments(base)
  data = select_copies(data, 0)
  fold_of = assign_folds(data['track'], data['label'], source['folds'], source['fold_seed'], data.get('group'))
  return fold_splits(data, fold_of, source['fold'], source['validation_fraction'], source['fold_seed'])
