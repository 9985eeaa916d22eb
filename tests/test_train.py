"""Train step, data parallelism (pmap / jit over 8 fake CPU devices) and resumption."""

import functools
import json
import os

import jax
import numpy as np
import pytest

from gtzan_jax import checkpointing, input_pipeline, models, train
from gtzan_jax.parallel import DataParallel


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
  for key in ('step', 'epochs', 'platform', 'device_count', 'config', 'validation', 'test'):
    assert key in saved
  assert set(saved['test']) >= {'accuracy', 'loss', 'num_examples'} and saved['test']['num_examples'] == 24


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
  eval_step = par.compile(functools.partial(train.eval_step, axis_name=None), donate_state=False)
  data = {k: v[:21] for k, v in fake_datasets['test'].items()}  # 21 = one full batch of 16 + 5 padded
  metrics = train.evaluate(par, eval_step, state, data, 16)
  assert metrics['num_examples'] == 21
  log_probs = np.asarray(train.log_probs_fn(par.get_state(state), data['mel'].astype(np.float32)))
  np.testing.assert_allclose(metrics['accuracy'], np.mean(log_probs.argmax(-1) == data['label']), atol=1e-6)
  nll = -log_probs[np.arange(21), data['label']].mean()
  np.testing.assert_allclose(metrics['loss'], nll, rtol=1e-4)
