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

The hand-written kernels they use instead of stock ops (the VGG's 2x2
max-pool, the first convolution's stencil on CPU, the CNN's global max-pool)
are in `xla_cpu_kernels`, each with its measured A/B or its test.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gtzan_jax.xla_cpu_kernels import conv_general_dilated, global_max_pool, max_pool_2x2

NUM_CLASSES = 10  # outputs of a model built without the data's class names (benchmarks, shapes)


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
  pool: Callable[[jax.Array], jax.Array] = max_pool_2x2  # the 2x2 max-pool (as nn.Conv takes its conv)

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
      x = self.pool(x)
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


TRANSFER_MODELS = ('musicnn',)


def create_model(config, *, axis_name: str | None = None, class_names: Sequence[str] | None = None
                 ) -> nn.Module:
  """Builds `config.model` with its sub-config (e.g. `config.vgg`), one output per class name.

  `class_names`: the data's (None: the model's default of `NUM_CLASSES` outputs, for shapes
  and benchmarks). 'musicnn' is the pretrained transfer model of `gtzan_jax.pretrained.transfer`,
  whose prior reads the names.
  """
  if config.model == 'musicnn':
    from gtzan_jax.pretrained import transfer  # pylint: disable=g-import-not-at-top
    return transfer.create(config, class_names, axis_name=axis_name)
  if config.model not in MODELS:
    raise ValueError(f'Unknown model {config.model!r}; choose one of {sorted(MODELS) + list(TRANSFER_MODELS)}.')
  kwargs = dict(config.get(config.model, {}))
  kwargs.setdefault('num_classes', len(class_names) if class_names else NUM_CLASSES)
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[config.dtype]
  return MODELS[config.model](dtype=dtype, axis_name=axis_name, **kwargs)
