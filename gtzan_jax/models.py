"""Flax models over log-mel spectrograms shaped [batch, mels, frames].

Every model starts with the same per-mel-band input normalisation, with the
mean and variance of each band over the training split (kept in `batch_stats`,
so they travel with the checkpoint and predict needs no statistics file).

`VGG` is the paper's best model: pairs of 3x3 convolutions with rising width,
BatchNorm, ReLU and 2x2 max-pooling after each pair, then global average
pooling and a dense layer to the class logits (softmax lives in the loss).
With widths 32-64-128-256 it has 1.18 M parameters.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

NUM_CLASSES = 10


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
    conv = functools.partial(nn.Conv, kernel_size=(3, 3), use_bias=False, dtype=self.dtype)
    norm = functools.partial(
        nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
        dtype=self.dtype, axis_name=self.axis_name)
    for width in self.widths:
      for _ in range(self.convs_per_block):
        x = nn.relu(norm()(conv(width)(x)))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = jnp.mean(x, axis=(1, 2))  # global average pooling
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(x)
    return x.astype(jnp.float32)


MODELS = {'vgg': VGG}


def create_model(config, *, axis_name: str | None = None) -> nn.Module:
  """Builds `config.model` with its sub-config (e.g. `config.vgg`)."""
  if config.model not in MODELS:
    raise ValueError(f'Unknown model {config.model!r}; choose one of {sorted(MODELS)}.')
  kwargs = dict(config.get(config.model, {}))
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[config.dtype]
  return MODELS[config.model](dtype=dtype, axis_name=axis_name, **kwargs)
