"""Training and evaluation loop: config -> data -> model -> parallel steps -> checkpoints.

The data order depends only on (seed, epoch), and the dropout key only on
(seed, step), so a run that is stopped and resumed from any checkpoint takes
exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import functools
import json
import logging as std_logging
import os
import signal
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state

from gtzan_jax import checkpointing
from gtzan_jax import input_pipeline
from gtzan_jax import metric_writers
from gtzan_jax import models
from gtzan_jax.parallel import DataParallel
from tfds_gtzan import data as gtzan_data

Arrays = dict[str, np.ndarray]


class TrainState(train_state.TrainState):
  batch_stats: Any
  rng: jax.Array  # raw uint32 key; dropout keys are folded in from the step


def quiet_library_logs() -> None:
  """Keeps orbax's per-checkpoint INFO chatter out of the console (warnings still show)."""

  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname

  logging.get_absl_logger().addFilter(keep)


class NonFiniteLossError(RuntimeError):
  """Raised when the loss or gradient norm is NaN or infinite."""


class TrainingInterrupted(Exception):
  """Raised after SIGTERM/SIGINT once the current step is checkpointed (at `step`)."""

  def __init__(self, message: str, step: int):
    super().__init__(message)
    self.step = step


def use_compilation_cache(directory: str | None) -> None:
  """Points JAX's persistent compilation cache at `directory` unless JAX already has one.

  A later process compiling the same step (a rerun, a resumed run, the next fold or sweep value)
  loads it from there instead of compiling. JAX settles on its cache at its first compilation, so
  call this before anything compiles; JAX_COMPILATION_CACHE_DIR, when set, wins.
  """
  if directory and not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(directory))


def run_command(work: Callable[[], Any], config: ml_collections.ConfigDict | None = None) -> Any:
  """Runs a training command's work for its absl main(); returns what `work` returns.

  With `config`, first turns on its `compilation_cache_dir`. A SIGTERM/SIGINT stop prints where
  the run was checkpointed and returns None. Bad input and a NaN stop exit with one line,
  `error: ...`; `--verbosity=1` shows the traceback.
  """
  quiet_library_logs()
  if config is not None:
    use_compilation_cache(config.get('compilation_cache_dir'))
  try:
    return work()
  except TrainingInterrupted as e:
    print(e, flush=True)
    return None
  except (ValueError, FileNotFoundError, NonFiniteLossError) as e:
    if logging.get_verbosity() >= logging.DEBUG:
      raise
    raise SystemExit(f'error: {e} (--verbosity=1 shows the traceback)') from None


class _StopSignals:
  """Turns the first SIGTERM or SIGINT into a request to checkpoint and stop.

  A second signal gets the default behaviour (so a second Ctrl-C still kills).
  Only installs handlers when used from the main thread.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self.received = signum
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
    logging.warning('Received %s: checkpointing after the current step, then stopping.',
                    signal.Signals(signum).name)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def agreed(self) -> int | None:
    """The signal received by any process, or None: every process must call this at the same step."""
    if jax.process_count() == 1:
      return self.received
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    received = multihost_utils.process_allgather(np.int32(self.received or 0))
    return int(np.max(received)) or None

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


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


def create_optimizer(config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule):
  if config.weight_decay:
    return optax.adamw(learning_rate_fn, weight_decay=config.weight_decay)
  return optax.adam(learning_rate_fn)


def create_train_state(rng: jax.Array, config: ml_collections.ConfigDict, model, steps_per_epoch: int,
                       band_statistics: tuple[np.ndarray, np.ndarray] | None = None) -> TrainState:
  """Initialises parameters, BatchNorm statistics and the optimizer on the host.

  `band_statistics`: per-mel-band (mean, var) of the training split for the input normalisation.
  """
  params_rng, state_rng = jax.random.split(rng)
  dummy = jnp.zeros((1, input_pipeline.N_MELS, input_pipeline.N_FRAMES), jnp.float32)
  variables = jax.jit(functools.partial(model.init, train=False))(params_rng, dummy)
  if band_statistics is not None:
    variables = models.set_band_statistics(variables, *band_statistics)
  tx = create_optimizer(config, create_learning_rate_fn(config, steps_per_epoch))
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


def _span_masks(rng: jax.Array, batch: int, count: int, max_width: int, size: int) -> jax.Array:
  """[batch, size] booleans: `count` spans per row, each of width U{0..max_width} at a uniform start."""
  width_rng, start_rng = jax.random.split(rng)
  width = jax.random.randint(width_rng, (batch, count, 1), 0, min(max_width, size) + 1)
  start = jnp.floor(jax.random.uniform(start_rng, (batch, count, 1)) * (size - width + 1)).astype(jnp.int32)
  position = jnp.arange(size)
  return jnp.any((position >= start) & (position < start + width), axis=1)


def spec_augment(rng: jax.Array, mel: jax.Array, fill: jax.Array, *, time_masks: int, time_mask_width: int,
                 freq_masks: int, freq_mask_width: int) -> jax.Array:
  """SpecAugment's time and frequency masking of `mel` [B, mels, frames], masked cells set to `fill` [mels].

  With `fill` the training split's per-band mean, a masked cell becomes 0 after
  the model's input normalisation, as in SpecAugment on normalised features.
  """
  batch, mels, frames = mel.shape
  time_rng, freq_rng = jax.random.split(rng)
  masked = jnp.zeros((batch, mels, frames), bool)
  if time_masks:
    masked |= _span_masks(time_rng, batch, time_masks, time_mask_width, frames)[:, None, :]
  if freq_masks:
    masked |= _span_masks(freq_rng, batch, freq_masks, freq_mask_width, mels)[:, :, None]
  return jnp.where(masked, fill.astype(mel.dtype)[None, :, None], mel)


def mixup(rng: jax.Array, mel: jax.Array, targets: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """Mixes each example with another of the (per-device) batch by one lambda ~ Beta(alpha, alpha)."""
  lam_rng, perm_rng = jax.random.split(rng)
  lam = jax.random.beta(lam_rng, alpha, alpha)
  perm = jax.random.permutation(perm_rng, mel.shape[0])
  mixed = lam * mel.astype(jnp.float32) + (1 - lam) * mel[perm].astype(jnp.float32)
  return mixed.astype(mel.dtype), lam * targets + (1 - lam) * targets[perm]


def train_step(state: TrainState, batch: dict[str, jax.Array], *, axis_name: str | None,
               label_smoothing: float = 0.0,
               augment: ml_collections.ConfigDict | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on a (per-device, under pmap) batch.

  `augment` (config.augment) turns on SpecAugment masks and mixup of the batch
  inside the step; its audio keys are the builder's business.
  """
  rng = jax.random.fold_in(state.rng, state.step)
  if axis_name:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  mel, labels = batch['mel'], batch['label']
  targets = jax.nn.one_hot(labels, models.NUM_CLASSES)
  if augment is not None and (augment.time_masks or augment.freq_masks):
    norm = state.batch_stats.get('input_norm')
    fill = norm['mean'] if norm is not None else jnp.mean(mel, axis=(0, 2))
    mel = spec_augment(jax.random.fold_in(rng, 1), mel, fill, time_masks=augment.time_masks,
                       time_mask_width=augment.time_mask_width, freq_masks=augment.freq_masks,
                       freq_mask_width=augment.freq_mask_width)
  if augment is not None and augment.mixup_alpha:
    mel, targets = mixup(jax.random.fold_in(rng, 2), mel, targets, augment.mixup_alpha)

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


def log_probs_fn(state: TrainState, mel: jax.Array) -> jax.Array:
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, mel, train=False)
  return jax.nn.log_softmax(logits)


def eval_step(state: TrainState, batch: dict[str, jax.Array], *, axis_name: str | None) -> dict[str, jax.Array]:
  """Masked sums over a padded batch: loss, correct predictions, real examples."""
  log_probs = log_probs_fn(state, batch['mel'])
  mask = batch['mask']
  nll = -jnp.take_along_axis(log_probs, batch['label'][:, None], axis=-1)[:, 0]
  sums = {'loss': jnp.sum(nll * mask),
          'correct': jnp.sum((jnp.argmax(log_probs, -1) == batch['label']) * mask),
          'count': jnp.sum(mask)}
  return jax.lax.psum(sums, axis_name) if axis_name else sums


def evaluate(par: DataParallel, p_eval_step: Callable, state: TrainState, data: Arrays,
             batch_size: int) -> dict[str, float]:
  """Accuracy and mean loss over every example of `data` (last batch padded and masked)."""
  totals = None
  for batch in gtzan_data.iterate_batches(data, batch_size, shuffle=False, drop_remainder=False):
    sums = p_eval_step(state, par.put_batch(input_pipeline.model_inputs(batch, with_mask=True)))
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = par.get_metrics(totals)
  count = totals['count']
  return {'accuracy': totals['correct'] / count, 'loss': totals['loss'] / count, 'num_examples': int(count)}


def _device_resident(config: ml_collections.ConfigDict, par: DataParallel, train_data: Arrays) -> bool:
  """Whether to keep the training split on the devices (config.device_resident: auto, on, off).

  auto: on for accelerators when one process trains, no mid-epoch checkpoints
  are asked for and a copy of the split takes at most a quarter of a device's
  memory. Off on CPU: XLA:CPU ran the scanned epoch ~17x slower than streamed
  steps (BENCHMARKS.md), and there the host feed costs nothing measurable.
  A device-resident epoch checks for SIGTERM/SIGINT and non-finite losses at its end.
  """
  choice = config.get('device_resident', 'off')
  if choice not in ('auto', 'on', 'off'):
    raise ValueError(f"config.device_resident must be 'auto', 'on' or 'off', got {choice!r}.")
  if choice == 'off':
    return False
  if jax.process_count() > 1:
    if choice == 'on':
      raise ValueError('config.device_resident=on supports one process only; use auto or off.')
    return False
  if choice == 'auto' and (par.devices[0].platform == 'cpu' or config.checkpoint_every_steps):
    return False
  nbytes = sum(v.nbytes for k, v in input_pipeline.model_inputs(train_data).items())
  stats = par.devices[0].memory_stats() or {}
  fits = nbytes <= stats.get('bytes_limit', 16 * 2**30) / 4
  if choice == 'on' and not fits:
    logging.warning('config.device_resident=on: the training split (%.2f GB) takes over a quarter of '
                    'device memory.', nbytes / 1e9)
  return choice == 'on' or fits


def _check_finite(metrics: dict[str, float], step: int, last_checkpoint: int | None, workdir: str) -> None:
  bad = [k for k in ('loss', 'grad_norm') if not np.isfinite(metrics[k])]
  if bad:
    where = (f'the last good checkpoint is step {last_checkpoint} in {workdir}/checkpoints'
             if last_checkpoint is not None else 'no checkpoint was written yet')
    raise NonFiniteLossError(
        f'{" and ".join(bad)} became {metrics[bad[0]]} by step {step}; stopped without saving it; '
        f'{where}. Try a lower learning rate.')


class _Progress:
  """One console line per log interval: step, epoch, loss, accuracy, examples/s, ETA."""

  def __init__(self, total_steps: int, steps_per_epoch: int, batch_size: int, start_step: int):
    self.total_steps, self.steps_per_epoch, self.batch_size = total_steps, steps_per_epoch, batch_size
    self.last_step, self.last_time = start_step, time.perf_counter()
    self.steps_timed, self.seconds_timed = 0, 0.0

  def line(self, step: int, metrics: dict[str, float]) -> tuple[str, float]:
    now = time.perf_counter()
    steps, seconds = step - self.last_step, now - self.last_time
    self.last_step, self.last_time = step, now
    self.steps_timed += steps
    self.seconds_timed += seconds
    rate = steps * self.batch_size / max(seconds, 1e-9)
    eta = (self.total_steps - step) * seconds / max(steps, 1)
    epoch = step / self.steps_per_epoch
    text = (f'step {step}/{self.total_steps} | epoch {epoch:.2f} | loss {metrics["loss"]:.4f} | '
            f'acc {metrics["accuracy"]:.3f} | {rate:.1f} ex/s | ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}')
    return text, rate

  def restart(self, step: int) -> None:
    """Starts timing afresh at `step`, leaving out compilation and evaluation time."""
    self.last_step, self.last_time = step, time.perf_counter()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       datasets: dict[str, Arrays] | None = None,
                       devices: list[jax.Device] | None = None) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its latest checkpoint) and returns results.json's dict.

  Args:
    config: see configs/default.py.
    workdir: checkpoints, TensorBoard events and results.json go here.
    datasets: {'train', 'validation', 'test'} arrays as `tfds_gtzan.data.read_split` gives;
      read from `config.dataset` (building it if needed) when None.
    devices: devices to split the batch over (default: all).
  """
  os.makedirs(workdir, exist_ok=True)
  par = DataParallel(config.parallelism, devices)
  par.check_batch_size(config.batch_size)
  eval_batch_size = config.eval_batch_size or config.batch_size
  par.check_batch_size(eval_batch_size, 'config.eval_batch_size')
  model = models.create_model(config, axis_name=par.axis_name)
  if datasets is None:
    datasets = input_pipeline.load_datasets(config)
  train_data = datasets['train']
  steps_per_epoch = input_pipeline.steps_per_epoch(len(train_data['label']), config.batch_size)
  total_steps = config.num_epochs * steps_per_epoch

  state = create_train_state(jax.random.PRNGKey(config.seed), config, model, steps_per_epoch,
                             input_pipeline.band_statistics(train_data['mel']))
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints)
  start_step = ckpt.latest_step() or 0
  if start_step:
    state, meta = ckpt.restore(start_step, state)
    logging.info('Resumed from %s/checkpoints/%d (epoch %.2f).', workdir, start_step, start_step / steps_per_epoch)
  last_saved = start_step or None
  state = par.put_state(state)

  step_fn = functools.partial(train_step, axis_name=par.axis_name, label_smoothing=config.label_smoothing,
                              augment=config.get('augment'))
  p_train_step = par.compile(step_fn)
  resident = _device_resident(config, par, train_data)
  if resident:  # the training split lives on the devices; each epoch is one compiled program
    device_train = par.put_split(input_pipeline.model_inputs(train_data))
    compile_start = time.perf_counter()
    p_train_epoch = par.compile_epoch(step_fn).lower(
        state, device_train, par.put_order(np.arange(steps_per_epoch * config.batch_size),
                                           config.batch_size)).compile()
    logging.info('Training split on the devices; one epoch compiled in %.1f s.',
                 time.perf_counter() - compile_start)
  p_eval_step = par.compile(functools.partial(eval_step, axis_name=par.axis_name), donate_state=False)
  writer = metric_writers.create(workdir)
  progress = _Progress(total_steps, steps_per_epoch, config.batch_size, start_step)

  def meta_for(step: int, validation: dict[str, float] | None) -> dict[str, Any]:
    return {'step': step, 'epoch': step / steps_per_epoch, 'steps_per_epoch': steps_per_epoch,
            'validation': validation, 'config': config.to_dict()}

  step, pending, validation = start_step, [], None
  progress.restart(step)
  train_start = time.perf_counter()
  with _StopSignals() as stop:
    for epoch in range(start_step // steps_per_epoch, config.num_epochs):
      if resident and step == epoch * steps_per_epoch:
        order = gtzan_data.epoch_permutation(len(train_data['label']), seed=config.seed, epoch=epoch)
        state, stacked = p_train_epoch(state, device_train,
                                       par.put_order(order[:steps_per_epoch * config.batch_size],
                                                     config.batch_size))
        stacked = par.get_state(stacked)  # waits for the epoch: {metric: [steps_per_epoch]}
        epoch_metrics = [{k: float(v[i]) for k, v in stacked.items()} for i in range(steps_per_epoch)]
        for end in range(config.log_every_steps, steps_per_epoch + config.log_every_steps,
                         config.log_every_steps):
          interval = epoch_metrics[end - config.log_every_steps:min(end, steps_per_epoch)]
          mean = {k: float(np.mean([m[k] for m in interval])) for k in interval[0]}
          _check_finite(mean, step + min(end, steps_per_epoch), last_saved, workdir)
          writer.write_scalars(step + min(end, steps_per_epoch), {f'train/{k}': v for k, v in mean.items()})
        step += steps_per_epoch
        text, rate = progress.line(step, mean)
        logging.info('%s', text)
        writer.write_scalars(step, {'train/examples_per_s': rate})
        pending = []
        batches = ()
      else:
        batches = gtzan_data.iterate_batches(
          train_data, config.batch_size, shuffle=True, seed=config.seed, epoch=epoch,
          start_batch=step - epoch * steps_per_epoch)
        epoch_metrics = []
      for batch in batches:
        state, metrics = p_train_step(state, par.put_batch(input_pipeline.model_inputs(batch)))
        step += 1
        pending.append(metrics)
        if step == start_step + 1:  # the first step compiles: keep it out of examples/s
          jax.block_until_ready(metrics)
          logging.info('First step (compilation included): %.1f s.', time.perf_counter() - train_start)
          progress.restart(step)
        epoch_end = step % steps_per_epoch == 0
        checkpoint_now = (config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0
                          and not epoch_end)
        # Several processes agree on stopping at log steps; one process stops after the current step.
        signum = None
        if (step % config.log_every_steps == 0 or epoch_end or checkpoint_now
            or (stop.received and jax.process_count() == 1)):
          signum = stop.agreed()
          host = [par.get_metrics(m) for m in pending]
          mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
          _check_finite(mean, step, last_saved, workdir)
          epoch_metrics += host
          text, rate = progress.line(step, mean)
          logging.info('%s', text)
          writer.write_scalars(step, {f'train/{k}': v for k, v in mean.items()} | {'train/examples_per_s': rate})
          pending = []
        if signum and not epoch_end:
          ckpt.save(step, par.get_state(state), meta_for(step, None))
          ckpt.wait()
          ckpt.close()
          writer.close()
          raise TrainingInterrupted(
              f'Stopped by {signal.Signals(signum).name} at step {step}; checkpoint written to '
              f'{ckpt.directory}/{step}. Run the same command again to resume.', step)
        if checkpoint_now:  # after the finiteness check above
          ckpt.save(step, par.get_state(state), meta_for(step, None))
          last_saved = step
      validation = evaluate(par, p_eval_step, state, datasets['validation'], eval_batch_size)
      logging.info('epoch %d/%d | validation accuracy %.4f | loss %.4f', epoch + 1, config.num_epochs,
                   validation['accuracy'], validation['loss'])
      writer.write_scalars(step, {f'validation/{k}': v for k, v in validation.items()})
      ckpt.save(step, par.get_state(state), meta_for(step, validation),
                metrics={'validation_accuracy': validation['accuracy']})
      last_saved = step
      writer.write_history({
          'epoch': epoch + 1, 'step': step,
          'train_loss': float(np.mean([m['loss'] for m in epoch_metrics])),
          'train_accuracy': float(np.mean([m['accuracy'] for m in epoch_metrics])),
          'validation_loss': validation['loss'], 'validation_accuracy': validation['accuracy']})
      progress.restart(step)
      signum = stop.agreed()
      if signum:
        ckpt.wait()
        ckpt.close()
        writer.close()
        raise TrainingInterrupted(
            f'Stopped by {signal.Signals(signum).name} at the end of epoch {epoch + 1} (step {step}); '
            f'checkpoint written to {ckpt.directory}/{step}. Run the same command again to resume.', step)
  train_seconds = time.perf_counter() - train_start
  ckpt.wait()

  if validation is None:  # nothing left to train: the run was already complete
    validation = evaluate(par, p_eval_step, state, datasets['validation'], eval_batch_size)
  test = evaluate(par, p_eval_step, state, datasets['test'], eval_batch_size)
  logging.info('test accuracy %.4f | loss %.4f over %d examples', test['accuracy'], test['loss'], test['num_examples'])
  writer.write_scalars(step, {f'test/{k}': v for k, v in test.items()})
  writer.close()
  results = {
      'step': step,
      'epochs': step / steps_per_epoch,
      'steps_trained_this_run': step - start_step,
      'train_seconds_this_run': round(train_seconds, 2),
      'train_examples_per_s': (round(progress.steps_timed * config.batch_size / progress.seconds_timed, 2)
                               if progress.seconds_timed else None),
      'platform': jax.devices()[0].platform,
      'device_kind': jax.devices()[0].device_kind,
      'device_count': par.num_devices,
      'process_count': jax.process_count(),
      'best_checkpoint_step': ckpt.best_step(),
      'config': config.to_dict(),
      'validation': validation,
      'test': test,
  }
  ckpt.close()
  if jax.process_index() == 0:
    path = os.path.join(workdir, 'results.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(results, f, indent=2)
    os.replace(path + '.tmp', path)
  return results
