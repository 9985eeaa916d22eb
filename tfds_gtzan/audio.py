"""Audio decoding and log-mel features shared by the dataset builder and inference.

A clip becomes at most `MAX_SEGMENTS` non-overlapping 2 s segments taken from its
start; each segment becomes a [N_MELS, FRAMES] log-mel spectrogram in dB that equals,
within 0.01 dB (computed by `melspec`, 1.7x faster),

  librosa.power_to_db(
      librosa.feature.melspectrogram(y=segment, sr=22050, n_fft=512,
                                     hop_length=256, n_mels=128),
      ref=1.0, top_db=80)

computed for that segment alone. The dataset stores it as float16: values lie in
[-100, +70] dB, where float16 steps are at most 1/16 dB, so rounding costs <= 1/32 dB.

  mel = log_mel_from_file('song.mp3')   # [n <= 14, 128, 173] float32

`segment_features` is what the dataset stores for a clip's audio (its first
MAX_SEGMENTS whole segments, rounded to MEL_DTYPE); `segment_features_of_blocks`
gives the same for audio decoded block by block, as predict does. The builder and
predict both go through them, so a file's prediction uses the dataset's segments.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator

import librosa
import numpy as np
import soundfile as sf
import soxr

from tfds_gtzan import melspec
# The feature parameters live in `melspec` (numpy only), shared with `jax_mel`.
# pylint: disable-next=unused-import
from tfds_gtzan.melspec import (AMIN, FRAMES, HOP_LENGTH, N_FFT, N_MELS, REF, SAMPLE_RATE,
                                SEGMENT_SAMPLES, SEGMENT_SECONDS, TOP_DB)

MAX_SEGMENTS = 14
MEL_DTYPE = np.float16  # Storage dtype of the dataset.

FEATURE_PARAMS = {
    'sample_rate': SAMPLE_RATE,
    'n_fft': N_FFT,
    'hop_length': HOP_LENGTH,
    'n_mels': N_MELS,
    'segment_seconds': SEGMENT_SECONDS,
    'max_segments': MAX_SEGMENTS,
    'frames': FRAMES,
    'top_db': TOP_DB,
    'ref': REF,
    'amin': AMIN,
    'dtype': np.dtype(MEL_DTYPE).name,
}

_RIFF_MAGICS = (b'RIFF', b'RIFX', b'RF64')


class AudioError(ValueError):
  """An audio file that cannot be decoded; the message names the file and the problem."""

  def __init__(self, path: str | os.PathLike[str], reason: str):
    super().__init__(f'{os.fspath(path)}: {reason}')
    self.path = os.fspath(path)
    self.reason = reason


def load_audio(path: str | os.PathLike[str], sr: int = SAMPLE_RATE, *,
               max_seconds: float | None = None) -> np.ndarray:
  """Decodes an audio file to float32 mono at `sr` Hz.

  Args:
    path: a file soundfile can read (wav, au, flac, ogg, mp3, ...); other formats
      go through `librosa.load` (audioread, which needs ffmpeg or similar).
    sr: output sample rate.
    max_seconds: decode only this much from the start of the file, so that a long
      file costs no more memory than `max_seconds` of audio. None: everything.

  Returns:
    A float32 array of shape [samples].

  Raises:
    AudioError: the file is missing, empty, not audio, truncated or unreadable.
  """
  _check_file(path)
  try:
    samples, file_sr = _read_soundfile(path, max_seconds)
  except sf.LibsndfileError as sndfile_error:
    samples, file_sr = _read_librosa(path, max_seconds, sndfile_error)
  if samples.dtype.kind == 'f' and not np.isfinite(samples).all():
    raise AudioError(path, 'contains NaN or infinite samples')
  if samples.dtype == np.int16:
    samples = _pcm16_to_float(samples)
  mono = samples if samples.ndim == 1 else samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
  if file_sr != sr and mono.size:
    mono = resample(mono, file_sr, sr)
  if max_seconds is not None:
    mono = mono[:math.ceil(max_seconds * sr)]
  return mono.astype(np.float32, copy=False)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
  """`y` resampled from `orig_sr` to `target_sr` Hz as `load_audio` resamples a file (librosa: soxr_hq)."""
  return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr)


def load_audio_blocks(path: str | os.PathLike[str], block_seconds: float,
                      sr: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
  """Decodes a whole file `block_seconds` at a time: float32 mono blocks at `sr` Hz.

  Concatenated, the blocks equal `load_audio(path, sr)` (soxr resamples them as one
  stream), while memory stays at about one block however long the file. Formats
  libsndfile cannot read are decoded whole by `load_audio`, then cut into blocks.

  Raises:
    AudioError: as `load_audio` (NaN or infinite samples: when their block is read).
  """
  _check_file(path)
  try:
    f = sf.SoundFile(path)
  except sf.LibsndfileError:
    y = load_audio(path, sr)
    size = max(1, int(block_seconds * sr))
    yield from (y[start:start + size] for start in range(0, len(y), size))
    return
  with f:
    frames = max(1, int(block_seconds * f.samplerate))
    stream = soxr.ResampleStream(f.samplerate, sr, 1, dtype='float32') if f.samplerate != sr else None
    pcm16, channels = f.subtype == 'PCM_16', f.channels  # as load_audio: 16-bit PCM read as int16
    while True:
      try:
        samples = f.read(frames, dtype='int16' if pcm16 else 'float32', always_2d=channels > 1)
      except sf.LibsndfileError as e:
        raise AudioError(path, _diagnose(path, e)) from None
      if pcm16:
        samples = _pcm16_to_float(samples)
      elif not np.isfinite(samples).all():
        raise AudioError(path, 'contains NaN or infinite samples')
      last = len(samples) < frames
      mono = samples if channels == 1 else samples.mean(axis=1)
      if stream is not None:
        mono = stream.resample_chunk(mono, last=last)
      if len(mono):
        yield mono
      if last:
        return


def segment(y: np.ndarray, max_segments: int = MAX_SEGMENTS) -> np.ndarray:
  """Splits [samples] audio into non-overlapping 2 s segments from the start.

  Returns:
    [n, SEGMENT_SAMPLES] with n = min(len(y) // SEGMENT_SAMPLES, max_segments);
    a clip shorter than 2 s gives n = 0.
  """
  if y.ndim != 1:
    raise ValueError(f'segment() expects mono audio of shape [samples], got {y.shape}.')
  n = min(len(y) // SEGMENT_SAMPLES, max_segments)
  return y[:n * SEGMENT_SAMPLES].reshape(n, SEGMENT_SAMPLES)


def log_mel(segments: np.ndarray) -> np.ndarray:
  """Log-mel spectrograms (dB) of [n, SEGMENT_SAMPLES] segments in one call: [n, N_MELS, FRAMES] float32.

  librosa's definition applied to each segment alone (reference, floor and top_db
  clipping per segment), computed by `melspec.log_mel` (see there why not librosa).
  """
  return melspec.log_mel(segments)


def segment_features(y: np.ndarray, max_segments: int | None = MAX_SEGMENTS) -> np.ndarray:
  """The dataset's features of mono audio `y`: [n, N_MELS, FRAMES] in MEL_DTYPE.

  The log-mels of its first `max_segments` whole 2 s segments (None: all of them), rounded
  to the storage dtype: what the builder stores for a clip (and for an augmented copy), and,
  with the same cap, what predict classifies of a file.
  """
  if y.ndim != 1:
    raise ValueError(f'segment_features() expects mono audio of shape [samples], got {y.shape}.')
  whole = len(y) // SEGMENT_SAMPLES
  return log_mel(segment(y, whole if max_segments is None else max_segments)).astype(MEL_DTYPE)


def segment_features_of_blocks(blocks: Iterable[np.ndarray], max_segments: int | None = MAX_SEGMENTS
                               ) -> Iterator[np.ndarray]:
  """`segment_features` of audio that arrives in consecutive blocks, one array per block.

  Concatenated, the arrays equal `segment_features(np.concatenate(blocks), max_segments)`:
  segments are cut from the start of the whole, across block boundaries, while memory holds
  about one block. Once `max_segments` are out, no further block is read (None: every block,
  and every whole segment of the audio). A block that completes no segment yields nothing.
  """
  left = max_segments
  if left is not None and left <= 0:
    return
  rest = np.zeros(0, np.float32)
  for block in blocks:
    block = np.asarray(block, np.float32)
    y = np.concatenate([rest, block]) if len(rest) else block  # (a copy of a 30 s clip: 0.3 ms)
    whole = len(y) // SEGMENT_SAMPLES if left is None else min(len(y) // SEGMENT_SAMPLES, left)
    if whole:
      yield segment_features(y[:whole * SEGMENT_SAMPLES], whole)
      if left is not None:
        left -= whole
        if not left:
          return
    rest = y[whole * SEGMENT_SAMPLES:]


def log_mel_from_file(path: str | os.PathLike[str], max_segments: int = MAX_SEGMENTS) -> np.ndarray:
  """Decodes only the first `max_segments` 2 s segments of a file: [n, N_MELS, FRAMES] float32."""
  y = load_audio(path, max_seconds=max_segments * SEGMENT_SECONDS)
  return log_mel(segment(y, max_segments))


def _check_file(path: str | os.PathLike[str]) -> None:
  try:
    size = os.path.getsize(path)
  except FileNotFoundError:
    raise AudioError(path, 'no such file') from None
  except OSError as e:
    raise AudioError(path, f'unreadable ({e.strerror})') from None
  if size == 0:
    raise AudioError(path, 'empty file (0 bytes)')


def _pcm16_to_float(samples: np.ndarray) -> np.ndarray:
  """int16 samples as float32 in [-1, 1): exactly libsndfile's own conversion (x / 32768)."""
  return np.multiply(samples, np.float32(1 / 32768), dtype=np.float32)


def _read_soundfile(path: str | os.PathLike[str],
                    max_seconds: float | None) -> tuple[np.ndarray, int]:
  """[frames, channels] samples and the file's sample rate; reads at most `max_seconds`.

  16-bit PCM (GTZAN's encoding) comes back as int16, which holds no NaN or
  infinities to check; other encodings come back as float32.
  """
  with sf.SoundFile(path) as f:
    frames = -1 if max_seconds is None else math.ceil(max_seconds * f.samplerate)
    dtype = 'int16' if f.subtype == 'PCM_16' else 'float32'
    return f.read(frames, dtype=dtype, always_2d=True), f.samplerate


def _read_librosa(path: str | os.PathLike[str], max_seconds: float | None,
                  sndfile_error: Exception) -> tuple[np.ndarray, int]:
  """Fallback for formats libsndfile lacks; [samples] or [channels, samples] float32."""
  try:
    with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead."
      warnings.simplefilter('ignore')
      y, file_sr = librosa.load(path, sr=None, mono=False, duration=max_seconds)
  except Exception:  # audioread and its backends raise many unrelated types.
    raise AudioError(path, _diagnose(path, sndfile_error)) from None
  return (y.T if y.ndim == 2 else y), int(file_sr)


def _diagnose(path: str | os.PathLike[str], error: Exception) -> str:
  """Why a non-empty file could not be decoded, as a short phrase."""
  with open(path, 'rb') as f:
    header = f.read(12)
  detail = getattr(error, 'error_string', str(error)).strip().rstrip('.')
  if os.fspath(path).lower().endswith('.wav'):
    if header[:4] not in _RIFF_MAGICS:
      return f'not a RIFF/WAV file (starts with {header[:4]!r})'
    declared = int.from_bytes(header[4:8], 'little') + 8
    actual = os.path.getsize(path)
    if len(header) < 12 or declared > actual:
      return f'truncated WAV file ({actual} of {declared} bytes; libsndfile: {detail})'
    return f'corrupt WAV file (libsndfile: {detail})'
  return f'not a known audio file or unreadable (libsndfile: {detail})'
