"""The jax.numpy log-mel against librosa (through tfds_gtzan.audio, which the builder uses)."""

import librosa
import numpy as np

from tfds_gtzan import audio
from tfds_gtzan import jax_mel


def test_parameters_are_the_papers():
  # jax_mel and audio both take them from tfds_gtzan.melspec; these are the paper's values.
  expected = {'SAMPLE_RATE': 22050, 'N_FFT': 512, 'HOP_LENGTH': 256, 'N_MELS': 128, 'SEGMENT_SAMPLES': 44100,
              'FRAMES': 173, 'AMIN': 1e-10, 'REF': 1.0, 'TOP_DB': 80.0}
  for module in (jax_mel, audio):
    assert {name: getattr(module, name) for name in expected} == expected, module.__name__


def test_filterbank_matches_librosa():
  expected = librosa.filters.mel(sr=22050, n_fft=512, n_mels=128)
  np.testing.assert_allclose(jax_mel.mel_filterbank(), expected, rtol=1e-5, atol=1e-8)


def _segments(n=3, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(audio.SEGMENT_SAMPLES) / audio.SAMPLE_RATE
  tones = [0.3 * np.sin(2 * np.pi * f * t) for f in (110.0, 1234.5, 7000.0)]
  y = np.stack(tones[:n]) + 0.01 * rng.standard_normal((n, len(t)))
  y[-1, : len(t) // 2] = 0.0  # silence: exercises the amin floor and the top_db clip
  return y.astype(np.float32)


def test_mel_power_matches_librosa_to_a_thousandth():
  y = _segments()
  expected = librosa.feature.melspectrogram(y=y, sr=22050, n_fft=512, hop_length=256, n_mels=128)
  got = np.asarray(jax_mel.mel_power(y))
  assert got.shape == expected.shape == (3, 128, 173)
  significant = expected > 1e-6 * expected.max(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(got[significant], expected[significant], rtol=1e-3)


def test_log_mel_matches_the_builder():
  y = _segments()
  expected = audio.log_mel(y)
  got = np.asarray(jax_mel.log_mel(y))
  assert got.dtype == np.float32 and got.shape == expected.shape
  np.testing.assert_allclose(got, expected, atol=0.01)  # dB; 1e-3 relative power is 0.004 dB
