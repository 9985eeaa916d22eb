"""The comparison models (cnn, lstm, gru): configs, shapes, dtypes, BatchNorm sync, fitting a batch.

VGG's equivalents are in test_models.py and test_train.py.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cnn, gru, lstm
from gtzan_jax import input_pipeline, models, train

STUDY_CONFIGS = {'cnn': cnn, 'lstm': lstm, 'gru': gru}
TINY = {  # small versions that still use every option: kernel size, max pooling, stacking, both directions
    'cnn': dict(widths=(4, 8), kernel_size=5, global_pool='max'),
    'lstm': dict(hidden_size=8, num_layers=1, bidirectional=False, pooling='last'),
    'gru': dict(hidden_size=8, num_layers=2, bidirectional=True, pooling='last'),
}


def _tiny(config, name):
  """`config` with model `name` from its study config, made tiny by TINY."""
  config.model = name
  config[name] = STUDY_CONFIGS[name].get_config()[name]
  for key, value in TINY[name].items():
    config[name][key] = value  # a key the study config lacks is an error
  return config


def _batch(datasets, n=16):
  return {k: v[:n] for k, v in input_pipeline.model_inputs(datasets['train']).items()}


@pytest.mark.parametrize('name, num_params', [('cnn', 98_682), ('lstm', 659_978), ('gru', 496_138)])
def test_study_config_builds_its_model(name, num_params):
  config = STUDY_CONFIGS[name].get_config()
  model = models.create_model(config, axis_name='batch')
  assert config.model == name and isinstance(model, models.MODELS[name]) and model.axis_name == 'batch'
  x = jnp.zeros((1, input_pipeline.N_MELS, input_pipeline.N_FRAMES))
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0), x)
  assert sum(p.size for p in jax.tree.leaves(variables['params'])) == num_params  # as the config's docstring says


@pytest.mark.parametrize('name', sorted(STUDY_CONFIGS))
@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_logits_are_float32_per_class(name, dtype, tiny_config):
  config = _tiny(tiny_config, name)
  config.dtype = dtype
  model = models.create_model(config)
  x = jnp.zeros((3, input_pipeline.N_MELS, input_pipeline.N_FRAMES))
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0), x)
  assert variables['batch_stats']['input_norm']['mean'].shape == (input_pipeline.N_MELS,)
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32


@pytest.mark.parametrize('name', sorted(STUDY_CONFIGS))
def test_ten_steps_on_a_fixed_batch_fit_it(name, tiny_config, fake_datasets):
  config = _tiny(tiny_config, name)
  config.learning_rate = 1e-2
  batch = _batch(fake_datasets)
  model = models.create_model(config)
  state = train.create_train_state(jax.random.PRNGKey(0), config, model, 10,
                                   input_pipeline.band_statistics(batch['mel']))
  step = jax.jit(functools.partial(train.train_step, axis_name=None))
  losses = []
  for _ in range(10):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert np.all(np.diff(losses) < 0) and losses[-1] < 0.85 * losses[0], losses


def test_cnn_batchnorm_is_synchronised_over_axis_name(tiny_config, fake_datasets):
  """BatchNorm over `axis_name` on two shards of a batch normalises like one model with the whole batch.

  The shards are mapped with `vmap`, whose named axis carries the same collectives as pmap's.
  """
  model = models.create_model(_tiny(tiny_config, 'cnn'))
  sharded = models.create_model(tiny_config, axis_name='batch')
  x = jnp.asarray(_batch(fake_datasets, 8)['mel'][:, :32, :32], jnp.float32)  # any [mels, frames] size works
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  logits, _ = model.apply(variables, x, train=True, mutable=['batch_stats'])
  sharded_logits, _ = jax.vmap(functools.partial(sharded.apply, train=True, mutable=['batch_stats']),
                               in_axes=(None, 0), axis_name='batch')(variables, x.reshape(2, 4, *x.shape[1:]))
  np.testing.assert_allclose(sharded_logits.reshape(logits.shape), logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('model', [models.CNN(global_pool='median'), models.GRU(pooling='max')])
def test_unknown_pooling_is_a_clear_error(model):
  with pytest.raises(ValueError, match='median|max'):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 128, 173)), train=False)
