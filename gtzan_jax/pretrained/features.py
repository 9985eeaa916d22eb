"""musicnn's input features: 16 kHz, n_fft 512, hop 256, 96 mels (librosa's default mel), log10(1 + 10000 x).

  patches = log_mel_patches(load_16k('song.wav'))   # [n, 187, 96] float32: non-overlapping 3 s

As musicnn's extractor computes them but for one thing: it casts the mel to float16 before
the log, where 10000 x overflows (measured with librosa 0.11 on GTZAN clips: 0.8 % of values
inf, 78 % of 3 s patches holding one, and MSD_musicnn then returns NaN for all of those). Here
the log is taken in float32, where values stay below ~6.6.

The computation lives in `tfds_gtzan.feature_sets` (the 'musicnn' feature set of the
`gtzan_mel` builder, which stores these patches transposed, [96, 187] float16); these are
thin wrappers with musicnn's time-first layout.
"""

from __future__ import annotations

import numpy as np

from tfds_gtzan import audio
from tfds_gtzan import feature_sets

SAMPLE_RATE = feature_sets.MUSICNN_SAMPLE_RATE
N_FFT = feature_sets.MUSICNN_N_FFT
HOP_LENGTH = feature_sets.MUSICNN_HOP_LENGTH
N_MELS = feature_sets.MUSICNN_N_MELS
PATCH_FRAMES = feature_sets.MUSICNN_PATCH_FRAMES  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1


def load_16k(path: str, max_seconds: float | None = None) -> np.ndarray:
  """Mono float32 at 16 kHz (`tfds_gtzan.audio.load_audio`: its checks and one-line errors)."""
  return audio.load_audio(path, sr=SAMPLE_RATE, max_seconds=max_seconds)


def log_mel(y: np.ndarray) -> np.ndarray:
  """[frames, 96] float32: musicnn's representation of 16 kHz mono `y`, the log taken in float32."""
  return feature_sets.musicnn_log_mel(y)


def log_mel_patches(y: np.ndarray, frames: int = PATCH_FRAMES) -> np.ndarray:
  """[n, frames, 96]: the non-overlapping `frames`-long patches of `log_mel(y)` from the start."""
  return feature_sets.musicnn_log_mel_patches(y, frames)
