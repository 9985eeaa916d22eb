"""The one evaluation path: segment log-probabilities on the devices, metrics on the host.

The trainer's per-epoch validation, its final test, `evaluate`, `crossval`, `sweep`
and the scripts all score a split the same way:

  evaluator = Evaluator(par, batch_size)           # or Trained.log_probs for a restored model
  scores = evaluator.evaluate(state, split)        # {'segment': {...}, 'track': {...}}
  summary(scores)                                  # the handful of numbers results.json keeps

A track is classified by the argmax of the mean of its segments' log-probabilities.
A restored model knows where its data came from (`Trained.data_source`, written by the
trainer into every checkpoint): `load_data` reads exactly that data or refuses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from gtzan_jax import checkpointing
from gtzan_jax import input_pipeline
from gtzan_jax import models
from gtzan_jax import report
from gtzan_jax.parallel import DataParallel
from tfds_gtzan import data as gtzan_data

Arrays = dict[str, np.ndarray]
CHECKPOINTS = ('latest', 'best')


def log_probs_fn(state, mel: jax.Array) -> jax.Array:
  """Log-probabilities [B, classes] of a batch of segments, BatchNorm in inference mode."""
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, mel, train=False)
  return jax.nn.log_softmax(logits)


class Evaluator:
  """Computes segment log-probabilities over `par`'s devices in padded batches of `batch_size`.

  `fn(state, mel)` -> per-row outputs: `log_probs_fn` unless told (the transfer models'
  embeddings use it too).
  """

  def __init__(self, par: DataParallel, batch_size: int, fn=log_probs_fn):
    self.par, self.batch_size = par, batch_size
    self._fn = par.compile(lambda state, batch: fn(state, batch['mel']), donate_state=False,
                           batch_outputs=True)
    self._process = (jax.process_index(), jax.process_count()) if par.spans_processes else (0, 1)

  def log_probs(self, state, mel) -> np.ndarray:
    """[N, classes] float32 for `mel` [N, mels, frames] or a streamed split (every process passes, and gets, all N)."""
    return self.apply(state, mel)

  def apply(self, state, mel) -> np.ndarray:
    """`fn`'s rows for all of `mel` [N, ...] (or a streamed split's), in order (every process passes, gets, all N)."""
    index, count = self._process
    batches = gtzan_data.iterate_batches(mel if input_pipeline.is_streamed(mel) else {'mel': mel},
                                         self.batch_size, shuffle=False, drop_remainder=False,
                                         process_index=index, process_count=count)
    if input_pipeline.is_streamed(mel):
      batches = gtzan_data.prefetch(batches)
    rows = [self.par.gather_rows(self._fn(state, self.par.put_batch({'mel': batch['mel']}))) for batch in batches]
    return np.concatenate(rows)[:len(mel)] if rows else np.zeros((0, 0), np.float32)

  def evaluate(self, state, data, class_names: Sequence[str]) -> dict[str, Any]:
    """`scores` of a split (arrays, or a streamed split)."""
    return scores(self.log_probs(state, segments(data)), data, class_names)


def segments(data):
  """What `Evaluator.log_probs` takes of a split: its 'mel', or the streamed split itself."""
  return data if input_pipeline.is_streamed(data) else data['mel']


def scores(log_probs: np.ndarray, data: Arrays, class_names: Sequence[str]) -> dict[str, Any]:
  """Segment- and track-level metrics (`report.classification_metrics`, plus the segment loss)."""
  labels = data['label']
  tracks = data['track'] if 'track' in data else np.arange(len(labels)).astype(str)
  segment = report.classification_metrics(labels, log_probs.argmax(-1), class_names)
  segment['loss'] = float(-log_probs[np.arange(len(labels)), labels].mean())
  _, track_log_probs, track_labels = report.aggregate_tracks(log_probs, labels, tracks)
  return {'segment': segment,
          'track': report.classification_metrics(track_labels, track_log_probs.argmax(-1), class_names)}


def summary(result: dict[str, Any]) -> dict[str, float]:
  """What results.json and the logs keep of `scores`: segment accuracy and loss, track accuracy."""
  return {'accuracy': result['segment']['accuracy'], 'loss': result['segment']['loss'],
          'num_examples': result['segment']['count'], 'track_accuracy': result['track']['accuracy'],
          'track_macro_f1': result['track']['macro_f1'], 'num_tracks': result['track']['count']}


@dataclasses.dataclass(frozen=True)
class Trained:
  """A model restored from a workdir with the config it was trained with and its data's source."""

  config: ml_collections.ConfigDict
  state: Any
  step: int
  epoch: float
  data_source: dict[str, Any] | None = None
  _evaluators: dict[int, Evaluator] = dataclasses.field(default_factory=dict, compare=False, repr=False)

  @property
  def class_names(self) -> list[str]:
    """The classes of the data it was trained on (checkpoints from before they were recorded: GTZAN's)."""
    return list((self.data_source or {}).get('class_names') or input_pipeline.legacy_class_names())

  def log_probs(self, mel: np.ndarray, batch_size: int = 0) -> np.ndarray:
    """Log-probabilities [N, classes] of segments `mel` [N, mels, frames] on this process's first device.

    `batch_size`: 0 means the config's evaluation batch size.
    """
    batch_size = batch_size or self.config.eval_batch_size or self.config.batch_size
    needs = tuple(input_pipeline.input_shape(self.config))
    if not input_pipeline.is_streamed(mel) and tuple(mel.shape[1:]) != needs:
      raise ValueError(f'This checkpoint needs {self.config.get("features", "mel")!r} features shaped '
                       f'{list(needs)}; the segments given are {list(mel.shape[1:])}, another feature set.')
    if batch_size not in self._evaluators:
      self._evaluators[batch_size] = Evaluator(DataParallel('jit', jax.local_devices()[:1]), batch_size)
    return self._evaluators[batch_size].log_probs(self.state, mel)

  def evaluate(self, data) -> dict[str, Any]:
    return scores(self.log_probs(segments(data)), data, self.class_names)


def load_trained(workdir: str, checkpoint: str = 'latest') -> Trained:
  """Restores `workdir`'s latest checkpoint, or its best by validation accuracy ('best')."""
  from gtzan_jax import train  # pylint: disable=g-import-not-at-top  (train imports this module)
  if checkpoint not in CHECKPOINTS:
    raise ValueError(f"checkpoint must be 'latest' or 'best', got {checkpoint!r}.")
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'{workdir} holds no checkpoints; train there first (python -m gtzan_jax.main).')
  ckpt = checkpointing.Checkpointer(directory, use_async=False)
  try:
    step = {'latest': ckpt.latest_step, 'best': ckpt.best_step}[checkpoint]()
    if step is None:
      raise FileNotFoundError(f'{directory} holds no {checkpoint} checkpoint.')
    meta = ckpt.restore_meta(step)
    config = ml_collections.ConfigDict(meta['config'])
    class_names = (meta.get('data_source') or {}).get('class_names')
    model = models.create_model(config, class_names=class_names)
    abstract_state = jax.eval_shape(
        lambda rng: train.create_train_state(rng, config, model, meta['steps_per_epoch'], pretrained=False),
        jax.random.PRNGKey(0))
    state, _ = ckpt.restore(step, abstract_state)
  finally:
    ckpt.close()
  return Trained(config, jax.device_put(state, jax.local_devices()[0]), step, meta['epoch'],
                 meta.get('data_source'))


def evaluate_checkpoints(workdir: str, data: Arrays,
                         checkpoints: tuple[str, ...] = CHECKPOINTS) -> dict[str, dict[str, Any]]:
  """{checkpoint: scores of it on `data`, plus its 'step'} for each of `checkpoints` of `workdir`."""
  results = {}
  for checkpoint in checkpoints:
    trained = load_trained(workdir, checkpoint)
    results[checkpoint] = trained.evaluate(data) | {'step': trained.step}
  return results


def load_data(trained: Trained, workdir: str) -> dict[str, Arrays]:
  """The splits `trained` was trained and tested on, read from its recorded source, or ValueError.

  'tfds': the same TFDS dataset and version; 'crossval_fold': that fold's tracks, regrouped
  from its dataset or arrays file as crossval made them (originals only: augmented copies
  only ever train); 'arrays' (passed in by a script): refused, since nothing records them.
  """
  source = trained.data_source
  if source is None:  # written before checkpoints recorded their data
    if os.path.exists(os.path.join(workdir, 'fold.json')):
      raise ValueError(f'{workdir} is a cross-validation fold trained before checkpoints recorded '
                       'their data; its test tracks are in its fold.json. Rerun crossval to evaluate it.')
    logging.warning('%s predates data provenance: evaluating on %s as its config names it.', workdir,
                    trained.config.dataset)
    return input_pipeline.load_datasets(trained.config)
  kind = source.get('kind')
  if kind == 'tfds':
    datasets, current = input_pipeline.load_datasets_with_source(trained.config, check_source=False)
    differ = [k for k in ('name', 'version') if current.get(k) != source.get(k)]
    if differ:
      raise ValueError(f'{workdir} was trained on {source["name"]} version {source["version"]}; the '
                       f'data at hand is {current["name"]} version {current["version"]}. Evaluate with '
                       'the data it was trained on (its --config.data_dir) or retrain.')
    if source.get('source_digest') and current.get('source_digest') != source['source_digest']:
      raise ValueError(f'{workdir} was trained on {source["name"]} built from other audio than the copy '
                       f'at hand (source digest {source["source_digest"][:12]} -> '
                       f'{str(current.get("source_digest"))[:12]}): it was rebuilt since. Evaluate with '
                       'the data it was trained on (its --config.data_dir) or retrain.')
    return datasets
  if kind == 'crossval_fold':
    from gtzan_jax import folds  # pylint: disable=g-import-not-at-top  (crossval's data)
    return folds.fold_data(trained.config, source)
  raise ValueError(f'{workdir} was trained on {source.get("description", "data passed in by a script")}, '
                   'which no file records; evaluate it with gtzan_jax.evaluation.evaluate_checkpoints'
                   '(workdir, data) on the same arrays.')
