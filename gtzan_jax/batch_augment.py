"""Augmentation of a batch inside the compiled train step: SpecAugment masks and mixup.

The paper's audio augmentation is slow and is made once by the dataset builder
(`tfds_gtzan.augment`); these two run on the device, on every step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _span_masks(rng: jax.Array, batch: int, count: int, max_width: int, size: int) -> jax.Array:
  """[batch, size] booleans: `count` spans per row, each of width U{0..max_width} at a uniform start."""
  width_rng, start_rng = jax.random.split(rng)
  width = jax.random.randint(width_rng, (batch, count, 1), 0, min(max_width, size) + 1)
  start = jnp.floor(jax.random.uniform(start_rng, (batch, count, 1)) * (size - width + 1)).astype(jnp.int32)
  position = jnp.arange(size)
  return jnp.any((position >= start) & (position < start + width), axis=1)


def spec_augment(rng: jax.Array, mel: jax.Array, fill: jax.Array, *, time_masks: int, time_mask_width: int,
                 freq_masks: int, freq_mask_width: int) -> jax.Array:
  """SpecAugment's time and frequency masking of `mel` [B, mels, frames], masked cells set to `fill` [mels].

  With `fill` the training split's per-band mean, a masked cell becomes 0 after
  the model's input normalisation, as in SpecAugment on normalised features.
  """
  batch, mels, frames = mel.shape
  time_rng, freq_rng = jax.random.split(rng)
  masked = jnp.zeros((batch, mels, frames), bool)
  if time_masks:
    masked |= _span_masks(time_rng, batch, time_masks, time_mask_width, frames)[:, None, :]
  if freq_masks:
    masked |= _span_masks(freq_rng, batch, freq_masks, freq_mask_width, mels)[:, :, None]
  return jnp.where(masked, fill.astype(mel.dtype)[None, :, None], mel)


def mixup(rng: jax.Array, mel: jax.Array, targets: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
  """Mixes each example with another of the (per-device) batch by one lambda ~ Beta(alpha, alpha)."""
  lam_rng, perm_rng = jax.random.split(rng)
  lam = jax.random.beta(lam_rng, alpha, alpha)
  perm = jax.random.permutation(perm_rng, mel.shape[0])
  mixed = lam * mel.astype(jnp.float32) + (1 - lam) * mel[perm].astype(jnp.float32)
  return mixed.astype(mel.dtype), lam * targets + (1 - lam) * targets[perm]
