"""Cross-validation's data: every segment of a dataset pooled, dealt into track-disjoint folds.

  data = pooled_segments(config, cache_dir)            # or arrays_io.load_pooled(path)
  fold_of = assign_folds(tracks, labels, folds=5, seed=0)
  splits = fold_splits(data, fold_of, fold, validation_fraction=0.1, seed=0)

`fold_data` rebuilds one fold's splits from the record a fold's checkpoints keep
(`fold_source`), so evaluating a fold's workdir scores exactly its own test tracks.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from gtzan_jax import arrays_io
from gtzan_jax import input_pipeline

Arrays = dict[str, np.ndarray]
KEYS = arrays_io.POOLED_KEYS


def pooled_segments(config: ml_collections.ConfigDict, cache_dir: str | None = None) -> Arrays:
  """Every segment of `config.dataset`'s three splits in one set of arrays (`copy` 0).

  With `config.augment.audio_copies` = K > 0, also K augmented copies of every
  clip of `config.manual_dir` (`copy` 1..K), read from or written to
  `<cache_dir>/audio_copies_<digest>.npz`, the digest naming the dataset and
  every augmentation parameter.
  """
  base = config.copy_and_resolve_references()
  copies = int(base.augment.get('audio_copies', 0))
  with base.unlocked():
    base.augment.audio_copies = 0
  splits = input_pipeline.load_datasets(base)
  data = {k: np.concatenate([splits[s][k] for s in input_pipeline.SPLITS]) for k in KEYS if k != 'copy'}
  data['copy'] = np.zeros(len(data['label']), np.int32)
  if not copies:
    return data
  from tfds_gtzan import augment as audio_augment  # pylint: disable=g-import-not-at-top  (needs librosa)
  recipe = audio_augment.metadata(copies, int(config.augment.get('seed', 0)), _augment_params(config))
  digest = hashlib.sha256(json.dumps([config.dataset, recipe], sort_keys=True).encode()).hexdigest()[:10]
  cache = cache_dir and os.path.join(cache_dir, f'audio_copies_{digest}.npz')
  tracks = set(np.unique(data['track']).tolist())
  augmented = None
  if cache and os.path.exists(cache):
    augmented = arrays_io.load_pooled(cache)
    if set(np.unique(augmented['track']).tolist()) != tracks:  # another manual_dir: make them again
      augmented = None
  if augmented is None:
    augmented = audio_copies(config, tracks=tracks)
    if cache and jax.process_index() == 0:
      arrays_io.save_pooled(cache, augmented)
  return {k: np.concatenate([data[k], augmented[k]]) for k in KEYS}


def audio_copies(config: ml_collections.ConfigDict, tracks: set[str]) -> Arrays:
  """`config.augment.audio_copies` augmented copies of the clips of `tracks`, as the builder makes them.

  Uses the builder's own augmentation (`featurize_augmented`, parameters and seed
  from `config.augment`), so copy k of a track is the same audio in a fold's
  training set as in the built `<base>_aug<K>` dataset.
  """
  # Imported here: only this path needs librosa.
  from tfds_gtzan.gtzan_mel import featurize, sources  # pylint: disable=g-import-not-at-top
  if not config.manual_dir:
    raise ValueError('config.augment.audio_copies needs config.manual_dir (the GTZAN audio).')
  params = _augment_params(config)
  clips = [c for c in sources.find_clips(config.manual_dir).clips if c.track in tracks]
  missing = tracks - {c.track for c in clips}
  if missing:
    raise ValueError(f'manual_dir {config.manual_dir} lacks {len(missing)} tracks of {config.dataset}, '
                     f'e.g. {sorted(missing)[0]}.')
  features = featurize.featurize_augmented(clips, copies=int(config.augment.audio_copies),
                                           seed=int(config.augment.get('seed', 0)), params=params)
  rows = [(f.clip, f.copy, i, f.mel[i]) for clip_copies in features for f in clip_copies
          for i in range(len(f.mel))]
  return {'mel': np.stack([mel for _, _, _, mel in rows]),
          'label': np.array([clip.label for clip, _, _, _ in rows], np.int32),
          'track': np.array([clip.track for clip, _, _, _ in rows]),
          'copy': np.array([copy for _, copy, _, _ in rows], np.int32)}


def _augment_params(config: ml_collections.ConfigDict):
  """The builder's `AugmentParams` from `config.augment`."""
  from tfds_gtzan import augment as audio_augment  # pylint: disable=g-import-not-at-top  (needs librosa)
  fields = audio_augment.AugmentParams.__dataclass_fields__
  return audio_augment.AugmentParams(**{f: config.augment[f] for f in fields if f in config.augment})


def select_copies(data: Arrays, copies: int) -> Arrays:
  """The originals and augmented copies 1..`copies` of `data` (which may hold more)."""
  copy = data.get('copy', np.zeros(len(data['label']), np.int32))
  available = int(copy.max(initial=0))
  if copies > available:
    raise ValueError(f'config.augment.audio_copies={copies}, but the data holds {available} augmented '
                     'copies per clip.')
  keep = copy <= copies
  return {k: v[keep] for k, v in data.items()} | {'copy': copy[keep]}


def assign_folds(tracks: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0) -> dict[str, int]:
  """Track name -> fold in [0, folds), stratified by label.

  Within each label the tracks are shuffled by `seed` and dealt round-robin;
  the deal continues across labels, so fold sizes differ by at most one.
  """
  names, first = np.unique(tracks, return_index=True)
  track_labels = labels[first]
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
  (at least one, never all) validate; the rest train. Augmented copies only train.
  """
  track_fold = np.array([fold_of[str(t)] for t in data['track']])
  rest = sorted({str(t) for t, f in zip(data['track'], track_fold) if f != fold})
  rest_labels = {str(t): int(l) for t, l in zip(data['track'], data['label'])}
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
                validation_fraction: float, arrays: str | None, pooled_by_caller: bool = False) -> dict[str, Any]:
  """The data record a fold's checkpoints keep: enough for `fold_data` to rebuild its splits.

  The pooled segments came from `arrays` (an .npz), from `config.dataset`, or, with
  `pooled_by_caller`, from arrays a script passed in (which `fold_data` cannot rebuild).
  """
  from tfds_gtzan.gtzan_mel import sources  # pylint: disable=g-import-not-at-top
  return {'kind': 'crossval_fold', 'dataset': config.dataset, 'fold': fold, 'folds': folds,
          'fold_seed': fold_seed, 'validation_fraction': validation_fraction,
          'audio_copies': int(config.augment.get('audio_copies', 0)),
          'arrays': os.path.abspath(arrays) if arrays else None, 'pooled_by_caller': pooled_by_caller,
          'class_names': list(sources.GENRES)}


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
    data = pooled_segments(base)
  data = select_copies(data, 0)
  fold_of = assign_folds(data['track'], data['label'], source['folds'], source['fold_seed'])
  return fold_splits(data, fold_of, source['fold'], source['validation_fraction'], source['fold_seed'])
