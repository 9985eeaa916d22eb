"""Model shapes, parameter counts and the input normalisation."""

import jax
import jax.numpy as jnp
import numpy as np

from configs import paper
from gtzan_jax import models


def _init(model, batch=2):
  x = jnp.zeros((batch, 128, 173))
  return model.init(jax.random.PRNGKey(0), x, train=False), x


def test_vgg_output_shape_and_dtype():
  model = models.VGG(widths=(4, 8))
  variables, x = _init(model, batch=3)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32


def test_paper_vgg_has_1_18m_parameters():
  variables, _ = _init(models.create_model(paper.get_config()))
  n = sum(x.size for x in jax.tree.leaves(variables['params']))
  assert 1.17e6 < n < 1.19e6, n


def test_band_statistics_standardise_each_mel_band():
  variables, _ = _init(models.VGG(widths=(4,)))
  mean, var = np.arange(128.0), np.full(128, 4.0)
  stats = models.set_band_statistics(variables, mean, var)['batch_stats']['input_norm']
  x = jnp.asarray(mean)[None, :, None] + 2.0 * jnp.asarray([-1.0, 1.0])[None, None, :]  # mean -/+ 1 std
  normed = models.BandNorm().apply({'batch_stats': stats}, x)
  np.testing.assert_allclose(normed[0, :, 0], -1.0, atol=1e-3)
  np.testing.assert_allclose(normed[0, :, 1], 1.0, atol=1e-3)


def test_unknown_model_is_a_clear_error():
  config = paper.get_config()
  config.model = 'resnet'
  try:
    models.create_model(config)
  except ValueError as e:
    assert 'resnet' in str(e) and 'vgg' in str(e)
  else:
    raise AssertionError('expected ValueError')


def test_every_config_file_builds_its_model():
  """Each configs/*.py loads and its model initialises on the 128 x 173 input (shapes only)."""
  import glob
  import importlib
  import os
  from tests.conftest import REPO
  names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, 'configs', '*.py'))
                 if not p.endswith('__init__.py'))
  assert {'default', 'paper', 'synthetic', 'small_data', 'cnn', 'lstm', 'gru'} <= set(names)
  for name in names:
    config = importlib.import_module(f'configs.{name}').get_config()
    variables = jax.eval_shape(lambda x, c=config: models.create_model(c).init(jax.random.PRNGKey(0), x, train=False),
                               jnp.zeros((2, 128, 173)))
    assert 'params' in variables, name
