"""Train step, data parallelism (pmap / jit over 8 fake CPU devices) and resumption."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtzan_jax import batch_augment, checkpointing, cli, epochs, evaluation, input_pipeline, models, train
from gtzan_jax.parallel import DataParallel

NAMES = [str(i) for i in range(10)]


def _run_steps(config, data, mode, devices, num_steps):
  """Trains `num_steps` on consecutive batches; returns the losses and the final host state."""
  par = DataParallel(mode, devices)
  model = models.create_model(config, axis_name=par.axis_name)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 10,
                                   input_pipeline.band_statistics(data['mel']))
  step = par.compile(functools.partial(train.train_step, axis_name=par.axis_name))
  state, losses, b = par.put_state(state), [], config.batch_size
  for i in range(num_steps):
    batch = {'mel': data['mel'][i * b:(i + 1) * b], 'label': data['label'][i * b:(i + 1) * b]}
    state, metrics = step(state, par.put_batch(batch))
    losses.append(par.get_metrics(metrics)['loss'])
  return np.array(losses), par.get_state(state)


def test_steps_on_a_fixed_batch_lower_the_loss(tiny_config, fake_datasets):
  tiny_config.learning_rate = 1e-2
  data = {k: np.tile(v[:16], (8,) + (1,) * (v.ndim - 1)) for k, v in fake_datasets['train'].items()}
  losses, _ = _run_steps(tiny_config, data, 'jit', jax.devices()[:1], 8)
  assert np.all(np.diff(losses) < 0) and losses[-1] < 0.85 * losses[0], losses


@pytest.mark.multidevice
@pytest.mark.parametrize('mode', ['pmap', 'jit'])
def test_eight_devices_match_one_device(tiny_config, fake_datasets, mode):
  assert jax.device_count() == 8, 'conftest.py should give 8 fake CPU devices'
  data = fake_datasets['train']
  losses_1, state_1 = _run_steps(tiny_config, data, 'jit', jax.devices()[:1], 4)
  losses_8, state_8 = _run_steps(tiny_config, data, mode, jax.devices(), 4)
  np.testing.assert_allclose(losses_8, losses_1, rtol=1e-5)
  # Adam divides each update by sqrt(v): for a weight whose gradient is near zero, float
  # reordering in the cross-device mean can change its update by up to ~lr (1e-3) per step.
  # Over 4 steps the weights may move by 4e-3; we demand agreement to 1e-4.
  for a, b in zip(jax.tree.leaves(state_8.params), jax.tree.leaves(state_1.params)):
    np.testing.assert_allclose(a, b, atol=1e-4)
  for a, b in zip(jax.tree.leaves(state_8.batch_stats), jax.tree.leaves(state_1.batch_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_batch_that_does_not_divide_by_devices_is_a_config_error():
  with pytest.raises(ValueError, match='does not divide by the 8 devices'):
    DataParallel('jit', jax.devices()).check_batch_size(12)


def _final_params(workdir):
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'))
  step = ckpt.latest_step()
  restored = ckpt.manager.restore(step)
  ckpt.close()
  return step, restored.state['params']


def _params(workdir):
  return _final_params(workdir)[1]


def test_resume_equals_uninterrupted_training(tiny_config, fake_datasets, tmp_path):
  tiny_config.checkpoint_every_steps = 3  # also resume from the middle of an epoch
  devices = jax.devices()[:1]
  full = train.train_and_evaluate(tiny_config, str(tmp_path / 'full'), fake_datasets, devices)

  tiny_config.num_epochs = 1
  first = train.train_and_evaluate(tiny_config, str(tmp_path / 'split'), fake_datasets, devices)
  tiny_config.num_epochs = 2
  second = train.train_and_evaluate(tiny_config, str(tmp_path / 'split'), fake_datasets, devices)
  assert (first['steps_trained_this_run'], second['steps_trained_this_run']) == (4, 4)
  assert second['test'] == full['test'] and second['validation'] == full['validation']
  (step_a, params_a), (step_b, params_b) = _final_params(str(tmp_path / 'full')), _final_params(str(tmp_path / 'split'))
  assert step_a == step_b == 8
  for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(a, b)

  again = train.train_and_evaluate(tiny_config, str(tmp_path / 'split'), fake_datasets, devices)
  assert again['steps_trained_this_run'] == 0 and again['test'] == full['test']
  with open(tmp_path / 'split' / 'results.json') as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(again))  # results.json is what the call returned
  assert (saved['step'], saved['epochs'], saved['device_count']) == (8, 2.0, 1)
  assert saved['test']['num_examples'] == 24 and saved['config'] == json.loads(json.dumps(tiny_config.to_dict()))


def test_resume_from_mid_epoch_checkpoint(tiny_config, fake_datasets, tmp_path):
  """A run killed after a mid-epoch checkpoint continues from it to the same end."""
  tiny_config.checkpoint_every_steps = 3
  devices = jax.devices()[:1]
  full = train.train_and_evaluate(tiny_config, str(tmp_path / 'full'), fake_datasets, devices)
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, str(tmp_path / 'cut'), fake_datasets, devices)
  # Keep only the mid-epoch checkpoint at step 3, as if the run had died at step 4.
  import shutil
  shutil.rmtree(tmp_path / 'cut' / 'checkpoints' / '4')
  tiny_config.num_epochs = 2
  resumed = train.train_and_evaluate(tiny_config, str(tmp_path / 'cut'), fake_datasets, devices)
  assert resumed['steps_trained_this_run'] == 5
  assert resumed['test'] == full['test']


def test_evaluation_counts_every_example(tiny_config, fake_datasets):
  par = DataParallel('jit', jax.devices())
  model = models.create_model(tiny_config)
  state = par.put_state(train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10))
  data = {k: v[:21] for k, v in fake_datasets['test'].items()}  # 21 = one full batch of 16 + 5 padded
  metrics = evaluation.summary(evaluation.Evaluator(par, 16).evaluate(state, data, NAMES))
  assert metrics['num_examples'] == 21 and metrics['num_tracks'] == 21
  log_probs = np.asarray(evaluation.log_probs_fn(par.get_state(state), data['mel'].astype(np.float32)))
  np.testing.assert_allclose(metrics['accuracy'], np.mean(log_probs.argmax(-1) == data['label']), atol=1e-6)
  nll = -log_probs[np.arange(21), data['label']].mean()
  np.testing.assert_allclose(metrics['loss'], nll, rtol=1e-4)


def _history(workdir):
  with open(os.path.join(workdir, 'history.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.mark.multidevice
@pytest.mark.parametrize('mode,num_devices', [('jit', 1), ('jit', 8), ('pmap', 8)])
def test_device_resident_epochs_equal_streaming(tiny_config, fake_datasets, tmp_path, mode, num_devices):
  """The whole split on the devices, one compiled program per epoch: the same losses and parameters."""
  tiny_config.parallelism = mode
  devices = jax.devices()[:num_devices]
  runs = {}
  for choice in ('off', 'on'):
    tiny_config.device_resident = choice
    runs[choice] = train.train_and_evaluate(tiny_config, str(tmp_path / choice), fake_datasets, devices)
  # Not bitwise: XLA fuses the step differently inside the epoch's loop, which reorders float
  # sums. The same batches, in the same order, give the same numbers to float32 rounding.
  for split in ('validation', 'test'):
    assert runs['on'][split]['accuracy'] == runs['off'][split]['accuracy']
    np.testing.assert_allclose(runs['on'][split]['loss'], runs['off'][split]['loss'], rtol=1e-5)
  on, off = _history(tmp_path / 'on'), _history(tmp_path / 'off')
  assert [h['step'] for h in on] == [h['step'] for h in off] == [4, 8]
  for key in ('train_loss', 'train_accuracy', 'validation_loss', 'validation_accuracy'):
    np.testing.assert_allclose([h[key] for h in on], [h[key] for h in off], rtol=1e-5, err_msg=key)
  for a, b in zip(jax.tree.leaves(_params(str(tmp_path / 'on'))),
                  jax.tree.leaves(_params(str(tmp_path / 'off')))):
    np.testing.assert_allclose(a, b, atol=1e-4)  # Adam amplifies rounding: see test_eight_devices_match_one_device


def test_device_resident_auto_streams_on_cpu_and_rejects_unknown(tiny_config, fake_datasets):
  par = DataParallel('jit', jax.devices()[:1])
  assert not epochs.device_resident(tiny_config, par, fake_datasets['train'])  # auto, CPU
  tiny_config.device_resident = 'on'
  assert epochs.device_resident(tiny_config, par, fake_datasets['train'])
  tiny_config.device_resident = 'yes'
  with pytest.raises(ValueError, match="'auto', 'on' or 'off'"):
    epochs.device_resident(tiny_config, par, fake_datasets['train'])


def test_train_steps_make_no_hidden_transfers(tiny_config, fake_datasets):
  """Under transfer_guard('disallow') only explicit device_put/device_get may move data."""
  for mode in ('jit', 'pmap'):
    par = DataParallel(mode, jax.devices()[:2])
    model = models.create_model(tiny_config, axis_name=par.axis_name)
    state = par.put_state(train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 4))
    step = par.compile(functools.partial(train.train_step, axis_name=par.axis_name,
                                         augment=tiny_config.augment))
    data = fake_datasets['train']
    batches = [par.put_batch({'mel': data['mel'][i * 16:(i + 1) * 16], 'label': data['label'][i * 16:(i + 1) * 16]})
               for i in range(3)]
    with jax.transfer_guard('disallow'):
      for batch in batches:
        state, metrics = step(state, batch)
      loss = par.get_metrics(metrics)['loss']  # explicit device_get
    assert np.isfinite(loss)


def test_spec_augment_masks_spans_with_the_fill_value():
  mel = jax.random.normal(jax.random.PRNGKey(0), (16, 128, 173)) + 5.0
  fill = jnp.full((128,), -100.0)
  out = batch_augment.spec_augment(jax.random.PRNGKey(1), mel, fill, time_masks=2, time_mask_width=20,
                           freq_masks=1, freq_mask_width=16)
  masked = np.asarray(out == -100.0)
  np.testing.assert_array_equal(np.asarray(out)[~masked], np.asarray(mel)[~masked])
  time_masked = masked.all(axis=1)  # [B, frames]: whole columns
  freq_masked = masked.all(axis=2)  # [B, mels]: whole rows
  np.testing.assert_array_equal(masked, time_masked[:, None, :] | freq_masked[:, :, None])
  assert time_masked.sum(axis=1).max() <= 40 and freq_masked.sum(axis=1).max() <= 16
  assert 0 < time_masked.mean() < 40 / 173 and 0 < freq_masked.mean() < 16 / 128
  again = batch_augment.spec_augment(jax.random.PRNGKey(1), mel, fill, time_masks=2, time_mask_width=20,
                             freq_masks=1, freq_mask_width=16)
  np.testing.assert_array_equal(out, again)  # reproducible by key


def test_mixup_mixes_inputs_and_targets_alike():
  mel = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 5))
  targets = jnp.eye(8)  # example i's target names i: the mixed targets say who was mixed with whom
  mixed, weights = batch_augment.mixup(jax.random.PRNGKey(3), mel, targets, alpha=0.4)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
  assert np.count_nonzero(np.asarray(weights) > 1e-6, axis=1).max() <= 2
  np.testing.assert_allclose(mixed, (weights @ mel.reshape(8, -1)).reshape(mel.shape), rtol=1e-5, atol=1e-5)
  assert not np.allclose(mixed, mel)


def test_augmented_step_trains_and_differs(tiny_config, fake_datasets):
  data = fake_datasets['train']
  batch = {'mel': data['mel'][:16], 'label': data['label'][:16]}
  model = models.create_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 4,
                                   input_pipeline.band_statistics(data['mel']))
  plain = jax.jit(functools.partial(train.train_step, axis_name=None,
                                    augment=tiny_config.augment.copy_and_resolve_references()))
  tiny_config.augment.time_masks = tiny_config.augment.freq_masks = 2
  tiny_config.augment.mixup_alpha = 0.4
  augmented = jax.jit(functools.partial(train.train_step, axis_name=None, augment=tiny_config.augment))
  _, m_plain = plain(state, batch)
  _, m_aug = augmented(state, batch)
  assert np.isfinite(m_aug['loss']) and m_aug['loss'] != m_plain['loss']


def test_bfloat16_accuracy_within_a_point_of_float32(tiny_config, tmp_path):
  """bf16 activations (fp32 params and loss) train to the fp32 test accuracy, within 1 point.

  On fake data whose label is the level (+2 dB per class, under noise of 10 dB per cell): bf16 is
  emulated on CPU, so configs/synthetic.py in both dtypes would take minutes here.
  """
  def split(n, seed):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 10, n).astype(np.int32)
    mel = rng.normal(-40.0, 10.0, size=(n, 128, 173)) + 2.0 * label[:, None, None]
    return {'mel': mel.astype(np.float16), 'label': label}
  datasets = {'train': split(256, 10), 'validation': split(32, 11), 'test': split(400, 12)}
  tiny_config.num_epochs, tiny_config.learning_rate = 4, 1e-2
  accuracy = {}
  for dtype in ('float32', 'bfloat16'):
    tiny_config.dtype = dtype
    accuracy[dtype] = train.train_and_evaluate(tiny_config, str(tmp_path / dtype), datasets,
                                               jax.devices()[:1])['test']['accuracy']
  print('test accuracy', accuracy)
  assert accuracy['float32'] > 0.4  # 4x chance after 64 steps: it learned (0.595 when written)
  assert abs(accuracy['bfloat16'] - accuracy['float32']) <= 0.01


def test_run_command_turns_stops_and_bad_input_into_one_line(capsys):
  """main, crossval and sweep share this: a signal stop returns None, bad input or NaN is one line."""
  from absl import logging
  assert cli.run_command(lambda: {'step': 3}) == {'step': 3}

  def interrupted():
    raise train.TrainingInterrupted('Stopped by SIGTERM; checkpointed step 7.', step=7)
  assert cli.run_command(interrupted) is None
  assert capsys.readouterr().out == 'Stopped by SIGTERM; checkpointed step 7.\n'

  for error in (ValueError('config.batch_size=12 does not divide by the 8 devices'),
                FileNotFoundError('/x/train.txt: no such file'),
                train.NonFiniteLossError('loss became nan by step 6')):
    def fail(error=error):
      raise error
    with pytest.raises(SystemExit) as exit_info:
      cli.run_command(fail)
    assert exit_info.value.code == f'error: {error} (--verbosity=1 shows the traceback)'
  old = logging.get_verbosity()
  logging.set_verbosity(logging.DEBUG)
  try:
    with pytest.raises(train.NonFiniteLossError):  # --verbosity=1: the traceback, for a bug report
      cli.run_command(lambda: (_ for _ in ()).throw(train.NonFiniteLossError('nan')))
  finally:
    logging.set_verbosity(old)


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_train_and_eval_steps_lower_for_gpus(tiny_config, dtype):
  """CI has no GPU: this catches CPU-only code in the steps (the CPU stencil has a GPU twin) before a lease.

  It counts the exported program's convolution ops because that is the intent: on a GPU every
  convolution must reach XLA as one (for cuDNN), where on CPU the first becomes a fused stencil.
  """
  tiny_config.dtype = dtype
  tiny_config.augment.time_masks = tiny_config.augment.mixup_alpha = 1
  model = models.create_model(tiny_config)
  state = train.create_train_state(jax.random.PRNGKey(0), tiny_config, model, 10)
  mel = jax.ShapeDtypeStruct((16, input_pipeline.N_MELS, input_pipeline.N_FRAMES), jnp.float16)  # as stored
  label = jax.ShapeDtypeStruct((16,), jnp.int32)
  steps = {
      'train': (functools.partial(train.train_step, axis_name=None, augment=tiny_config.augment),
                {'mel': mel, 'label': label}),
      'eval': (lambda state, batch: evaluation.log_probs_fn(state, batch['mel']), {'mel': mel})}
  for platform in ('cuda', 'rocm'):
    for name, (step, batch) in steps.items():
      text = jax.export.export(jax.jit(step), platforms=[platform])(state, batch).mlir_module()
      # The tiny VGG has 4 convolutions (widths 4 and 8, two each), the first on one channel. A train
      # step: 4 forward, 3 input gradients (none for the input) and 4 kernel gradients.
      assert text.count('stablehlo.convolution') == (11 if name == 'train' else 4), (platform, name)


def test_resume_refuses_a_config_that_would_change_the_steps(tiny_config, fake_datasets, tmp_path):
  """Resuming compares the checkpoint's config: only keys that change no step may differ."""
  devices, workdir = jax.devices()[:1], str(tmp_path)
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, workdir, fake_datasets, devices)
  tiny_config.batch_size = 8  # another batch size lands in another epoch and batch
  with pytest.raises(ValueError, match=r'checkpoints/4 was written with another config \(batch_size 16 -> 8\)'):
    train.train_and_evaluate(tiny_config, workdir, fake_datasets, devices)
  tiny_config.batch_size, tiny_config.learning_rate, tiny_config.vgg.dropout_rate = 16, 3e-3, 0.5
  with pytest.raises(ValueError, match=r'learning_rate 0.001 -> 0.003; vgg.dropout_rate 0.0 -> 0.5'):
    train.train_and_evaluate(tiny_config, workdir, fake_datasets, devices)
  tiny_config.learning_rate, tiny_config.vgg.dropout_rate = 1e-3, 0.0
  # Free on resume: logging, checkpointing, evaluation batch size; num_epochs under the constant schedule.
  tiny_config.log_every_steps, tiny_config.keep_checkpoints, tiny_config.eval_batch_size = 1, 5, 8
  tiny_config.num_epochs = 2
  assert train.train_and_evaluate(tiny_config, workdir, fake_datasets, devices)['steps_trained_this_run'] == 4


def test_more_epochs_under_a_cosine_schedule_would_bend_it_and_are_refused(tiny_config, fake_datasets, tmp_path):
  tiny_config.num_epochs, tiny_config.lr_schedule = 1, 'cosine'
  train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1])
  tiny_config.num_epochs = 2
  with pytest.raises(ValueError, match=r'num_epochs 1 -> 2'):
    train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1])


def test_resume_refuses_other_data(tiny_config, fake_datasets, tmp_path):
  tiny_config.num_epochs = 1
  source = input_pipeline.arrays_source('split A', NAMES)
  train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1], data_source=source)
  with pytest.raises(ValueError, match='was trained on other data'):
    train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1],
                             data_source=input_pipeline.arrays_source('split B', NAMES))


def test_a_nan_stop_closes_the_writer_and_lands_the_checkpoint_it_names(tiny_config, fake_datasets, tmp_path,
                                                                        monkeypatch):
  from gtzan_jax import metric_writers
  closed = []
  for cls in (metric_writers.MetricWriter, checkpointing.Checkpointer):
    original = cls.close
    monkeypatch.setattr(cls, 'close', lambda self, original=original, cls=cls: (closed.append(cls.__name__),
                                                                                original(self))[1])
  from tfds_gtzan import data as gtzan_data
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1])  # steps 1-4
  closed.clear()
  # Epoch 2 (steps 5-8) saves asynchronously at step 6; its last batch (step 8) is NaN.
  order = gtzan_data.epoch_permutation(64, seed=tiny_config.seed, epoch=1)
  fake_datasets['train']['mel'][order[48:]] = np.nan
  tiny_config.num_epochs, tiny_config.checkpoint_every_steps = 2, 3
  with pytest.raises(train.NonFiniteLossError, match='by step 8; .*last good checkpoint is step 6'):
    train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:1])
  assert sorted(closed) == ['Checkpointer', 'MetricWriter']
  assert checkpointing.Checkpointer(str(tmp_path / 'checkpoints')).latest_step() == 6


def test_results_json_carries_track_level_accuracy(tiny_config, tmp_path):
  """A track (here 3 segments of one label) is scored as evaluate scores it: the mean log-probability."""
  from conftest import fake_split
  def tracked(n, seed):
    data = fake_split(n, seed)
    data['label'] = np.repeat(data['label'][::3], 3)[:n]
    data['track'] = np.array([f't{seed}.{i // 3:03d}' for i in range(n)])
    return data
  datasets = {'train': tracked(48, 0), 'validation': tracked(24, 1), 'test': tracked(30, 2)}
  results = train.train_and_evaluate(tiny_config, str(tmp_path), datasets, jax.devices()[:1])
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert saved['test'] == results['test'] and saved['test']['num_tracks'] == 10
  scores = evaluation.evaluate_checkpoints(str(tmp_path), datasets['test'], ('latest',))['latest']
  assert saved['test']['track_accuracy'] == scores['track']['accuracy']
  assert saved['test']['accuracy'] == scores['segment']['accuracy']


@pytest.mark.parametrize('key, value, message', [
    ('learning_rate', -1.0, "learning_rate=-1.0 (positive)"),
    ('num_epochs', 0, "num_epochs=0 (at least 1)"),
    ('dtype', 'float16', "dtype='float16' (float32 or bfloat16)"),
    ('label_smoothing', 1.0, "label_smoothing=1.0 (in [0, 1))"),
    ('augment.mixup_alpha', -0.2, "augment.mixup_alpha=-0.2 (not negative)"),
    ('lr_schedule', 'linear', "lr_schedule='linear' (constant or cosine)"),
])
def test_config_values_that_cannot_work_are_named(tiny_config, key, value, message):
  *parents, leaf = key.split('.')
  node = tiny_config
  for parent in parents:
    node = node[parent]
  node[leaf] = value
  with pytest.raises(ValueError) as error:
    train.check_config(tiny_config)
  assert message in str(error.value) and '\n' not in str(error.value)
