"""The dataset's log-mel spectrogram in jax.numpy: `audio.log_mel` on any JAX device.

  mel_db = jax_mel.log_mel(segments)  # [n, 44100] float32 -> [n, 128, 173] float32 (dB)

Same definition as `tfds_gtzan.audio.log_mel` (librosa's `melspectrogram` with its
defaults: centred frames zero-padded by n_fft // 2, periodic Hann window, power 2,
Slaney mel filter bank with Slaney area normalisation; then `power_to_db` with
ref 1, amin 1e-10 and top_db 80 per segment). The filter bank comes from
`tfds_gtzan.melspec` (numpy), so neither this module nor its caller needs librosa:
an accelerator image with only JAX can featurise audio. tests/test_jax_mel.py checks it against librosa.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from tfds_gtzan import melspec
# The dataset's parameters and filter bank (numpy only: no librosa needed).
# pylint: disable-next=unused-import
from tfds_gtzan.melspec import (AMIN, FRAMES, HOP_LENGTH, N_FFT, N_MELS, REF, SAMPLE_RATE,
                                SEGMENT_SAMPLES, TOP_DB, mel_filterbank)


def mel_power(segments: jax.Array) -> jax.Array:
  """[n, samples] -> [n, N_MELS, frames] mel power spectrogram (librosa.feature.melspectrogram)."""
  x = jnp.pad(segments.astype(jnp.float32), ((0, 0), (N_FFT // 2, N_FFT // 2)))
  frames = 1 + (x.shape[1] - N_FFT) // HOP_LENGTH
  index = np.arange(frames)[:, None] * HOP_LENGTH + np.arange(N_FFT)[None, :]
  spectrum = jnp.fft.rfft(x[:, index] * melspec.hann_window(N_FFT), axis=-1)  # [n, frames, 1 + N_FFT // 2]
  power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)
  return jnp.einsum('mf,ntf->nmt', mel_filterbank(), power, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.jit)
def log_mel(segments: jax.Array) -> jax.Array:
  """[n, SEGMENT_SAMPLES] audio -> [n, N_MELS, FRAMES] float32 dB, as `tfds_gtzan.audio.log_mel`."""
  db = 10.0 * jnp.log10(jnp.maximum(AMIN, mel_power(segments))) - 10.0 * math.log10(max(AMIN, REF))
  return jnp.maximum(db, db.max(axis=(1, 2), keepdims=True) - TOP_DB)
