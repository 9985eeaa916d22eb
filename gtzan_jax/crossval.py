"""Stratified, track-disjoint k-fold cross-validation: honest accuracy from few clips.

  python -m gtzan_jax.crossval --config=configs/default.py --workdir=runs/cv \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini [--folds=5]

Every segment of `config.dataset` (all three splits pooled; build it first if
needed) is regrouped by track. With `--config.augment.audio_copies=K`, K
augmented copies of every clip in `config.manual_dir` are made as the builder
makes them (cached in the workdir); a fold trains on the copies of its training
tracks only, and validates and tests on originals. `--arrays=FILE.npz` reads the
pooled segments (and copies) from a file written by `scripts/export_arrays.py
--pooled` instead, for a machine without TFDS or librosa. Tracks are dealt into
`--folds` folds, stratified by genre, with a fixed seed (`--fold_seed`). For fold
f the test set is fold f; of the remaining tracks, `--validation_fraction` of each genre (at least one
track) is the validation set, used only to pick the best checkpoint; the rest
is trained on. No track ever lands in two of a fold's sets, so no clip leaks.

Each fold trains in `<workdir>/fold_<f>/` with the trainer's own resumption (a
stopped run continues; a fold whose `fold.json` exists is not run again), then both its
last and its best-by-validation checkpoint are evaluated on the fold's test
tracks, per segment and per track (mean of the segments' log-probabilities).
Written to the workdir:

  crossval.json   per fold and mean +- std (population std over folds) of segment and
                  track accuracy, for the last and the best checkpoint; summed confusions
  crossval.md     the same as tables
  crossval_confusion_{segment,track}.png   confusion summed over folds (last checkpoint)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gtzan_jax import evaluate
from gtzan_jax import input_pipeline
from gtzan_jax import report
from gtzan_jax import train

FLAGS = flags.FLAGS
CHECKPOINTS = ('last', 'best')

Arrays = dict[str, np.ndarray]


KEYS = ('mel', 'label', 'track', 'copy')


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
    with np.load(cache) as f:
      augmented = {k: f[k] for k in KEYS}
    if set(np.unique(augmented['track']).tolist()) != tracks:  # another manual_dir: make them again
      augmented = None
  if augmented is None:
    augmented = audio_copies(config, tracks=tracks)
    if cache and jax.process_index() == 0:
      np.savez(cache + '.tmp.npz', **augmented)
      os.replace(cache + '.tmp.npz', cache)
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


def save_arrays(path: str, data: Arrays, quantize: bool = False) -> None:
  """Writes pooled segments as .npz; `quantize` stores mel as uint8 (scale and offset beside it)."""
  arrays = dict(data)
  if quantize:
    mel = data['mel'].astype(np.float32)
    low, high = float(mel.min()), float(mel.max())
    scale = (high - low) / 255 or 1.0
    arrays['mel'] = np.round((mel - low) / scale).astype(np.uint8)
    arrays['mel_offset'], arrays['mel_scale'] = np.float32(low), np.float32(scale)
  np.savez(path, **arrays)


def load_arrays(path: str) -> Arrays:
  """Reads what `save_arrays` wrote (mel as float16)."""
  with np.load(path) as f:
    data = {k: f[k] for k in f.files if k in KEYS}
    if 'mel_scale' in f.files:
      data['mel'] = (data['mel'] * f['mel_scale'] + f['mel_offset']).astype(np.float16)
  missing = set(KEYS) - set(data) - {'copy'}
  if missing:
    raise ValueError(f'{path} lacks the arrays {sorted(missing)}.')
  data.setdefault('copy', np.zeros(len(data['label']), np.int32))
  return data


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
  """train / validation / test arrays of `fold`, track-disjoint (see the module docstring)."""
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


def _write_json(path: str, value: Any) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2)
  os.replace(path + '.tmp', path)


def _mean_std(values: Sequence[float]) -> dict[str, float]:
  return {'mean': float(np.mean(values)), 'std': float(np.std(values))}


def summarize(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
  """Mean +- std over folds and summed confusions, per checkpoint kind and level."""
  summary = {}
  for kind in CHECKPOINTS:
    summary[kind] = {}
    for level in ('segment', 'track'):
      results = [f[kind][level] for f in per_fold]
      summary[kind][level] = {
          'accuracy': _mean_std([r['accuracy'] for r in results]),
          'macro_f1': _mean_std([r['macro_f1'] for r in results]),
          'confusion': np.sum([r['confusion'] for r in results], axis=0).tolist(),
      }
  return summary


def run_fold(config: ml_collections.ConfigDict, workdir: str, splits: dict[str, Arrays]) -> dict[str, Any]:
  """Trains (or resumes) one fold and evaluates its last and best checkpoints on its test split."""
  results = train.train_and_evaluate(config, workdir, splits)
  fold = {'tracks': {s: int(len(np.unique(splits[s]['track']))) for s in splits},
          'segments': {s: int(len(splits[s]['label'])) for s in splits},
          'train_seconds_this_run': results['train_seconds_this_run'],
          'train_examples_per_s': results['train_examples_per_s'],
          'device_kind': jax.devices()[0].device_kind, 'device_count': jax.device_count()}
  for kind in CHECKPOINTS:
    trained = evaluate.load_trained(workdir, 'latest' if kind == 'last' else 'best')
    result = evaluate.evaluate_split(trained, splits['test'])
    result['step'] = trained.step
    fold[kind] = result
  return fold


def _markdown(summary: dict[str, Any], per_fold: list[dict[str, Any]], config: ml_collections.ConfigDict,
              num_tracks: int) -> str:
  lines = [f'# {len(per_fold)}-fold cross-validation of {config.model} on {config.dataset}', '',
           f'{num_tracks} tracks, stratified and track-disjoint folds; {config.num_epochs} epochs per fold'
           f"{'; %d augmented copies of each training clip' % config.augment.audio_copies if config.augment.get('audio_copies') else ''}. "
           
           'Mean +- std (over folds) of test accuracy.', '']
  rows = []
  for kind in CHECKPOINTS:
    s = summary[kind]
    rows.append([kind, f"{100 * s['segment']['accuracy']['mean']:.1f} +- {100 * s['segment']['accuracy']['std']:.1f}",
                 f"{100 * s['track']['accuracy']['mean']:.1f} +- {100 * s['track']['accuracy']['std']:.1f}",
                 f"{100 * s['track']['macro_f1']['mean']:.1f}"])
  lines.append(report.markdown_table(['checkpoint', 'segment accuracy %', 'track accuracy %', 'track macro F1 %'],
                                     rows))
  fold_rows = [[i, f['tracks']['train'], f['tracks']['validation'], f['tracks']['test'],
                100 * f['last']['segment']['accuracy'], 100 * f['last']['track']['accuracy'],
                100 * f['best']['segment']['accuracy'], 100 * f['best']['track']['accuracy'], f['best']['step']]
               for i, f in enumerate(per_fold)]
  lines.append(report.markdown_table(
      ['fold', 'train tracks', 'val tracks', 'test tracks', 'last seg %', 'last track %', 'best seg %',
       'best track %', 'best step'], fold_rows))
  return '\n'.join(lines)


def crossvalidate(config: ml_collections.ConfigDict, workdir: str, *, folds: int = 5, fold_seed: int = 0,
                  validation_fraction: float = 0.1, data: Arrays | None = None) -> dict[str, Any]:
  """Runs every fold (see the module docstring) and writes the reports; returns crossval.json's dict."""
  if folds < 2:
    raise ValueError(f'--folds must be at least 2, got {folds}.')
  os.makedirs(workdir, exist_ok=True)
  data = pooled_segments(config, cache_dir=workdir) if data is None else data
  data = select_copies(data, int(config.augment.get('audio_copies', 0)))
  original = data['copy'] == 0 if 'copy' in data else slice(None)
  fold_of = assign_folds(data['track'][original], data['label'][original], folds, fold_seed)
  per_fold = []
  for fold in range(folds):
    logging.info('Fold %d/%d', fold + 1, folds)
    splits = fold_splits(data, fold_of, fold, validation_fraction, fold_seed)
    fold_dir = os.path.join(workdir, f'fold_{fold}')
    if os.path.exists(os.path.join(fold_dir, 'fold.json')):  # finished earlier (maybe on another machine)
      with open(os.path.join(fold_dir, 'fold.json')) as f:
        per_fold.append(json.load(f))
      logging.info('Fold %d/%d: done earlier (%s/fold.json).', fold + 1, folds, fold_dir)
      continue
    per_fold.append(run_fold(config, fold_dir, splits))
    if jax.process_index() == 0:  # each fold's result as soon as it exists (a cut-off run keeps them)
      _write_json(os.path.join(fold_dir, 'fold.json'), per_fold[-1])
    last = per_fold[-1]['last']
    logging.info('Fold %d/%d: test accuracy %.3f per segment, %.3f per track (last checkpoint)',
                 fold + 1, folds, last['segment']['accuracy'], last['track']['accuracy'])
  summary = summarize(per_fold)
  result = {'folds': folds, 'fold_seed': fold_seed, 'validation_fraction': validation_fraction,
            'num_tracks': len(fold_of), 'num_segments': int(len(data['label'])),
            'platform': jax.devices()[0].platform, 'device_kind': jax.devices()[0].device_kind,
            'config': config.to_dict(), 'summary': summary, 'per_fold': per_fold}
  if jax.process_index() == 0:
    _write_json(os.path.join(workdir, 'crossval.json'), result)
    with open(os.path.join(workdir, 'crossval.md'), 'w') as f:
      f.write(_markdown(summary, per_fold, config, len(fold_of)))
    for level in ('segment', 'track'):
      report.plot_confusion(summary['last'][level]['confusion'], f'{level}s, {folds} folds summed',
                            os.path.join(workdir, f'crossval_confusion_{level}.png'))
  return result


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  result = train.run_command(lambda: crossvalidate(
      FLAGS.config, FLAGS.workdir, folds=FLAGS.folds, fold_seed=FLAGS.fold_seed,
      validation_fraction=FLAGS.validation_fraction,
      data=load_arrays(FLAGS.arrays) if FLAGS.arrays else None), FLAGS.config)
  if result is None:
    return  # stopped by a signal; the finished folds are kept
  for kind in CHECKPOINTS:
    s = result['summary'][kind]
    print(f"{kind} checkpoint: segment accuracy {100 * s['segment']['accuracy']['mean']:.1f} +- "
          f"{100 * s['segment']['accuracy']['std']:.1f} %, track accuracy "
          f"{100 * s['track']['accuracy']['mean']:.1f} +- {100 * s['track']['accuracy']['std']:.1f} % "
          f"over {result['folds']} folds")
  print(f'Report: {FLAGS.workdir}/crossval.md, crossval.json, crossval_confusion_*.png', flush=True)


if __name__ == '__main__':
  # Defined here rather than at import: see gtzan_jax/evaluate.py.
  flags.DEFINE_string('workdir', None, 'Cross-validation directory: one run directory per fold.', required=True)
  flags.DEFINE_integer('folds', 5, 'Number of folds.')
  flags.DEFINE_integer('fold_seed', 0, 'Seed of the fold assignment and of the validation tracks.')
  flags.DEFINE_float('validation_fraction', 0.1,
                     'Share of each genre\'s training tracks held out to pick the best checkpoint (min. 1).')
  flags.DEFINE_string('arrays', None, 'Read the pooled segments from this .npz (scripts/export_arrays.py '
                      '--pooled) instead of the TFDS dataset.')
  config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
  flags.mark_flag_as_required('config')
  app.run(main)
