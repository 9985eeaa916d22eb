"""Model shapes, parameter counts and the input normalisation."""

import contextlib
import functools
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs import paper
from gtzan_jax import models, xla_cpu_flags, xla_cpu_kernels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _init(model, batch=2):
  x = jnp.zeros((batch, 128, 173))
  return model.init(jax.random.PRNGKey(0), x, train=False), x


def test_vgg_output_shape_and_dtype():
  model = models.VGG(widths=(4, 8))
  variables, x = _init(model, batch=3)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32


def test_paper_vgg_has_1_18m_parameters():
  model = models.create_model(paper.get_config())  # shapes only: initialising the paper VGG on CPU takes ~20 s
  variables = jax.eval_shape(lambda rng: model.init(rng, jnp.zeros((1, 128, 173)), train=False),
                             jax.random.PRNGKey(0))
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
    variables = jax.eval_shape(lambda x, c=config: models.create_model(c, class_names=('rock', 'jazz', 'x')).init(
        jax.random.PRNGKey(0), x, train=False),
                               jnp.zeros((2, 128, 173)))
    assert 'params' in variables, name


class _ProbedVGG(nn.Module):
  """`models.VGG`'s layers and pool, with zero perturbations around each pool, to read its gradients."""

  widths: tuple[int, ...]

  @nn.compact
  def __call__(self, x):
    x = models.BandNorm(name='input_norm')(x)[..., None]
    for i, width in enumerate(self.widths):
      for _ in range(2):
        x = nn.relu(nn.BatchNorm(use_running_average=False)(nn.Conv(width, (3, 3), use_bias=False)(x)))
      x = self.perturb(f'into_pool{i}', x)
      x = self.perturb(f'out_of_pool{i}', models.VGG.pool(x))  # the pool the VGG uses
    return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))


def test_pool_gradients_keep_every_windows_gradient_inside_the_model():
  """Each 2x2 window passes on exactly the gradient of its output, within the compiled model.

  A reshape-and-max pool lost the gradient of ~17 % of the windows of the paper VGG's
  last pools this way on XLA:CPU: JAX routes its gradient by `x == max(x)`, and in
  those windows no element compared equal to the max.
  """
  model = _ProbedVGG(widths=(32, 64, 128, 256))
  mel = jax.random.normal(jax.random.PRNGKey(0), (4, 128, 173)) * 10.0 - 40.0
  variables = model.init(jax.random.PRNGKey(1), mel)
  variables = models.set_band_statistics(variables, np.full(128, -40.0), np.full(128, 100.0))
  labels = jnp.arange(4) % 10

  def loss(perturbations):
    logits, _ = model.apply({**variables, 'perturbations': perturbations}, mel, mutable=['batch_stats'])
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), labels])

  grads = jax.jit(jax.grad(loss))(variables['perturbations'])
  for i in range(4):
    into, out = np.asarray(grads[f'into_pool{i}']), np.asarray(grads[f'out_of_pool{i}'])
    b, h, w, c = out.shape
    window_sums = into[:, :2 * h, :2 * w].reshape(b, h, 2, w, 2, c).sum(axis=(2, 4))
    lost = np.abs(window_sums - out) > 1e-5 * np.abs(out).max()
    assert not lost.any(), f'pool {i}: {lost.sum()} of {lost.size} windows lost their gradient'


def test_global_max_pool_is_the_max_and_passes_the_whole_gradient():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 7, 4))
  y, vjp = jax.vjp(xla_cpu_kernels.global_max_pool, x)
  np.testing.assert_array_equal(y, jnp.max(x, axis=(1, 2)))
  g = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
  (dx,) = vjp(g)
  np.testing.assert_allclose(dx.sum(axis=(1, 2)), g, rtol=1e-6)
  assert ((dx != 0).sum(axis=(1, 2)) == 1).all()


def _assert_conv_matches_lax(x, features, kernel_size, what):
  """nn.Conv with xla_cpu_kernels.conv_general_dilated against nn.Conv's own: values and gradients."""
  def loss(module, variables, x):
    return jnp.sum(jnp.sin(module.apply(variables, x)))

  ours = nn.Conv(features, kernel_size, conv_general_dilated=xla_cpu_kernels.conv_general_dilated)
  ref = nn.Conv(features, kernel_size)
  variables = ours.init(jax.random.PRNGKey(1), x)
  np.testing.assert_allclose(jax.jit(ours.apply)(variables, x), ref.apply(variables, x), atol=1e-5, err_msg=what)
  grads = jax.jit(jax.grad(functools.partial(loss, ours), (0, 1)))(variables, x)
  expected = jax.grad(functools.partial(loss, ref), (0, 1))(variables, x)
  for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
    np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5, err_msg=what)


def test_one_channel_conv_matches_lax_in_values_and_gradients():
  """The first layer's stencil (XLA:CPU) against nn.Conv's own convolution, even kernels included.

  (No pytest.mark here: scripts/gpu_session.sh imports this file where pytest may be missing.)
  """
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 17, 1))
  for kernel_size in [(3, 3), (5, 5), (4, 4), (2, 3)]:
    _assert_conv_matches_lax(x, 4, kernel_size, f'kernel {kernel_size}')


def test_one_channel_conv_bfloat16_sums_in_float32():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 17, 1))
  ours = nn.Conv(4, (3, 3), dtype=jnp.bfloat16, conv_general_dilated=xla_cpu_kernels.conv_general_dilated)
  variables = ours.init(jax.random.PRNGKey(1), x)
  y = jax.jit(ours.apply)(variables, x)
  rounded = jax.tree.map(lambda v: v.astype(jnp.bfloat16).astype(jnp.float32), (variables, x))
  exact = nn.Conv(4, (3, 3)).apply(*rounded)  # float32 sums of the same bfloat16 inputs
  assert y.dtype == jnp.bfloat16
  # One rounding of the float32 sum to bfloat16: within half a bfloat16 ulp (2^-9 relative).
  np.testing.assert_allclose(y.astype(jnp.float32), exact, rtol=2.0 ** -8, atol=1e-6)


def test_one_channel_conv_is_a_stencil_on_cpu_and_other_convs_stay_convolutions():
  def hlo(in_channels, platform='cpu'):
    x = jnp.zeros((2, 12, 17, in_channels))
    conv = nn.Conv(4, (3, 3), conv_general_dilated=xla_cpu_kernels.conv_general_dilated)
    variables = conv.init(jax.random.PRNGKey(0), x)
    if platform == 'cpu':
      return jax.jit(conv.apply).lower(variables, x).as_text()
    return jax.export.export(jax.jit(conv.apply), platforms=[platform])(variables, x).mlir_module()

  # The op's name, not the word: the exported text carries source locations, and this test's name
  # has "convolutions" in it.
  conv_op = 'stablehlo.convolution'
  assert jax.default_backend() == 'cpu'  # the suite runs on CPU
  assert conv_op not in hlo(1)
  assert conv_op in hlo(2)
  # Lowered for a GPU (no GPU needed), the first layer stays a convolution for cuDNN.
  assert conv_op in hlo(1, 'cuda') and conv_op in hlo(1, 'rocm')


@contextlib.contextmanager
def _ynn_flag(inference: bool):
  """XLA_FLAGS with predict's YNNPACK flag (or training's) last, for the kernels chosen while tracing.

  XLA itself read its flags when the suite started; only xla_cpu_kernels' choice changes.
  """
  before = os.environ.get('XLA_FLAGS')
  flag = xla_cpu_flags.INFERENCE_XLA_FLAG if inference else xla_cpu_flags.CPU_XLA_FLAGS[0]
  os.environ['XLA_FLAGS'] = f'{before or ""} {flag}'.strip()
  try:
    assert xla_cpu_flags.ynn_takes_convolutions() == inference
    yield
  finally:
    if before is None:
      del os.environ['XLA_FLAGS']
    else:
      os.environ['XLA_FLAGS'] = before


def test_a_rows_few_channel_conv_pairs_or_strides_columns_with_lax_values_and_gradients():
  """One row's convolution on few channels (tagging's per-row forward), odd and even widths."""
  with _ynn_flag(inference=False):  # pairs of columns
    for h, w, c, out in [(6, 9, 8, 8), (4, 7, 2, 3), (3, 1, 8, 4), (2, 2, 5, 8)]:
      x = jax.random.normal(jax.random.PRNGKey(0), (1, h, w, c))
      _assert_conv_matches_lax(x, out, (3, 3), f'pairs {(h, w, c, out)}')
  with _ynn_flag(inference=True):  # strided columns, s output columns a step (width not a multiple of s too)
    for h, w, c, out, kernel_size in [(6, 9, 8, 8, (3, 3)), (5, 8, 8, 16, (3, 3)), (6, 9, 16, 16, (3, 3)),
                                      (3, 4, 12, 5, (3, 3)), (7, 5, 16, 1, (3, 3)), (3, 1, 8, 4, (3, 3)),
                                      (5, 11, 4, 6, (2, 5)), (4, 7, 2, 3, (4, 4))]:
      x = jax.random.normal(jax.random.PRNGKey(0), (1, h, w, c))
      _assert_conv_matches_lax(x, out, kernel_size, f'strided {(h, w, c, out, kernel_size)}')


def test_only_a_single_rows_few_channel_conv_on_cpu_pairs_or_strides_columns():
  def kernels(batch, in_channels, out, platform='cpu', width=17):
    x = jnp.zeros((batch, 12, width, in_channels))  # each width traced apart: the flags are read while tracing
    conv = nn.Conv(out, (3, 3), conv_general_dilated=xla_cpu_kernels.conv_general_dilated)
    variables = conv.init(jax.random.PRNGKey(0), x)
    if platform == 'cpu':
      text = jax.jit(conv.apply).lower(variables, x).as_text()
    else:
      text = jax.export.export(jax.jit(conv.apply), platforms=[platform])(variables, x).mlir_module()
    return re.findall(r'stablehlo.convolution.*?tensor<[^>]*>, tensor<(\w+)>', text)

  with _ynn_flag(inference=False):  # training's flags: Eigen's convolutions
    assert kernels(1, 8, 8) == ['3x1x32x16xf32']  # the pair and its two neighbours' columns, 3x1
    assert kernels(1, 8, 16) == ['3x3x8x16xf32']  # more outputs: XLA's own (Eigen)
    assert kernels(1, 16, 16) == ['3x3x16x16xf32']
    assert kernels(2, 8, 8) == ['3x3x8x8xf32']  # a batch: XLA's own
    assert kernels(1, 8, 8, 'cuda') == ['3x3x8x8xf32']  # on a GPU: cuDNN's
  with _ynn_flag(inference=True):  # strided columns, s C_out >= 17 outputs for YNNPACK
    assert kernels(1, 8, 8, width=15) == ['3x5x8x24xf32']  # 3 columns a step
    assert kernels(1, 8, 16, width=15) == ['3x4x8x32xf32']  # 2 columns a step
    assert kernels(1, 16, 16, width=15) == ['3x4x16x32xf32']
    assert kernels(1, 16, 32, width=15) == ['3x3x16x32xf32']  # YNNPACK takes it as it is
    assert kernels(2, 16, 16, width=15) == ['3x3x16x16xf32']  # a batch: XLA's own
    assert kernels(1, 16, 16, 'cuda', width=15) == ['3x3x16x16xf32']


def test_this_file_imports_without_pytest():
  """scripts/gpu_session.sh runs the pool check above from this file, on images that may lack pytest."""
  code = "import sys; sys.modules['pytest'] = None; sys.path.insert(0, 'tests'); import test_models"
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
