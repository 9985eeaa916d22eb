"""Flax models over log-mel spectrograms shaped [batch, mels, frames].

Every model starts with the same per-mel-band input normalisation, with the
mean and variance of each band over the training split (kept in `batch_stats`,
so they travel with the checkpoint and predict needs no statistics file).

`VGG` is the paper's best model: pairs of 3x3 convolutions with rising width,
BatchNorm, ReLU and 2x2 max-pooling after each pair, then global average
pooling and a dense layer to the class logits (softmax lives in the loss).
With widths 32-64-128-256 it has 1.18 M parameters.

The comparison models: `CNN`, a plain small conv net (one convolution per
stage), and `LSTM` / `GRU`, recurrent nets that read a segment as a sequence
of 173 mel-spectrum frames.

Every model takes `num_classes`, `dtype` (of the activations; parameters and
logits stay float32), `axis_name` (for synchronised BatchNorm under pmap) and
`train`, so the training loop treats them all alike.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

NUM_CLASSES = 10


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """`nn.max_pool(x, (2, 2), strides=(2, 2))` with a gradient XLA:CPU runs fast ([B, H, W, C]; odd edges dropped).

  XLA:CPU lowers max_pool's gradient (select_and_scatter) to index tensors and a
  scatter, ~6x slower than this (measured by gtzan_jax.benchmark). The forward
  pass is the max of the four strided quarters of `x`; the backward pass sends
  each window's gradient to the first maximum in (row, column) order, as
  select_and_scatter does, choosing it with comparisons that make exactly one
  element of every window win.

  Why not the gradient of a reshape-and-max: JAX routes it by `x == max(x)`. In
  the compiled paper VGG on XLA:CPU no element compared equal to the max in ~17 %
  of the windows of the last two pools, so those windows passed on no gradient at
  all, silently (XLA computes the max and the comparison in different fusions; an
  optimization barrier on the pool's input did not help). tests/test_models.py
  checks every window's gradient inside the compiled model.
  """
  return _max_pool_fwd(x)[0]


def _quarters(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  return x[:, 0:h:2, 0:w:2], x[:, 0:h:2, 1:w:2], x[:, 1:h:2, 0:w:2], x[:, 1:h:2, 1:w:2]


def _max_pool_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  a, b, c, d = _quarters(x)
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d)), x


def _max_pool_bwd(x: jax.Array, g: jax.Array) -> tuple[jax.Array]:
  a, b, c, d = _quarters(x)
  first = (a >= b) & (a >= c) & (a >= d)
  second = ~first & (b >= c) & (b >= d)
  third = ~first & ~second & (c >= d)
  fourth = ~(first | second | third)
  zero = jnp.zeros_like(g)
  ga, gb, gc, gd = (jnp.where(m, g, zero) for m in (first, second, third, fourth))
  bsz, h2, w2, ch = g.shape
  top = jnp.stack([ga, gb], axis=3).reshape(bsz, h2, 2 * w2, ch)
  bottom = jnp.stack([gc, gd], axis=3).reshape(bsz, h2, 2 * w2, ch)
  dx = jnp.stack([top, bottom], axis=2).reshape(bsz, 2 * h2, 2 * w2, ch)
  return (jnp.pad(dx, ((0, 0), (0, x.shape[1] - 2 * h2), (0, x.shape[2] - 2 * w2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


def global_max_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C] maxima whose gradient goes to one argmax per channel.

  Not `jnp.max`: its gradient is routed by `x == max(x)`, which fails when XLA
  recomputes `x` with different rounding (see `max_pool_2x2`); a gather from the
  argmax always passes the whole gradient on.
  """
  flat = x.reshape(x.shape[0], -1, x.shape[-1])
  return jnp.take_along_axis(flat, jnp.argmax(flat, axis=1)[:, None], axis=1)[:, 0]


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None):
  """`lax.conv_general_dilated` for `nn.Conv`, with a fast path for the first layer on CPU.

  A stride-1 [B, H, W, 1] -> [B, H, W, C] convolution (the spectrogram's only
  channel) runs on XLA:CPU as a float32 sum of kh * kw shifted, scaled copies of
  the input, which XLA fuses into one loop. Eigen's convolution with one input
  channel took 11.6 ms for a 3x3x1x8 kernel at batch 32, the stencil 1.2 ms; on
  the 2-core CI machine this makes configs/default.py evaluate ~1.4x and train
  ~3 % faster (BENCHMARKS.md). The gradients are the convolution's own. Every
  other convolution, and every platform but CPU, goes to
  `lax.conv_general_dilated` unchanged.
  """
  one_channel = (lhs.ndim == 4 and rhs.shape[2] == 1 and feature_group_count == 1
                 and all(s == 1 for s in window_strides)
                 and all(d == 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
                 and dimension_numbers == jax.lax.conv_dimension_numbers(
                     lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC')))
  if not one_channel:
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, precision=precision)
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
  return _one_channel_conv(lhs, rhs, tuple(tuple(p) for p in padding), precision)


def _lax_conv(padding, precision, x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, precision=precision,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _stencil(padding, precision, x, kernel):
  del precision  # the sum is float32
  kh, kw = kernel.shape[:2]
  h = x.shape[1] + sum(padding[0]) - kh + 1
  w = x.shape[2] + sum(padding[1]) - kw + 1
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0))).astype(jnp.float32)
  k = kernel.astype(jnp.float32)
  out = sum(xp[:, i:i + h, j:j + w, :] * k[i, j, 0] for i in range(kh) for j in range(kw))
  return out.astype(jnp.result_type(x, kernel))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _one_channel_conv(x, kernel, padding, precision):
  return jax.lax.platform_dependent(x, kernel, cpu=functools.partial(_stencil, padding, precision),
                                    default=functools.partial(_lax_conv, padding, precision))


def _one_channel_conv_fwd(x, kernel, padding, precision):
  return _one_channel_conv(x, kernel, padding, precision), (x, kernel)


def _one_channel_conv_bwd(padding, precision, residuals, g):
  x, kernel = residuals
  return jax.vjp(functools.partial(_lax_conv, padding, precision), x, kernel)[1](g)


_one_channel_conv.defvjp(_one_channel_conv_fwd, _one_channel_conv_bwd)


class BandNorm(nn.Module):
  """Standardises each mel band with the mean and variance of the training split.

  The statistics are set once from the data (`set_band_statistics`) and are
  never updated by training; they live in `batch_stats` so that they are saved
  and restored with the checkpoint.
  """

  epsilon: float = 1e-3

  @nn.compact
  def __call__(self, x):
    # x: [B, mels, frames]
    mean = self.variable('batch_stats', 'mean', jnp.zeros, (x.shape[1],), jnp.float32)
    var = self.variable('batch_stats', 'var', jnp.ones, (x.shape[1],), jnp.float32)
    x = x.astype(jnp.float32)
    return (x - mean.value[:, None]) * jax.lax.rsqrt(var.value[:, None] + self.epsilon)


def set_band_statistics(variables, mean, var):
  """Returns `variables` with the input normalisation set to per-band (mean, var)."""
  batch_stats = dict(variables['batch_stats'])
  batch_stats['input_norm'] = {'mean': jnp.asarray(mean, jnp.float32), 'var': jnp.asarray(var, jnp.float32)}
  return {**variables, 'batch_stats': batch_stats}


class VGG(nn.Module):
  """The paper's VGG: (conv3x3-BN-ReLU) x convs_per_block, 2x2 max-pool, per width."""

  widths: Sequence[int] = (32, 64, 128, 256)
  convs_per_block: int = 2
  dropout_rate: float = 0.0
  num_classes: int = NUM_CLASSES
  dtype: Any = jnp.float32
  axis_name: str | None = None  # set to the pmap axis for synchronised BatchNorm

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = BandNorm(name='input_norm')(x)
    x = x.astype(self.dtype)[..., None]  # [B, mels, frames, 1]
    conv = functools.partial(nn.Conv, kernel_size=(3, 3), use_bias=False, dtype=self.dtype,
                             conv_general_dilated=conv_general_dilated)
    norm = functools.partial(
        nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
        dtype=self.dtype, axis_name=self.axis_name)
    for width in self.widths:
      for _ in range(self.convs_per_block):
        x = nn.relu(norm()(conv(width)(x)))
      x = max_pool_2x2(x)
    x = jnp.mean(x, axis=(1, 2))  # global average pooling
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(x)
    return x.astype(jnp.float32)


class CNN(nn.Module):
  """A plain conv net: conv-BN-ReLU and max-pooling per width, global pooling, dense."""

  widths: Sequence[int] = (16, 32, 64, 128)
  kernel_size: int = 3
  pool_size: int = 2
  global_pool: str = 'avg'  # or 'max'
  dropout_rate: float = 0.0
  num_classes: int = NUM_CLASSES
  dtype: Any = jnp.float32
  axis_name: str | None = None  # set to the pmap axis for synchronised BatchNorm

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.global_pool not in ('avg', 'max'):
      raise ValueError(f"cnn.global_pool must be 'avg' or 'max', got {self.global_pool!r}.")
    x = BandNorm(name='input_norm')(x)
    x = x.astype(self.dtype)[..., None]  # [B, mels, frames, 1]
    pool = (self.pool_size, self.pool_size)
    for width in self.widths:
      x = nn.Conv(width, (self.kernel_size, self.kernel_size), use_bias=False, dtype=self.dtype,
                  conv_general_dilated=conv_general_dilated)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype,
                       axis_name=self.axis_name)(x)
      x = nn.max_pool(nn.relu(x), pool, strides=pool)
    x = jnp.mean(x, axis=(1, 2)) if self.global_pool == 'avg' else global_max_pool(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(x)
    return x.astype(jnp.float32)


class _Recurrent(nn.Module):
  """Stacked, optionally bidirectional RNN over the time frames, pooled over time, then dense.

  A segment [mels, frames] is read as a sequence of `frames` mel vectors.
  `pooling='last'` keeps the final output of each direction (the backward
  direction ends at the first frame); `'mean'` averages the outputs over time.
  """

  cell_type: ClassVar[type[nn.RNNCellBase]]
  hidden_size: int = 128
  num_layers: int = 1
  bidirectional: bool = False
  pooling: str = 'last'  # or 'mean'
  dropout_rate: float = 0.0  # between layers and before the head
  num_classes: int = NUM_CLASSES
  dtype: Any = jnp.float32
  axis_name: str | None = None  # unused: no BatchNorm

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.pooling not in ('last', 'mean'):
      raise ValueError(f"pooling must be 'last' or 'mean', got {self.pooling!r}.")
    x = BandNorm(name='input_norm')(x)
    x = jnp.swapaxes(x, 1, 2).astype(self.dtype)  # [B, frames, mels]
    for layer in range(self.num_layers):
      if layer:
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      cell = functools.partial(self.cell_type, self.hidden_size, dtype=self.dtype)
      if self.bidirectional:
        rnn = nn.Bidirectional(nn.RNN(cell(name=f'layer{layer}_forward')),
                               nn.RNN(cell(name=f'layer{layer}_backward')))
      else:
        rnn = nn.RNN(cell(name=f'layer{layer}'))
      x = rnn(x)  # [B, frames, hidden_size * directions]
    if self.pooling == 'mean':
      x = jnp.mean(x, axis=1)
    elif self.bidirectional:
      x = jnp.concatenate([x[:, -1, :self.hidden_size], x[:, 0, self.hidden_size:]], axis=-1)
    else:
      x = x[:, -1]
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(x)
    return x.astype(jnp.float32)


class LSTM(_Recurrent):
  """`_Recurrent` with LSTM cells."""

  cell_type = nn.OptimizedLSTMCell


class GRU(_Recurrent):
  """`_Recurrent` with GRU cells."""

  cell_type = nn.GRUCell


MODELS = {'vgg': VGG, 'cnn': CNN, 'lstm': LSTM, 'gru': GRU}


def create_model(config, *, axis_name: str | None = None) -> nn.Module:
  """Builds `config.model` with its sub-config (e.g. `config.vgg`)."""
  if config.model not in MODELS:
    raise ValueError(f'Unknown model {config.model!r}; choose one of {sorted(MODELS)}.')
  kwargs = dict(config.get(config.model, {}))
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[config.dtype]
  return MODELS[config.model](dtype=dtype, axis_name=axis_name, **kwargs)
