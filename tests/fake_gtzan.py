"""A small fake GTZAN folder for tests: short tones and noise plus awkward files.

Four genres with five readable 4.5 s clips each (2 segments per clip). Among
them a 44.1 kHz stereo clip and an `.au` clip; besides them a text file named
`jazz.00054.wav` (like the corrupt file of the Kaggle copy), a 1 s clip, a file
in an unknown genre folder and a non-audio file.
"""

from __future__ import annotations

import pathlib

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22050
SECONDS = 4.5
SEGMENTS_PER_CLIP = 2
GENRES = ('blues', 'classical', 'jazz', 'metal')
CLIPS_PER_GENRE = 5
STEREO_FILE = 'jazz/jazz.00004.wav'  # 44.1 kHz, two channels.
AU_FILE = 'classical/classical.00004.au'
CORRUPT_FILE = 'jazz/jazz.00054.wav'
SHORT_FILE = 'metal/metal.00099.wav'  # 1 s: no segment.
UNKNOWN_GENRE_FILE = 'polka/polka.00000.wav'


def write_fake_gtzan(manual_dir: pathlib.Path, *, nested: bool = True) -> pathlib.Path:
  """Writes the fake tree under manual_dir/genres (nested) or manual_dir; returns manual_dir."""
  root = manual_dir / 'genres' if nested else manual_dir
  for label, genre in enumerate(GENRES):
    for index in range(CLIPS_PER_GENRE):
      file = f'{genre}/{genre}.{index:05d}.wav'
      if file.replace('.wav', '.au') == AU_FILE:
        file = AU_FILE
      if file == STEREO_FILE:
        rate, channels = 2 * SAMPLE_RATE, 2
      else:
        rate, channels = SAMPLE_RATE, 1
      _write(root / file, clip(label, index, rate, channels), rate)
  _write(root / SHORT_FILE, clip(0, 99, SAMPLE_RATE, 1, seconds=1.0), SAMPLE_RATE)
  _write(root / UNKNOWN_GENRE_FILE, clip(1, 0, SAMPLE_RATE, 1), SAMPLE_RATE)
  (root / CORRUPT_FILE).write_text('This is not audio.\n')
  (root / 'blues' / 'README.txt').write_text('Not an audio file; ignored.\n')
  return manual_dir


def clip(label: int, index: int, rate: int = SAMPLE_RATE, channels: int = 1, *,
         seconds: float = SECONDS) -> np.ndarray:
  """A tone whose pitch depends on genre and index, with a little noise: [n, channels]."""
  rng = np.random.default_rng((label, index))
  t = np.arange(int(seconds * rate)) / rate
  tone = 0.3 * np.sin(2 * np.pi * (110 * 2 ** label + 20 * index) * t)
  # Quiet after 2 s: per-segment top_db clipping differs from whole-clip clipping.
  tone[2 * rate:] *= 0.01
  noise = 0.01 * rng.standard_normal((len(t), channels))
  return (tone[:, None] + noise).astype(np.float32)


def _write(path: pathlib.Path, samples: np.ndarray, rate: int) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(path, samples, rate, subtype='PCM_16')
