"""musicnn's tagging networks (Pons & Serra, 2019) in Flax, layer by layer as musicnn defines them.

  model = MusiCNN()                                    # MSD_musicnn / MTT_musicnn
  variables = from_checkpoint(tensors, 'MSD_musicnn')  # {TF name: array} of the wheel's checkpoint
  logits, features = model.apply(variables, x, train=False)   # x: [B, 187 frames, 96 mels]

Read from musicnn 0.1.0's `models.py` (ISC licence) and written anew: the same layers in
the same order, TF1's `tf.compat.v1.layers` defaults (BatchNorm momentum 0.99 and epsilon
1e-3 with scale and centre; 'same' padding puts the odd pixel after, as XLA's does), and
the submodules named as TF1 numbered them (`conv2d_3`, `batch_normalization_7`, ...), so
`from_checkpoint` is a rename. Inputs are musicnn's patches, [batch, time, mels] (187 x 96
for 3 s), their log-mel as `features.musicnn_log_mel` computes it; the tag probabilities are
`sigmoid(logits)`.

`features`: musicnn's intermediate outputs (musicnn: timbral, temporal, cnn1-3, mean_pool,
max_pool, penultimate; vgg: pool1-5), for probing and for the fidelity test.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

MODELS = ('MSD_musicnn', 'MTT_musicnn', 'MSD_vgg', 'MTT_vgg')
N_FRAMES, N_MELS = 187, 96
TF_BN_MOMENTUM, TF_BN_EPSILON = 0.99, 1e-3  # tf.compat.v1.layers.batch_normalization's defaults


MTT_VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))
MSD_VGG_POOLS = (((4, 1), (4, 1)), ((1, 4), (1, 4)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))


def _frequency_max(x: jax.Array) -> jax.Array:
  """[B, T, F, C] -> [B, T, C]: max over the whole frequency axis (musicnn's [1, F] max-pool)."""
  return jnp.max(x, axis=2)


class MusiCNN(nn.Module):
  """musicnn's `build_musicnn`: musically motivated front-end, dense mid-end, pooled dense back-end."""

  num_classes: int = 50
  num_filt_frontend: float = 1.6
  num_filt_midend: int = 64
  num_units_backend: int = 200
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    conv_id, bn_id, dense_id = (iter(range(100)) for _ in range(3))

    def numbered(base: str, counter) -> str:
      i = next(counter)
      return base if i == 0 else f'{base}_{i}'

    def bn(y):
      return nn.BatchNorm(use_running_average=not train, momentum=TF_BN_MOMENTUM, epsilon=TF_BN_EPSILON,
                          axis_name=self.axis_name, name=numbered('batch_normalization', bn_id))(y)

    def conv(y, filters, kernel, padding):
      return nn.relu(nn.Conv(filters, kernel, padding=padding, name=numbered('conv2d', conv_id))(y))

    def dense(y, units):
      return nn.Dense(units, name=numbered('dense', dense_id))(y)

    def pad_time(y):
      return jnp.pad(y, ((0, 0), (3, 3), (0, 0), (0, 0)))

    n_mels = x.shape[2]
    normalized = bn(x.astype(jnp.float32)[..., None])  # [B, T, F, 1]
    timbral_filters = int(self.num_filt_frontend * 128)
    f74 = _frequency_max(bn(conv(pad_time(normalized), timbral_filters, (7, int(0.4 * n_mels)), 'VALID')))
    f77 = _frequency_max(bn(conv(pad_time(normalized), timbral_filters, (7, int(0.7 * n_mels)), 'VALID')))
    temporal_filters = int(self.num_filt_frontend * 32)
    tempo = [_frequency_max(bn(conv(normalized, temporal_filters, (length, 1), 'SAME')))
             for length in (128, 64, 32)]
    frontend = jnp.concatenate([f74, f77, *tempo], axis=2)  # [B, T, 561]

    def midend_layer(y):  # [B, T, C, 1] -> [B, T, num_filt, 1]
      y = bn(conv(pad_time(y), self.num_filt_midend, (7, y.shape[2]), 'VALID'))  # [B, T, 1, num_filt]
      return jnp.transpose(y, (0, 1, 3, 2))

    cnn1 = midend_layer(frontend[..., None])
    cnn2 = midend_layer(cnn1) + cnn1
    cnn3 = midend_layer(cnn2) + cnn2
    midend = jnp.concatenate([frontend[..., None], cnn1, cnn2, cnn3], axis=2)  # [B, T, 753, 1]

    max_pool, mean_pool = jnp.max(midend, axis=1), jnp.mean(midend, axis=1)  # [B, 753, 1]
    pooled = jnp.concatenate([max_pool, mean_pool], axis=2).reshape(x.shape[0], -1)  # max, mean per feature
    pooled = nn.Dropout(0.5, deterministic=not train)(bn(pooled))
    penultimate = bn(nn.relu(dense(pooled, self.num_units_backend)))
    logits = dense(nn.Dropout(0.5, deterministic=not train)(penultimate), self.num_classes)
    features = {'timbral': jnp.concatenate([f74, f77], 2), 'temporal': jnp.concatenate(tempo, 2),
                'cnn1': cnn1[..., 0], 'cnn2': cnn2[..., 0], 'cnn3': cnn3[..., 0],
                'mean_pool': mean_pool[..., 0], 'max_pool': max_pool[..., 0], 'penultimate': penultimate}
    return logits, features


class MusicnnVGG(nn.Module):
  """musicnn's `vgg`: five 3x3 conv-BN-max-pool blocks of 128 filters, then a dense layer to the tags.

  `pools`: (window, strides) of each block's max-pool, as in the graph the weights were trained
  in: the wheel's models.py (MTT_vgg's graph) pools 4x1 with strides 2x2, then 2x2 thrice, then
  4x4, but MSD_vgg's shipped graph pools 4x1, 1x4, 2x2, 2x2, 4x4, each with strides equal to
  its window (MSD_VGG_POOLS; tests/test_musicnn.py checks both against their graphs' outputs).
  """

  num_classes: int = 50
  num_filters: int = 128
  pools: tuple = MTT_VGG_POOLS
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, dict[str, jax.Array]]:
    bn_id = iter(range(100))

    def bn(y):
      i = next(bn_id)
      return nn.BatchNorm(use_running_average=not train, momentum=TF_BN_MOMENTUM, epsilon=TF_BN_EPSILON,
                          axis_name=self.axis_name, name='batch_normalization' + (f'_{i}' if i else ''))(y)

    y = bn(x.astype(jnp.float32)[..., None])
    features = {}
    for block, (window, strides) in enumerate(self.pools, 1):
      if block > 1:
        y = nn.Dropout(0.25, deterministic=not train)(y)
      y = bn(nn.relu(nn.Conv(self.num_filters, (3, 3), padding='SAME', name=f'{block}CNN')(y)))
      y = nn.max_pool(y, window, strides=strides, padding='VALID')
      features[f'pool{block}'] = y
    y = nn.Dropout(0.5, deterministic=not train)(y.reshape(x.shape[0], -1))
    return nn.Dense(self.num_classes, name='dense')(y), features


def create(model: str, **kwargs) -> nn.Module:
  """The Flax network of one of MODELS (musicnn's `define_model`)."""
  if model not in MODELS:
    raise ValueError(f'Unknown musicnn model {model!r}; one of {", ".join(MODELS)}.')
  if model == 'MSD_vgg':
    kwargs.setdefault('pools', MSD_VGG_POOLS)
  return (MusicnnVGG if model.endswith('_vgg') else MusiCNN)(**kwargs)


def from_checkpoint(tensors: dict[str, np.ndarray], model: str, scope: str = 'model/') -> dict[str, Any]:
  """Flax variables {'params', 'batch_stats'} of `create(model)` from the checkpoint's tensors by TF name.

  Every variable of the network must be in `tensors` (optimizer slots are ignored); a missing
  one or a shape that differs is a ValueError naming it.
  """
  net = create(model)
  shapes = jax.eval_shape(functools.partial(net.init, train=False), jax.random.PRNGKey(0),
                          jnp.zeros((1, N_FRAMES, N_MELS), jnp.float32))
  tf_names = {('params', 'kernel'): 'kernel', ('params', 'bias'): 'bias', ('params', 'scale'): 'gamma',
              ('batch_stats', 'mean'): 'moving_mean', ('batch_stats', 'var'): 'moving_variance'}
  variables: dict[str, Any] = {}
  for collection, layers in shapes.items():
    for layer, leaves in layers.items():
      for leaf, shape in leaves.items():
        is_norm = layer.startswith('batch_normalization')
        tf_leaf = 'beta' if is_norm and leaf == 'bias' else tf_names[collection, leaf]
        name = f'{scope}{layer}/{tf_leaf}'
        candidates = [n for n in (name, f'{layer}/{tf_leaf}') if n in tensors]
        if not candidates:
          raise ValueError(f'{model}: the checkpoint has no tensor {name!r} (for {collection}/{layer}/{leaf}).')
        value = np.asarray(tensors[candidates[0]])
        if value.shape != shape.shape:
          raise ValueError(f'{model}: {candidates[0]} is {value.shape}, the network wants {shape.shape}.')
        variables.setdefault(collection, {}).setdefault(layer, {})[leaf] = jnp.asarray(value, shape.dtype)
  return variables
