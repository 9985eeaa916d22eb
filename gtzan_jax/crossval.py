"""Stratified, track-disjoint k-fold cross-validation: honest accuracy from few clips.

  python -m gtzan_jax.crossval --config=configs/default.py --workdir=runs/cv \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini [--folds=5]

Every segment of `config.dataset` (all three splits pooled; built first if
needed) is regrouped by track. With `--config.augment.audio_copies=K`, the
dataset builder also makes K augmented copies of every clip, the same copies a
training split gets (built once into the data_dir as
`gtzan_mel/<base>_aug<K>all_<hash>`); a fold trains on the copies of its training
tracks only, and validates and tests on originals. `--arrays=FILE.npz` reads the
pooled segments (and copies) from a file written by `scripts/export_arrays.py
--pooled` instead, for a machine without TFDS or librosa. Tracks are dealt into
`--folds` folds, stratified by genre, with a fixed seed (`--fold_seed`); where the data has
groups (a collection's artist or album column), whole groups are dealt, so no group is in two
folds, nor in a fold's training and validation tracks. For fold
f the test set is fold f; of the remaining tracks, `--validation_fraction` of each genre (at least one
track) is the validation set, used only to pick the best checkpoint; the rest
is trained on. No track ever lands in two of a fold's sets, so no clip leaks. A fold's
checkpoints record their fold, so `gtzan_jax.evaluate --workdir=<workdir>/fold_<f>`
scores that fold's own test tracks.

Each fold trains in `<workdir>/fold_<f>/` with the trainer's own resumption (a
stopped run continues; a fold whose `fold.json` exists is not run again if it was made
with the same config and folds, and stops the run with one line naming what differs
otherwise), then both its
last and its best-by-validation checkpoint are evaluated on the fold's test
tracks, per segment and per track (mean of the segments' log-probabilities).
Written to the workdir:

  crossval.json   per fold and mean +- std (population std over folds) of segment and
                  track accuracy, for the last and the best checkpoint; summed confusions
  crossval.md     the same as tables
  crossval_confusion_{segment,track}.png   confusion summed over folds (last checkpoint)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import flags
from absl import logging
from ml_collections import config_flags

from gtzan_jax import arrays_io
from gtzan_jax import cli
from gtzan_jax import evaluation
from gtzan_jax import folds as folds_lib
from gtzan_jax import input_pipeline
from gtzan_jax import report
from gtzan_jax import tables
from gtzan_jax import train

FLAGS = flags.FLAGS
CHECKPOINTS = {'last': 'latest', 'best': 'best'}  # fold.json's names -> the checkpoint's

Arrays = dict[str, np.ndarray]


def summarize(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
  """Mean +- std over folds and summed confusions, per checkpoint kind and level."""
  summary = {}
  for kind in CHECKPOINTS:
    summary[kind] = {}
    for level in ('segment', 'track'):
      results = [f[kind][level] for f in per_fold]
      summary[kind][level] = {
          'accuracy': tables.mean_std([r['accuracy'] for r in results]),
          'macro_f1': tables.mean_std([r['macro_f1'] for r in results]),
          'confusion': np.sum([r['confusion'] for r in results], axis=0).tolist(),
      }
  return summary


def run_fold(config: ml_collections.ConfigDict, workdir: str, splits: dict[str, Arrays],
             source: dict[str, Any]) -> dict[str, Any]:
  """Trains (or resumes) one fold and evaluates its last and best checkpoints on its test split."""
  results = train.train_and_evaluate(config, workdir, splits, data_source=source)
  fold = {'tracks': {s: int(len(np.unique(splits[s]['track']))) for s in splits},
          'segments': {s: int(len(splits[s]['label'])) for s in splits},
          'train_seconds_this_run': results['train_seconds_this_run'],
          'train_examples_per_s': results['train_examples_per_s'],
          'device_kind': jax.devices()[0].device_kind, 'device_count': jax.device_count(),
          'config': results['config'], 'source': source}
  scores = evaluation.evaluate_checkpoints(workdir, splits['test'])
  return fold | {kind: scores[checkpoint] for kind, checkpoint in CHECKPOINTS.items()}


def _finished_fold(fold_dir: str, config: ml_collections.ConfigDict, source: dict[str, Any]) -> dict | None:
  """The fold's fold.json if it exists; ValueError if another config or fold assignment made it."""
  path = os.path.join(fold_dir, 'fold.json')
  if not os.path.exists(path):
    return None
  fold = report.read_json(path)
  if 'config' not in fold:
    raise ValueError(f'{path} predates fold.json recording its config, so it cannot be checked against '
                     'this one; move it away (or the whole workdir) to run the fold again.')
  changes = (train.config_changes(fold['config'], config)
             + input_pipeline.data_source_changes(fold.get('source'), source))
  if changes:
    raise ValueError(f'{path} was made by another cross-validation ({"; ".join(changes)}); use a new '
                     '--workdir, or move that fold away to rerun it.')
  return fold


def _markdown(summary: dict[str, Any], per_fold: list[dict[str, Any]], config: ml_collections.ConfigDict,
              num_tracks: int) -> str:
  copies = config.augment.get('audio_copies')
  lines = [f'# {len(per_fold)}-fold cross-validation of {config.model} on {config.dataset}', '',
           f'{num_tracks} tracks, stratified and track-disjoint (group-disjoint where the data has groups) '
           f'folds; {config.num_epochs} epochs per fold'
           f"{'; %d augmented copies of each training clip' % copies if copies else ''}. "
           'Mean ± std (over folds) of test accuracy.', '']
  rows = [[kind, tables.percent_mean_std(summary[kind]['segment']['accuracy']),
           tables.percent_mean_std(summary[kind]['track']['accuracy']),
           f"{100 * summary[kind]['track']['macro_f1']['mean']:.1f}"] for kind in CHECKPOINTS]
  lines.append(tables.markdown_table(['checkpoint', 'segment accuracy %', 'track accuracy %', 'track macro F1 %'],
                                     rows))
  fold_rows = [[i, f['tracks']['train'], f['tracks']['validation'], f['tracks']['test'],
                100 * f['last']['segment']['accuracy'], 100 * f['last']['track']['accuracy'],
                100 * f['best']['segment']['accuracy'], 100 * f['best']['track']['accuracy'], f['best']['step']]
               for i, f in enumerate(per_fold)]
  lines.append(tables.markdown_table(
      ['fold', 'train tracks', 'val tracks', 'test tracks', 'last seg %', 'last track %', 'best seg %',
       'best track %', 'best step'], fold_rows))
  return '\n'.join(lines)


def crossvalidate(config: ml_collections.ConfigDict, workdir: str, *, folds: int = 5, fold_seed: int = 0,
                  validation_fraction: float = 0.1, data: Arrays | None = None,
                  arrays: str | None = None, class_names: list[str] | None = None) -> dict[str, Any]:
  """Runs every fold (see the module docstring) and writes the reports; returns crossval.json's dict.

  `data`: the pooled segments (default: read from `arrays`, an .npz of `arrays_io.save_pooled`,
  else from config.dataset), with `class_names` (default: '0', '1', ... by label).
  """
  if folds < 2:
    raise ValueError(f'--folds must be at least 2, got {folds}.')
  if not 0 < validation_fraction < 1:
    raise ValueError(f'--validation_fraction must be in (0, 1), got {validation_fraction}: every fold '
                     'needs validation tracks to pick its best checkpoint.')
  train.check_config(config)
  os.makedirs(workdir, exist_ok=True)
  pooled_by_caller = data is not None
  if data is not None:
    class_names = class_names or input_pipeline.class_names_of_labels({'pooled': data})
  elif arrays:
    data = arrays_io.load_pooled(arrays)
    class_names = arrays_io.load_class_names(arrays) or input_pipeline.legacy_class_names()
  else:
    data, class_names = folds_lib.pooled_segments(config)
  data = folds_lib.select_copies(data, int(config.augment.get('audio_copies', 0)))
  original = data['copy'] == 0 if 'copy' in data else slice(None)
  groups = data['group'][original] if 'group' in data else None
  fold_of = folds_lib.assign_folds(data['track'][original], data['label'][original], folds, fold_seed, groups)
  per_fold = []
  for fold in range(folds):
    logging.info('Fold %d/%d', fold + 1, folds)
    splits = folds_lib.fold_splits(data, fold_of, fold, validation_fraction, fold_seed)
    if not len(splits['validation']['label']):
      raise ValueError(f'fold {fold} has no validation track: every label needs at least 2 tracks outside '
                       f'each fold (use fewer --folds).')
    source = folds_lib.fold_source(config, fold=fold, folds=folds, fold_seed=fold_seed,
                                   validation_fraction=validation_fraction, arrays=arrays,
                                   class_names=class_names, pooled_by_caller=pooled_by_caller)
    fold_dir = os.path.join(workdir, f'fold_{fold}')
    finished = _finished_fold(fold_dir, config, source)
    if finished is not None:  # finished earlier (maybe on another machine)
      per_fold.append(finished)
      logging.info('Fold %d/%d: done earlier (%s/fold.json).', fold + 1, folds, fold_dir)
      continue
    per_fold.append(run_fold(config, fold_dir, splits, source))
    if jax.process_index() == 0:  # each fold's result as soon as it exists (a cut-off run keeps them)
      report.write_json(os.path.join(fold_dir, 'fold.json'), per_fold[-1])
    last = per_fold[-1]['last']
    logging.info('Fold %d/%d: test accuracy %.3f per segment, %.3f per track (last checkpoint)',
                 fold + 1, folds, last['segment']['accuracy'], last['track']['accuracy'])
  summary = summarize(per_fold)
  result = {'folds': folds, 'fold_seed': fold_seed, 'validation_fraction': validation_fraction,
            'class_names': list(class_names), 'num_tracks': len(fold_of), 'num_segments': int(len(data['label'])),
            'platform': jax.devices()[0].platform, 'device_kind': jax.devices()[0].device_kind,
            'config': config.to_dict(), 'summary': summary, 'per_fold': per_fold}
  if jax.process_index() == 0:
    report.write_json(os.path.join(workdir, 'crossval.json'), result)
    report.write_text(os.path.join(workdir, 'crossval.md'), _markdown(summary, per_fold, config, len(fold_of)))
    for level in ('segment', 'track'):
      report.plot_confusion(summary['last'][level]['confusion'], f'{level}s, {folds} folds summed',
                            os.path.join(workdir, f'crossval_confusion_{level}.png'), class_names)
  return result


def main(argv: Sequence[str]) -> None:
  cli.check_flag(len(argv) == 1, f'unexpected arguments: {" ".join(argv[1:])}')
  result = cli.run_command(lambda: crossvalidate(
      FLAGS.config, FLAGS.workdir, folds=FLAGS.folds, fold_seed=FLAGS.fold_seed,
      validation_fraction=FLAGS.validation_fraction, arrays=FLAGS.arrays), FLAGS.config)
  if result is None:
    return  # stopped by a signal; the finished folds are kept
  for kind in CHECKPOINTS:
    s = result['summary'][kind]
    print(f"{kind} checkpoint: segment accuracy {tables.percent_mean_std(s['segment']['accuracy'])} %, "
          f"track accuracy {tables.percent_mean_std(s['track']['accuracy'])} % over {result['folds']} folds")
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
  cli.run(main)
