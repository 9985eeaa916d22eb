"""Trains one run per value of one config field and compares the runs.

  python -m gtzan_jax.sweep --config=configs/synthetic.py --workdir=runs/lr \
      --sweep=learning_rate=1e-4,3e-4,1e-3,3e-3 [--config.num_epochs=10 ...]

Each value trains in `<workdir>/<key>=<value>/` with the trainer's own
resumption, so a stopped sweep continues where it stopped; a run whose
results.json already holds the same config is not trained again. Any number,
string or bool field can be swept, nested ones too (`--sweep=vgg.dropout_rate=0,0.3`),
except the dataset fields. A value that changes the data a run reads (an audio
augmentation key such as `augment.audio_copies`) gets its own data, built if needed;
the other values share one copy. Then writes in the workdir:

  sweep.csv, sweep.md   per value: final validation and test accuracy (segments and
                        tracks) and loss, best
                        validation accuracy, training examples/s and seconds (of the
                        run's last training call)
  sweep.png             validation accuracy and loss per epoch, one line per value,
                        from each run's history.jsonl
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
from absl import flags
from absl import logging
from ml_collections import config_flags

from gtzan_jax import cli
from gtzan_jax import input_pipeline
from gtzan_jax import metric_writers
from gtzan_jax import report
from gtzan_jax import tables
from gtzan_jax import train

FLAGS = flags.FLAGS
DATA_FIELDS = ('dataset', 'data_dir', 'manual_dir')

Curves = dict[str, list[tuple[int, float]]]  # metric -> [(epoch, value), ...]


def parse_sweep(spec: str) -> tuple[str, list[str]]:
  """'learning_rate=1e-4,1e-3' -> ('learning_rate', ['1e-4', '1e-3'])."""
  key, _, values = spec.partition('=')
  texts = [v.strip() for v in values.split(',') if v.strip()]
  if not key or not texts:
    raise ValueError(f'--sweep must look like key=value1,value2,..., got {spec!r}.')
  return key.strip(), texts


def with_value(config: ml_collections.ConfigDict, key: str, text: str) -> ml_collections.ConfigDict:
  """A copy of `config` with the (possibly dotted) field `key` set to `text`, parsed as its type."""
  config = config.copy_and_resolve_references()
  *parents, leaf = key.split('.')
  node = config
  try:
    for parent in parents:
      node = node[parent]
    current = node[leaf]
  except (KeyError, TypeError):
    raise ValueError(f'The config has no field {key!r} to sweep.') from None
  if key in DATA_FIELDS:
    raise ValueError(f'Sweep one dataset at a time: {key!r} cannot be swept.')
  if not isinstance(current, (bool, int, float, str)):
    raise ValueError(f'{key} is {current!r}; only number, string and bool fields can be swept.')
  try:
    value = {'true': True, 'false': False}[text.lower()] if isinstance(current, bool) else type(current)(text)
  except (KeyError, ValueError):
    raise ValueError(f'Cannot set {key}={text!r} ({type(current).__name__} expected).') from None
  node[leaf] = value
  return config


def validation_curves(run_dir: str) -> Curves:
  """{'validation accuracy' | 'validation loss': [(epoch, value), ...]} from the run's history.jsonl."""
  if not os.path.exists(os.path.join(run_dir, 'history.jsonl')):  # diverged within its first epoch
    return {'validation accuracy': [], 'validation loss': []}
  history = metric_writers.read_history(run_dir)
  return {f'validation {name}': [(record['epoch'], record[f'validation_{name}']) for record in history]
          for name in ('accuracy', 'loss')}


def _finished_results(run_dir: str, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
  """The run's results.json if it was written for exactly `config`."""
  path = os.path.join(run_dir, 'results.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  return results if results['config'] == json.loads(json.dumps(config.to_dict())) else None


def run_sweep(config: ml_collections.ConfigDict, workdir: str, key: str, texts: Sequence[str], *,
              datasets: dict[str, dict[str, Any]] | None = None,
              devices: list[jax.Device] | None = None) -> list[dict[str, Any]]:
  """Trains (or resumes) one run per value, writes sweep.csv / .md / .png, returns the csv rows.

  `datasets`: as for `train.train_and_evaluate`, for every value (only where the key
  cannot change the data); None: each run reads the data its config names
  (`input_pipeline.dataset_name`), loaded once for all values that share it.
  """
  configs = [with_value(config, key, text) for text in texts]  # every value is checked first
  for run_config in configs:
    train.check_config(run_config)
  if datasets is not None and len({input_pipeline.dataset_name(c) for c in configs}) > 1:
    raise ValueError(f'--sweep={key}=... changes the data each run reads; let each run read its own '
                     '(pass no datasets).')
  rows, curves, loaded = [], {}, (None, datasets, None)
  for text, run_config in zip(texts, configs):
    name = f'{key}={text}'
    run_dir = os.path.join(workdir, name)
    results = _finished_results(run_dir, run_config)
    if results is None:
      logging.info('Sweep: training %s in %s.', name, run_dir)
      if datasets is None and loaded[0] != input_pipeline.dataset_name(run_config):
        loaded = (input_pipeline.dataset_name(run_config), *input_pipeline.load_datasets_with_source(run_config))
      try:
        results = train.train_and_evaluate(run_config, run_dir, loaded[1], devices, data_source=loaded[2])
      except train.NonFiniteLossError as e:  # e.g. too high a learning rate: keep sweeping
        logging.warning('Sweep: %s diverged: %s', name, e)
    curves[name] = validation_curves(run_dir)
    best_epoch, best = max(curves[name]['validation accuracy'], key=lambda point: point[1],
                           default=(None, None))
    rows.append({key: text, 'status': 'diverged' if results is None else 'done',
                 **_summary(results), 'best_validation_accuracy': best, 'best_epoch': best_epoch,
                 'run': name})
  _write_outputs(workdir, key, rows, curves)
  return rows


def _summary(results: dict[str, Any] | None) -> dict[str, Any]:
  """The csv columns taken from results.json; all None for a run that diverged."""
  if results is None:
    return dict.fromkeys(('validation_accuracy', 'validation_loss', 'test_accuracy', 'test_track_accuracy',
                          'test_loss', 'examples_per_s', 'train_seconds', 'epochs'))
  return {'validation_accuracy': results['validation']['accuracy'],
          'validation_loss': results['validation']['loss'],
          'test_accuracy': results['test']['accuracy'],
          'test_track_accuracy': results['test'].get('track_accuracy'),
          'test_loss': results['test']['loss'],
          'examples_per_s': results['train_examples_per_s'],
          'train_seconds': results['train_seconds_this_run'],
          'epochs': results['epochs']}


def _write_outputs(workdir: str, key: str, rows: list[dict[str, Any]], curves: dict[str, Curves]) -> None:
  table = io.StringIO()
  writer = csv.DictWriter(table, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  report.write_text(os.path.join(workdir, 'sweep.csv'), table.getvalue())
  done = [row for row in rows if row['status'] == 'done']
  text = f'# Sweep over {key}\n\n'
  if done:
    best = max(done, key=lambda row: row['validation_accuracy'])
    text += (f'Best final validation accuracy: {key}={best[key]} ({best["validation_accuracy"]:.4f}; '
             f'test {best["test_accuracy"]:.4f}, tracks {best["test_track_accuracy"]:.4f}).\n\n')
  text += tables.markdown_table(list(rows[0]), [list(row.values()) for row in rows])
  text += '\n![validation accuracy and loss per epoch](sweep.png)\n'
  report.write_text(os.path.join(workdir, 'sweep.md'), text)
  report.plot_curves(curves, f'sweep over {key}', os.path.join(workdir, 'sweep.png'))


def main(argv: Sequence[str]) -> None:
  cli.check_flag(len(argv) == 1, f'unexpected arguments: {" ".join(argv[1:])}')
  rows = cli.run_command(lambda: run_sweep(FLAGS.config, FLAGS.workdir, *parse_sweep(FLAGS.sweep)), FLAGS.config)
  if rows is None:
    return  # stopped by a signal; the finished runs are kept
  print(tables.markdown_table(list(rows[0]), [list(row.values()) for row in rows]))
  print(f'Sweep: {FLAGS.workdir}/sweep.md, sweep.csv, sweep.png', flush=True)


if __name__ == '__main__':
  # Defined here rather than at import: see gtzan_jax/evaluate.py.
  flags.DEFINE_string('workdir', None, 'Sweep directory: one run directory per value.', required=True)
  flags.DEFINE_string('sweep', None, 'key=value1,value2,... e.g. learning_rate=1e-4,1e-3.', required=True)
  config_flags.DEFINE_config_file('config', None, 'Training configuration file.', lock_config=True)
  flags.mark_flag_as_required('config')
  cli.run(main)
