"""Transfer from musicnn: its pretrained network under a genre head that keeps what its tags know.

  config.model = 'musicnn'; config.features = 'musicnn'   # configs/musicnn_probe.py, musicnn_finetune.py
  model = create(config, class_names)                     # via models.create_model

`MusicnnClassifier` = the pretrained network (MSD_musicnn by default, weights from
`weights.load`) + a head. For a batch of patches the network gives its 50 tag logits and
the pooled mid-level features (mean and max over time of each of its 753 features, the
input of its own dense back-end). The head mixes two class distributions:

  p = (softmax(W . standardise(pooled) + b) + prior_weight * q) / (1 + prior_weight)

where q is the **tag prior**: each class scored by the summed probability of the MSD tags
that name it (`GENRE_TAGS`, matched by class name; classes with no tag score 0), normalised
over the classes. The probe (W, b) is trained through the mixture, so it learns what the
tags do not know (disco and reggae have no MSD tag; gtzan_mini's country) and leaves alone
what they do (a head fit to gtzan_mini's ten rock clips alone calls most unheard rock
country: docs/study.md). The model's "logits" are log p, so the trainer's cross-entropy and
every evaluation path treat it like any other model.

Two ways to train it (`config.musicnn.train_backbone`):
  * probe (False): the network is frozen; the trainer computes each training patch's
    embedding (tag logits + pooled features) once (`embed_split`, cached in the workdir) and
    the step trains the head on them. Validation, test, evaluate and predict run the whole
    network on log-mel patches.
  * fine-tune (True): the whole network trains on log-mel patches, the pretrained part at
    `backbone_lr_scale` times the learning rate (optax.multi_transform). With
    `freeze_batch_norm` the network runs in inference mode while training (its MSD BatchNorm
    statistics, no dropout); otherwise its BatchNorm adapts to the batches and dropout is on.

The head's L2 penalty (`head_l2`, on W only) is added to the gradient before Adam
(optax.add_decayed_weights(2 * head_l2)), i.e. head_l2 * ||W||^2 in the loss.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from gtzan_jax import models
from gtzan_jax.pretrained import musicnn
from gtzan_jax.pretrained import weights

MSD_TAGS = ('rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
            'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock',
            'soul', 'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental',
            'punk', 'oldies', 'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist',
            'guitar', 'Hip-Hop', '70s', 'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk',
            'electro', 'heavy metal', 'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy')
# A class name (lower case, '-' and ' ' ignored) -> the MSD tags that name it (issue 20's mapping).
GENRE_TAGS = {
    'blues': ('blues',), 'classical': ('instrumental', 'ambient'), 'country': ('country',),
    'hiphop': ('Hip-Hop',), 'jazz': ('jazz',), 'metal': ('metal', 'heavy metal'), 'pop': ('pop',),
    'rock': ('rock', 'classic rock', 'hard rock', 'alternative rock', 'indie rock', 'Progressive rock', 'punk'),
    'folk': ('folk',), 'electronic': ('electronic', 'electronica', 'electro'), 'soul': ('soul',),
    'funk': ('funk',), 'rnb': ('rnb',), 'punk': ('punk',), 'house': ('House',),
}
BACKBONES = ('MSD_musicnn',)
NUM_TAGS = len(MSD_TAGS)


def _key(name: str) -> str:
  return name.lower().replace('-', '').replace(' ', '').replace('_', '')


def tag_prior_matrix(class_names: Sequence[str]) -> np.ndarray:
  """[50 tags, classes] 0/1: which MSD tags score each class (`GENRE_TAGS` by name)."""
  matrix = np.zeros((NUM_TAGS, len(class_names)), np.float32)
  for c, name in enumerate(class_names):
    for tag in GENRE_TAGS.get(_key(name), ()):
      matrix[MSD_TAGS.index(tag), c] = 1.0
  return matrix


class MusicnnClassifier(nn.Module):
  """musicnn's network and the prior-and-probe head (module docstring).

  Inputs: log-mel patches [B, 96 mels, 187 frames] (the dataset's `musicnn` features), or
  embeddings [B, 50 + 1506] (`embed`'s output), on which only the head runs.
  """

  num_classes: int
  prior: tuple  # tag_prior_matrix as nested tuples (a module field must be hashable)
  backbone: str = 'MSD_musicnn'
  prior_weight: float = 1.0
  train_backbone: bool = False
  freeze_batch_norm: bool = True
  axis_name: str | None = None

  def setup(self):
    self.net = musicnn.create(self.backbone, axis_name=self.axis_name)
    self.embedding_norm = models.BandNorm()  # per feature, with the training embeddings' statistics
    self.head = nn.Dense(self.num_classes)

  def embed(self, mel: jax.Array, *, train: bool = False) -> jax.Array:
    """[B, 50 + 1506]: the network's tag logits, then its pooled features (mean over time, then max)."""
    network_train = train and self.train_backbone and not self.freeze_batch_norm
    tag_logits, features = self.net(jnp.swapaxes(mel.astype(jnp.float32), 1, 2), train=network_train)
    return jnp.concatenate([tag_logits, features['mean_pool'], features['max_pool']], axis=-1)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    embedding = self.embed(x, train=train) if x.ndim == 3 else x
    if not self.train_backbone:
      embedding = jax.lax.stop_gradient(embedding)
    tag_logits, pooled = embedding[:, :NUM_TAGS], embedding[:, NUM_TAGS:]
    probe = jax.nn.softmax(self.head(self.embedding_norm(pooled[:, :, None])[:, :, 0]))
    prior = jnp.asarray(np.asarray(self.prior, np.float32))
    scores = jax.nn.sigmoid(tag_logits) @ prior
    total = scores.sum(-1, keepdims=True)
    weight = self.prior_weight * (total > 0)  # no class has a tag: the probe alone
    q = scores / jnp.maximum(total, 1e-6)
    return jnp.log((probe + weight * q) / (1 + weight) + 1e-12)


def create(config: ml_collections.ConfigDict, class_names: Sequence[str] | None,
           axis_name: str | None = None) -> MusicnnClassifier:
  """The classifier of `config.musicnn` for `class_names` (the data's; the tag prior reads them)."""
  if not class_names:
    raise ValueError("model='musicnn' needs the data's class names: its tag prior matches them to MSD tags.")
  options = config.get('musicnn') or ml_collections.ConfigDict()
  backbone = options.get('backbone', 'MSD_musicnn')
  if backbone not in BACKBONES:
    raise ValueError(f'config.musicnn.backbone={backbone!r}: one of {", ".join(BACKBONES)}.')
  class_names = list(class_names)
  prior = tag_prior_matrix(class_names)
  return MusicnnClassifier(
      num_classes=len(class_names), prior=tuple(map(tuple, prior.tolist())), backbone=backbone,
      prior_weight=float(options.get('prior_weight', 1.0)),
      train_backbone=bool(options.get('train_backbone', False)),
      freeze_batch_norm=bool(options.get('freeze_batch_norm', True)), axis_name=axis_name)


def with_pretrained(variables: dict[str, Any], model: MusicnnClassifier) -> dict[str, Any]:
  """`variables` with the network's parameters and BatchNorm statistics set to musicnn's weights."""
  loaded = musicnn.from_checkpoint(weights.load(model.backbone), model.backbone)
  return {**variables,
          'params': {**variables['params'], 'net': loaded['params']},
          'batch_stats': {**variables['batch_stats'], 'net': loaded['batch_stats']}}


def set_embedding_statistics(batch_stats: dict[str, Any], embeddings: np.ndarray) -> dict[str, Any]:
  """`batch_stats` with the head's standardisation set to the pooled features' mean and variance."""
  pooled = np.asarray(embeddings[:, NUM_TAGS:], np.float64)
  return {**batch_stats, 'embedding_norm': {'mean': jnp.asarray(pooled.mean(0), jnp.float32),
                                            'var': jnp.asarray(pooled.var(0), jnp.float32)}}


def optimizer(config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule,
              params: dict[str, Any]) -> optax.GradientTransformation:
  """Adam on the head (with its L2 on W); the network frozen (probe) or at a scaled rate (fine-tune)."""
  options = config.get('musicnn') or ml_collections.ConfigDict()
  head_l2 = float(options.get('head_l2', 0.0))
  def decay_mask(tree):  # the head's kernel (W): not its bias, not the network
    return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key == 'head' and path[-1].key == 'kernel',
                                            tree)

  head = optax.chain(optax.add_decayed_weights(2 * head_l2, mask=decay_mask), optax.adam(learning_rate_fn))
  if options.get('train_backbone', False):
    scale = float(options.get('backbone_lr_scale', 0.1))
    net = optax.adam(lambda step: scale * learning_rate_fn(step))
  else:
    net = optax.set_to_zero()
  labels = {k: ('net' if k == 'net' else 'head') for k in params}
  return optax.multi_transform({'net': net, 'head': head}, labels)


def embed_fn(state, mel: jax.Array) -> jax.Array:
  """Embeddings [B, 50 + 1506] of a batch of patches, the network in inference mode."""
  return state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats}, mel,
                        method=MusicnnClassifier.embed)


def embed_split(state, mel: np.ndarray, batch_size: int, cache_dir: str | None, key: dict[str, Any]
                ) -> np.ndarray:
  """Embeddings of `mel` [N, 96, 187] on this process's first device, cached in `cache_dir`.

  The cache file is named by a digest of `key` (what identifies the data and the network)
  and of the input's shape; a file of another key is never read.
  """
  from gtzan_jax import evaluation  # pylint: disable=g-import-not-at-top  (evaluation imports models)
  from gtzan_jax.parallel import DataParallel  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256(json.dumps([key, list(mel.shape)], sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]
  path = os.path.join(cache_dir, f'embeddings_{digest}.npy') if cache_dir else None
  if path and os.path.exists(path):
    cached = np.load(path)
    if cached.shape[0] == len(mel):
      logging.info('Reusing the cached embeddings %s.', path)
      return cached
  evaluator = evaluation.Evaluator(DataParallel('jit', jax.local_devices()[:1]), batch_size, fn=embed_fn)
  start = time.perf_counter()
  embeddings = evaluator.apply(jax.device_put(state, jax.local_devices()[0]), mel)
  logging.info('Embedded %d patches with %s in %.1f s (compilation included).', len(mel), key.get('backbone'),
               time.perf_counter() - start)
  if path and jax.process_index() == 0:
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}.npy'
    np.save(tmp, embeddings)
    os.replace(tmp, path)
  return embeddings
