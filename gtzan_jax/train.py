"""Training: config -> data -> model -> parallel steps -> checkpoints -> results.json.

  results = train_and_evaluate(config, workdir)   # resumes from workdir's latest checkpoint

The data order depends only on (seed, epoch), and the dropout key only on
(seed, step), so a run that is stopped and resumed from any checkpoint takes
exactly the steps an uninterrupted run would have taken. To keep that promise a
resumed run must have the config it was checkpointed with: any other difference
stops it with one line naming the keys, except for the keys of `RESUMABLE_KEYS`
(logging, checkpointing, evaluation batch size, placement, data location), which
change no step, and `num_epochs` under the constant schedule (more epochs simply
continue; under cosine they would bend the schedule mid-run).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from gtzan_jax import batch_augment
from gtzan_jax import checkpointing
from gtzan_jax import epochs as epochs_lib
from gtzan_jax import evaluation
from gtzan_jax import input_pipeline
from gtzan_jax import metric_writers
from gtzan_jax import models
from gtzan_jax import report
from gtzan_jax import run_control
from gtzan_jax.parallel import DataParallel
from gtzan_jax.run_control import NonFiniteLossError, TrainingInterrupted  # pylint: disable=unused-import

Arrays = dict[str, np.ndarray]
# Config keys a resumed run may change: none of them changes a step's inputs or arithmetic.
RESUMABLE_KEYS = ('log_every_steps', 'checkpoint_every_steps', 'keep_checkpoints', 'compilation_cache_dir',
                  'eval_batch_size', 'device_resident', 'parallelism', 'data_dir', 'manual_dir', 'rebuild_data',
                  'memory_budget')  # where the data is read from and held, not what it is


class TrainState(train_state.TrainState):
  batch_stats: Any
  rng: jax.Array  # raw uint32 key; dropout keys are folded in from the step


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError, one line naming every field whose value cannot work.

  `model` and `parallelism` are checked where they are used (`models.create_model`, `DataParallel`).
  """
  problems = []

  def need(ok: bool, key: str, rule: str) -> None:
    if not ok:
      value = config
      for part in key.split('.'):
        value = value.get(part) if isinstance(value, ml_collections.ConfigDict) else None
      problems.append(f'{key}={value!r} ({rule})')

  augment = config.get('augment') or ml_collections.ConfigDict()
  need(config.get('dtype') in ('float32', 'bfloat16'), 'dtype', 'float32 or bfloat16')
  need(config.get('lr_schedule') in ('constant', 'cosine'), 'lr_schedule', 'constant or cosine')
  need(config.get('device_resident', 'off') in ('auto', 'on', 'off'), 'device_resident', 'auto, on or off')
  for key in ('batch_size', 'num_epochs', 'log_every_steps', 'keep_checkpoints'):
    need(config.get(key, 1) >= 1, key, 'at least 1')
  for key in ('eval_batch_size', 'checkpoint_every_steps', 'seed', 'warmup_epochs', 'weight_decay',
              'segments_per_track'):
    need(config.get(key, 0) >= 0, key, 'not negative')
  need(config.get('learning_rate', 1) > 0, 'learning_rate', 'positive')
  need(0 <= config.get('label_smoothing', 0) < 1, 'label_smoothing', 'in [0, 1)')
  if config.get('model') in models.TRANSFER_MODELS:
    need(config.get('features', 'mel') == config.model, 'features', f'{config.model!r} for model={config.model!r}')
    need(config.get('dtype') == 'float32', 'dtype', f'float32 for model={config.model!r}')
  for key in ('audio_copies', 'seed', 'time_masks', 'time_mask_width', 'freq_masks', 'freq_mask_width',
              'mixup_alpha'):
    need(augment.get(key, 0) >= 0, f'augment.{key}', 'not negative')
  try:
    input_pipeline.memory_budget(config)
  except ValueError:
    problems.append(f'memory_budget={config.get("memory_budget")!r} (\'auto\' or a size such as 2GB, 512MB, 0)')
  if problems:
    raise ValueError(f'config: {"; ".join(problems)}.')


def _flat(tree: Any, prefix: str = '') -> dict[str, Any]:
  if not isinstance(tree, dict):
    return {prefix[:-1]: tree}
  return {k: v for key, value in tree.items() for k, v in _flat(value, f'{prefix}{key}.').items()}


def config_changes(saved: dict[str, Any], config: ml_collections.ConfigDict) -> list[str]:
  """'key old -> new' for each field a resumed run may not change (see the module docstring).

  Fields one of the two configs lacks (written by another version of the code) are not compared.
  """
  old, new = _flat(saved), _flat(json.loads(json.dumps(config.to_dict())))
  free = set(RESUMABLE_KEYS)
  if old.get('lr_schedule') == new.get('lr_schedule') == 'constant':
    free.add('num_epochs')
  return [f'{key} {old[key]!r} -> {new[key]!r}' for key in sorted(set(old) & set(new))
          if key not in free and old[key] != new[key]]


def create_learning_rate_fn(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """Constant (the paper) or cosine decay, each after an optional linear warmup."""
  warmup = int(config.warmup_epochs * steps_per_epoch)
  total = max(config.num_epochs * steps_per_epoch, warmup + 1)
  if config.lr_schedule == 'constant':
    main = optax.constant_schedule(config.learning_rate)
  elif config.lr_schedule == 'cosine':
    main = optax.cosine_decay_schedule(config.learning_rate, total - warmup)
  else:
    raise ValueError(f"config.lr_schedule must be 'constant' or 'cosine', got {config.lr_schedule!r}.")
  if not warmup:
    return main
  ramp = optax.linear_schedule(0.0, config.learning_rate, warmup)
  return optax.join_schedules([ramp, main], [warmup])


def create_optimizer(config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule, params=None):
  """Adam (AdamW with weight_decay); the transfer models' own (`transfer.optimizer`) for them."""
  if config.model in models.TRANSFER_MODELS:
    from gtzan_jax.pretrained import transfer  # pylint: disable=g-import-not-at-top
    return transfer.optimizer(config, learning_rate_fn, params)
  if config.weight_decay:
    return optax.adamw(learning_rate_fn, weight_decay=config.weight_decay)
  return optax.adam(learning_rate_fn)


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict, model, steps_per_epoch: int,
                       band_statistics: tuple[np.ndarray, np.ndarray] | None = None, *,
                       pretrained: bool = True) -> TrainState:
  """Initialises parameters, BatchNorm statistics and the optimizer on the host.

  `band_statistics`: per-mel-band (mean, var) of the training split for the input normalisation
  (the transfer models normalise their input as they were trained to, and ignore it).
  `pretrained`: a transfer model starts from its network's published weights (False: random,
  for a state about to be restored from a checkpoint).
  """
  params_rng, state_rng = jax.random.split(rng)
  dummy = jnp.zeros((1, *input_pipeline.input_shape(config)), jnp.float32)
  variables = jax.jit(functools.partial(model.init, train=False))(params_rng, dummy)
  transfer_model = config.model in models.TRANSFER_MODELS
  if transfer_model and pretrained:
    from gtzan_jax.pretrained import transfer  # pylint: disable=g-import-not-at-top
    variables = transfer.with_pretrained(variables, model)
  if band_statistics is not None and not transfer_model:
    variables = models.set_band_statistics(variables, *band_statistics)
  tx = create_optimizer(config, create_learning_rate_fn(config, steps_per_epoch), variables['params'])
  return TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                           batch_stats=variables['batch_stats'], rng=state_rng)


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0,
                  targets: jax.Array | None = None) -> jax.Array:
  """Per-example softmax cross-entropy against (optionally smoothed) one-hot labels, or `targets`."""
  if targets is None:
    targets = jax.nn.one_hot(labels, logits.shape[-1])
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def train_step(state: TrainState, batch: dict[str, jax.Array], *, axis_name: str | None,
               label_smoothing: float = 0.0, num_classes: int | None = None,
               augment: ml_collections.ConfigDict | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on a (per-device, under pmap) batch.

  `augment` (config.augment) turns on SpecAugment masks and mixup of the batch
  inside the step; its audio keys are the builder's business. `num_classes`: the data's
  (None: the model's output size).
  """
  rng = jax.random.fold_in(state.rng, state.step)
  if axis_name:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  mel, labels = batch['mel'], batch['label']
  if num_classes is None:
    num_classes = jax.eval_shape(lambda: state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                                                        mel, train=False)).shape[-1]
  targets = jax.nn.one_hot(labels, num_classes)
  if augment is not None and (augment.time_masks or augment.freq_masks):
    norm = state.batch_stats.get('input_norm')
    fill = norm['mean'] if norm is not None else jnp.mean(mel, axis=(0, 2))
    mel = batch_augment.spec_augment(jax.random.fold_in(rng, 1), mel, fill, time_masks=augment.time_masks,
                       time_mask_width=augment.time_mask_width, freq_masks=augment.freq_masks,
                       freq_mask_width=augment.freq_mask_width)
  if augment is not None and augment.mixup_alpha:
    mel, targets = batch_augment.mixup(jax.random.fold_in(rng, 2), mel, targets, augment.mixup_alpha)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, mel, train=True,
        rngs={'dropout': rng}, mutable=['batch_stats'])
    loss = cross_entropy(logits, labels, label_smoothing, targets).mean()
    return loss, (logits, updates['batch_stats'])

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {'loss': loss, 'accuracy': jnp.mean(jnp.argmax(logits, -1) == labels)}
  if axis_name:
    grads, metrics, batch_stats = jax.lax.pmean((grads, metrics, batch_stats), axis_name)
  metrics['grad_norm'] = optax.global_norm(grads)
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


class _Checkpoints:
  """The run's checkpointer with what a save records (config, data source) and when saves are due."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, steps_per_epoch: int,
               data_source: dict[str, Any], par: DataParallel):
    self.ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
    self.config, self.steps_per_epoch, self.data_source, self.par = config, steps_per_epoch, data_source, par

  def due(self, step: int) -> bool:
    """A mid-epoch checkpoint is asked for at `step` (config.checkpoint_every_steps)."""
    every = self.config.checkpoint_every_steps
    return bool(every) and step % every == 0 and step % self.steps_per_epoch != 0

  def save(self, step: int, state: TrainState, validation: dict[str, float] | None = None) -> None:
    """Starts writing `state` (end-of-epoch saves carry `validation`, which picks the best)."""
    meta = {'step': step, 'epoch': step / self.steps_per_epoch, 'steps_per_epoch': self.steps_per_epoch,
            'validation': validation, 'config': self.config.to_dict(), 'data_source': self.data_source}
    self.ckpt.save(step, self.par.get_state(state), meta,
                   metrics=validation and {'validation_accuracy': validation['accuracy']})

  def committed(self) -> int | None:
    """The latest checkpoint once every pending write has landed."""
    self.ckpt.wait()
    return self.ckpt.latest_step()

  def restore(self, state: TrainState) -> tuple[TrainState, int]:
    """The latest checkpoint's state (after checking its config and data) and step, else (state, 0)."""
    step = self.ckpt.latest_step()
    if not step:
      return state, 0
    meta = self.ckpt.restore_meta(step)
    where = f'{self.ckpt.directory}/{step}'
    changes = config_changes(meta['config'], self.config)
    if changes:
      raise ValueError(f'{where} was written with another config ({"; ".join(changes)}), so resuming would '
                       'not take the steps an uninterrupted run takes. Restore those values or train into a '
                       f'new --workdir (free to change on resume: {", ".join(RESUMABLE_KEYS)}, and num_epochs '
                       'under the constant schedule).')
    changes = input_pipeline.data_source_changes(meta.get('data_source'), self.data_source)
    if changes:
      raise ValueError(f'{where} was trained on other data ({"; ".join(changes)}). Train into a new --workdir.')
    state, _ = self.ckpt.restore(step, state)
    logging.info('Resumed from %s (epoch %.2f).', where, meta['epoch'])
    return state, step


@contextlib.contextmanager
def _closing(ckpt: checkpointing.Checkpointer, writer: metric_writers.MetricWriter):
  """Always waits for pending checkpoint writes and closes the checkpointer and the writer."""
  try:
    yield
  finally:
    try:
      ckpt.wait()
    finally:
      ckpt.close()
      writer.close()


def _log_report(point: epochs_lib.Report, progress: run_control.Progress, writer, epoch_metrics: list,
                last_checkpoint, workdir: str) -> None:
  """Checks every interval's mean for NaN, writes it to TensorBoard, prints the progress line."""
  for end, metrics in point.intervals:
    mean = {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}
    run_control.check_finite(mean, end, last_checkpoint, workdir)
    writer.write_scalars(end, {f'train/{k}': v for k, v in mean.items()})
    epoch_metrics += metrics
  text, rate = progress.line(point.step, mean)
  logging.info('%s', text)
  writer.write_scalars(point.step, {'train/examples_per_s': rate})


def _validate(evaluator: evaluation.Evaluator, state: TrainState, data: Arrays, class_names: list[str], writer,
              step: int, epoch: int, config: ml_collections.ConfigDict, epoch_metrics: list) -> dict[str, float]:
  """Scores the validation split at an epoch's end; logs it and writes it to TensorBoard and history."""
  validation = evaluation.summary(evaluator.evaluate(state, data, class_names))
  logging.info('epoch %d/%d | validation accuracy %.4f (tracks %.4f) | loss %.4f', epoch + 1,
               config.num_epochs, validation['accuracy'], validation['track_accuracy'], validation['loss'])
  writer.write_scalars(step, {f'validation/{k}': v for k, v in validation.items()})
  writer.write_history({
      'epoch': epoch + 1, 'step': step,
      'train_loss': float(np.mean([m['loss'] for m in epoch_metrics])),
      'train_accuracy': float(np.mean([m['accuracy'] for m in epoch_metrics])),
      'validation_loss': validation['loss'], 'validation_accuracy': validation['accuracy'],
      'validation_track_accuracy': validation['track_accuracy']})
  return validation


def _stopped(signum: int, step: int, ckpt: checkpointing.Checkpointer, where: str) -> TrainingInterrupted:
  return TrainingInterrupted(f'Stopped by {signal.Signals(signum).name} {where}; checkpoint written to '
                             f'{ckpt.directory}/{step}. Run the same command again to resume.', step)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       datasets: dict[str, Arrays] | None = None,
                       devices: list[jax.Device] | None = None, *,
                       data_source: dict[str, Any] | None = None) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns results.json's dict.

  Args:
    config: see configs/paper.py.
    workdir: checkpoints, TensorBoard events, history.jsonl and results.json go here.
    datasets: {'train', 'validation', 'test'} arrays as `tfds_gtzan.data.read_split` gives;
      read from `config.dataset` (building it if needed) when None.
    devices: devices to split the batch over (default: all).
    data_source: where `datasets` came from, recorded in every checkpoint so that evaluate
      reads the same data (`evaluation.load_data`); default: "arrays passed in".
  """
  check_config(config)
  os.makedirs(workdir, exist_ok=True)
  par = DataParallel(config.parallelism, devices)
  eval_batch_size = config.eval_batch_size or config.batch_size
  par.check_batch_size(config.batch_size)
  par.check_batch_size(eval_batch_size, 'config.eval_batch_size')
  if datasets is None:
    datasets, data_source = input_pipeline.load_datasets_with_source(config)
  data_source = data_source or input_pipeline.arrays_source(
      'arrays passed to train_and_evaluate', input_pipeline.class_names_of_labels(datasets))
  class_names = data_source['class_names']
  model = models.create_model(config, axis_name=par.axis_name, class_names=class_names)
  spe = input_pipeline.steps_per_epoch(len(datasets['train']['label']), config.batch_size)
  if config.model in models.TRANSFER_MODELS:
    state, train_data, validation_data = _transfer_state(config, model, spe, datasets, eval_batch_size,
                                                         workdir, data_source)
  else:
    state = create_train_state(jax.random.PRNGKey(config.seed), config, model, spe,
                               input_pipeline.training_band_statistics(datasets['train']))
    train_data, validation_data = datasets['train'], datasets['validation']
  checkpoints, writer = _Checkpoints(workdir, config, spe, data_source, par), metric_writers.create(workdir)
  with _closing(checkpoints.ckpt, writer), run_control.StopSignals() as stop:
    state, start_step = checkpoints.restore(state)
    state, step, validation = par.put_state(state), start_step, None

    def report_at(s: int) -> bool:  # every process reports at the same steps; one process also on a signal
      return (s % config.log_every_steps == 0 or checkpoints.due(s)
              or bool(stop.received and jax.process_count() == 1))

    step_fn = functools.partial(train_step, axis_name=par.axis_name, label_smoothing=config.label_smoothing,
                                num_classes=len(class_names), augment=config.get('augment'))
    epochs = epochs_lib.make_epochs(config, par, step_fn, state, train_data, spe, report_at,
                                    on_first_step=lambda: progress.first_step_done(start_step + 1))
    evaluator = evaluation.Evaluator(par, eval_batch_size)
    progress = run_control.Progress(config.num_epochs * spe, spe, config.batch_size, start_step)
    for epoch in range(start_step // spe, config.num_epochs):
      epoch_metrics = []
      for point in epochs.run(state, epoch, step):
        state, step = point.state, point.step
        _log_report(point, progress, writer, epoch_metrics, checkpoints.committed, workdir)
        if step % spe and (signum := stop.agreed()):
          checkpoints.save(step, state)
          raise _stopped(signum, step, checkpoints.ckpt, f'at step {step}')
        if checkpoints.due(step):
          checkpoints.save(step, state)
      validation = _validate(evaluator, state, validation_data, class_names, writer, step, epoch, config,
                             epoch_metrics)
      checkpoints.save(step, state, validation)
      progress.restart(step)
      if signum := stop.agreed():
        raise _stopped(signum, step, checkpoints.ckpt, f'at the end of epoch {epoch + 1} (step {step})')
    train_seconds = progress.seconds_since_start
    if validation is None:  # nothing left to train: the run was already complete
      validation = evaluation.summary(evaluator.evaluate(state, validation_data, class_names))
    test = evaluation.summary(evaluator.evaluate(state, datasets['test'], class_names))
    logging.info('test accuracy %.4f per segment, %.4f per track (%d segments, %d tracks)',
                 test['accuracy'], test['track_accuracy'], test['num_examples'], test['num_tracks'])
    writer.write_scalars(step, {f'test/{k}': v for k, v in test.items()})
    checkpoints.ckpt.wait()
    results = _results(config, par, checkpoints.ckpt, progress, step, spe, start_step, train_seconds,
                       validation, test)
  if jax.process_index() == 0:
    report.write_json(os.path.join(workdir, 'results.json'), results)
  return results


def _transfer_state(config, model, spe: int, datasets: dict[str, Arrays], batch_size: int, workdir: str,
                    data_source: dict[str, Any]) -> tuple[TrainState, Arrays, Arrays]:
  """A transfer model's initial state, and the training and validation data its epochs use.

  The network's embeddings of the training patches are computed once (cached in
  workdir/embeddings) and set the head's standardisation. A probe (frozen network) then
  trains on them instead of the patches and is validated on the validation split's
  embeddings (the head on an embedding gives what the whole network gives on its patch);
  a fine-tuned model uses the patches. The test split always runs the whole network.
  """
  from gtzan_jax.pretrained import transfer  # pylint: disable=g-import-not-at-top
  streamed = [split for split, data in datasets.items() if input_pipeline.is_streamed(data)]
  if streamed:
    raise ValueError(f'model={config.model!r} keeps its splits in memory, but the {", ".join(streamed)} '
                     f'split(s) of {config.dataset} exceed config.memory_budget={config.get("memory_budget")!r}: '
                     'raise it, or train a model from scratch (which streams).')
  state = create_train_state(jax.random.PRNGKey(config.seed), config, model, spe)
  cache = os.path.join(workdir, 'embeddings')

  def embed(split: str) -> np.ndarray:
    key = {'data_source': data_source, 'backbone': model.backbone, 'split': split,
           'rows': _split_digest(datasets[split])}
    return transfer.embed_split(state, datasets[split]['mel'], batch_size, cache, key)

  train = datasets['train']
  embeddings = embed('train')
  state = state.replace(batch_stats=transfer.set_embedding_statistics(state.batch_stats, embeddings))
  init_from = (config.get('musicnn') or {}).get('init_from')
  if init_from:  # e.g. fine-tune from a trained probe: its network, head and statistics
    state = _initialised_from(state, init_from, data_source)
  if model.train_backbone:
    return state, train, datasets['validation']
  return state, {**train, 'mel': embeddings}, {**datasets['validation'], 'mel': embed('validation')}


def _initialised_from(state: TrainState, workdir: str, data_source: dict[str, Any]) -> TrainState:
  """`state` with the parameters and statistics of `workdir`'s latest checkpoint (same model and classes)."""
  trained = evaluation.load_trained(workdir)
  names = (trained.data_source or {}).get('class_names')
  if names and names != data_source['class_names']:
    raise ValueError(f'config.musicnn.init_from={workdir} was trained on the classes {names}, '
                     f'not {data_source["class_names"]}.')
  if jax.tree.structure(trained.state.params) != jax.tree.structure(state.params):
    raise ValueError(f'config.musicnn.init_from={workdir} holds another model ({trained.config.model}).')
  logging.info('Starting from %s (step %d).', workdir, trained.step)
  return state.replace(params=jax.device_get(trained.state.params),
                       batch_stats=jax.device_get(trained.state.batch_stats))


def _split_digest(data: Arrays) -> str:
  """A digest of a split's rows (track, segment, copy, label) and of its features' bytes."""
  digest = hashlib.sha256()
  for key in ('track', 'segment', 'copy', 'label', 'mel'):
    if key in data:
      digest.update(np.ascontiguousarray(data[key]).tobytes() if data[key].dtype != object
                    else '\n'.join(map(str, data[key])).encode())
  return digest.hexdigest()[:16]


def _results(config, par, ckpt, progress, step, spe, start_step, train_seconds, validation, test) -> dict[str, Any]:
  """results.json: where training ended, how fast it ran, and the validation and test figures."""
  rate = progress.examples_per_s
  return {
      'step': step, 'epochs': step / spe, 'steps_trained_this_run': step - start_step,
      'train_seconds_this_run': round(train_seconds, 2),
      'train_examples_per_s': round(rate, 2) if rate else None,
      'platform': jax.devices()[0].platform, 'device_kind': jax.devices()[0].device_kind,
      'device_count': par.num_devices, 'process_count': jax.process_count(),
      'best_checkpoint_step': ckpt.best_step(), 'config': config.to_dict(),
      'validation': validation, 'test': test,
  }
