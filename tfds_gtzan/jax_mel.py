"""The dataset's log-mel spectrogram in jax.numpy: `audio.log_mel` on any JAX device.

  mel_db = jax_mel.log_mel(segments)  # [n, 44100] float32 -> [n, 128, 173] float32 (dB)

Same definition as `tfds_gtzan.audio.log_mel` (librosa's `melspectrogram` with its
defaults: centred frames zero-padded by n_fft // 2, periodic Hann window, power 2,
Slaney mel filter bank with Slaney area normalisation; then `power_to_db` with
ref 1, amin 1e-10 and top_db 80 per segment). The filter bank is built here in
numpy, so neither this module nor its caller needs librosa: an accelerator image
with only JAX can featurise audio. tests/test_jax_mel.py checks it against librosa.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# The dataset's parameters (tests/test_jax_mel.py checks them against tfds_gtzan.audio).
SAMPLE_RATE = 22050
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 128
SEGMENT_SAMPLES = 2 * SAMPLE_RATE
FRAMES = 1 + SEGMENT_SAMPLES // HOP_LENGTH
AMIN = 1e-10
REF = 1.0
TOP_DB = 80.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
  """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
  hz = np.asarray(hz, np.float64)
  f_sp, min_log_hz = 200.0 / 3, 1000.0
  logstep = math.log(6.4) / 27.0
  return np.where(hz >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(hz, 1e-300) / min_log_hz) / logstep,
                  hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
  mel = np.asarray(mel, np.float64)
  f_sp, min_log_hz = 200.0 / 3, 1000.0
  min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
  return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
  """[n_mels, 1 + n_fft // 2] float32: `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`."""
  fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
  mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
  widths = np.diff(mel_hz)
  ramps = mel_hz[:, None] - fft_hz[None, :]
  lower = -ramps[:-2] / widths[:-1, None]
  upper = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper))
  weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]  # Slaney: constant energy per band
  return weights.astype(np.float32)


def _hann(n: int) -> np.ndarray:
  """The periodic Hann window (scipy's get_window('hann', n, fftbins=True))."""
  return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def mel_power(segments: jax.Array) -> jax.Array:
  """[n, samples] -> [n, N_MELS, frames] mel power spectrogram (librosa.feature.melspectrogram)."""
  x = jnp.pad(segments.astype(jnp.float32), ((0, 0), (N_FFT // 2, N_FFT // 2)))
  frames = 1 + (x.shape[1] - N_FFT) // HOP_LENGTH
  index = np.arange(frames)[:, None] * HOP_LENGTH + np.arange(N_FFT)[None, :]
  spectrum = jnp.fft.rfft(x[:, index] * _hann(N_FFT), axis=-1)  # [n, frames, 1 + N_FFT // 2]
  power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)
  return jnp.einsum('mf,ntf->nmt', mel_filterbank(), power, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.jit)
def log_mel(segments: jax.Array) -> jax.Array:
  """[n, SEGMENT_SAMPLES] audio -> [n, N_MELS, FRAMES] float32 dB, as `tfds_gtzan.audio.log_mel`."""
  db = 10.0 * jnp.log10(jnp.maximum(AMIN, mel_power(segments))) - 10.0 * math.log10(max(AMIN, REF))
  return jnp.maximum(db, db.max(axis=(1, 2), keepdims=True) - TOP_DB)
