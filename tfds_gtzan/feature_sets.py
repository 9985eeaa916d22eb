"""The feature sets a `gtzan_mel` build can store, in one registry: 'mel' (the default) and 'musicnn'.

  fs = feature_sets.get('musicnn')
  x = fs.features(y)        # mono float32 at fs.sample_rate -> [n <= fs.max_segments, *fs.shape] float16

Both store one example per segment as [mels, frames] (frequency first), float16:

  name     rate      n_fft  hop  mels  segment                    shape       per clip  values
  mel      22050 Hz  512    256  128   2 s (44100 samples)        [128, 173]  <= 14     log-mel dB (`audio`)
  musicnn  16000 Hz  512    256   96   187 frames (47872 samples, [96, 187]   <= 10     log10(1 + 10000 mel)
                                       2.992 s: "3 s")

'mel' is the paper's (`tfds_gtzan.audio.segment_features`): each 2 s segment's log-mel
computed on that segment alone. 'musicnn' is the input of the pretrained musicnn networks
(`gtzan_jax.pretrained`): librosa's default mel spectrogram (Slaney, centred frames
zero-padded by n_fft // 2) of the whole clip, log10(10000 x + 1) taken in float32, cut into
non-overlapping 187-frame patches from the start, so a patch's first and last frames also
read the 256 samples on either side of it, and a 30 s clip gives 10 patches. musicnn's own
extractor casts the mel to float16 before the log, where 10000 x overflows; here the log is
taken in float32 (values stay below ~6.6) and only the result is rounded to float16 for
storage (steps <= 2**-9 up to 8).

This module imports only numpy (and `melspec`: numpy and scipy): the trainer reads names
and shapes from it without librosa; computing features imports librosa.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from tfds_gtzan import melspec

DEFAULT = 'mel'
STORAGE_DTYPE = np.float16
# A collection's track (segments spread over it) is decoded up to this long, in a build and in predict.
MAX_TRACK_SECONDS = 30 * 60

# musicnn's input (musicnn/configuration.py and extractor.py).
MUSICNN_SAMPLE_RATE = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP_LENGTH = 256
MUSICNN_N_MELS = 96
MUSICNN_PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
MUSICNN_PATCH_SAMPLES = MUSICNN_PATCH_FRAMES * MUSICNN_HOP_LENGTH  # 47872: one patch's frames apart
MUSICNN_MAX_PATCHES = 10  # A 30 s GTZAN clip gives 10.
# A decode past the last patch's audio: its own end (resampling's last ~40 ms) is never read.
_DECODE_MARGIN_SECONDS = 1.0


def musicnn_log_mel(y: np.ndarray) -> np.ndarray:
  """[frames, 96] float32: musicnn's representation of 16 kHz mono `y`, the log taken in float32.

  frames = 1 + len(y) // 256 (librosa's centred frames). `gtzan_jax.pretrained.features.log_mel`.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (the trainer reads this module without it)
  mel = librosa.feature.melspectrogram(y=y, sr=MUSICNN_SAMPLE_RATE, hop_length=MUSICNN_HOP_LENGTH,
                                       n_fft=MUSICNN_N_FFT, n_mels=MUSICNN_N_MELS).T
  return np.log10(10000 * mel.astype(np.float32) + 1)


def musicnn_log_mel_patches(y: np.ndarray, frames: int = MUSICNN_PATCH_FRAMES) -> np.ndarray:
  """[n, frames, 96] float32 (time first, as musicnn takes them): the non-overlapping `frames`-long
  patches of `musicnn_log_mel(y)` from the start. `gtzan_jax.pretrained.features.log_mel_patches`."""
  rep = musicnn_log_mel(y)
  n = len(rep) // frames
  return rep[:n * frames].reshape(n, frames, MUSICNN_N_MELS)


@dataclasses.dataclass(frozen=True)
class FeatureSet:
  """One way of turning a clip into [mels, frames] examples; see the module docstring."""

  name: str
  sample_rate: int  # Hz: audio is decoded (and synthetic clips resampled) to this rate.
  n_mels: int
  frames: int
  segment_samples: int  # Segment i starts at sample i * segment_samples of the clip.
  segment_seconds: float  # Nominal length, for messages ('shorter than 2 s').
  max_segments: int  # At most this many segments per clip, from its start.
  params: Mapping[str, Any]  # JSON-serialisable, for the dataset's metadata.
  doc: str  # The stored feature's description.

  @property
  def shape(self) -> tuple[int, int]:
    """(mels, frames) of one stored example."""
    return self.n_mels, self.frames

  @property
  def segment_duration(self) -> float:
    """Seconds between segment starts (2.0 for mel, 2.992 for musicnn)."""
    return self.segment_samples / self.sample_rate

  def decode_seconds(self, max_segments: int | None = None) -> float:
    """Audio to decode from a file's start for its first `max_segments` (default: the maximum) segments."""
    raise NotImplementedError

  def segments_in(self, samples: int) -> int:
    """Whole segments in `samples` of audio at `sample_rate` (no cap)."""
    raise NotImplementedError

  def features(self, y: np.ndarray, max_segments: int | None = -1) -> np.ndarray:
    """[n, mels, frames] float16 of mono float32 `y` at `sample_rate`: its first `max_segments`
    whole segments (-1: `self.max_segments`; None: all of them). What a build stores for a clip."""
    raise NotImplementedError

  def features_of_blocks(self, blocks: Iterable[np.ndarray], max_segments: int | None = -1
                         ) -> Iterator[np.ndarray]:
    """`features` of audio that arrives in consecutive blocks, as arrays of consecutive segments.

    Concatenated they are the segments of the whole audio, capped at `max_segments` (-1: the
    maximum; None: every segment); once those are out no further block is read. Memory holds
    about one block (and, with a cap, at most the capped audio).
    """
    raise NotImplementedError

  def spread_audio(self, y: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The audio of at most `count` whole segments of `y` spread over it (`spread`), joined, and their positions.

    Segment j of the joined audio is the segment at grid position positions[j] of `y` (its
    samples [p * segment_samples, (p + 1) * segment_samples)).
    """
    positions = spread(self.segments_in(len(y)), count)
    size = self.segment_samples
    parts = [np.asarray(y[p * size:(p + 1) * size], np.float32) for p in positions]
    return np.concatenate([np.zeros(0, np.float32), *parts]), positions

  def spread_features(self, y: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """([k, mels, frames] float16, positions [k]): the features of at most `count` segments spread
    evenly over the whole of `y` (`spread`), where a collection's build takes a track's segments."""
    raise NotImplementedError

  def _cap(self, max_segments: int | None) -> int | None:
    return self.max_segments if max_segments == -1 else max_segments


def spread(num_segments: int, count: int) -> np.ndarray:
  """Grid positions (int32, increasing) of at most `count` of a track's `num_segments` whole segments.

  All of them when there are at most `count`; otherwise the `count` whose starts lie nearest
  below (i + 1/2) / count of the track, i = 0..count-1: evenly spaced, centred, so neither
  the very first nor the very last segment (intro, fade-out) is always taken. Distinct,
  since they are more than one segment apart.
  """
  if num_segments <= count:
    return np.arange(max(num_segments, 0), dtype=np.int32)
  return ((np.arange(count) + 0.5) * num_segments / count).astype(np.int32)


class _Mel(FeatureSet):
  """The paper's 2 s log-mel segments: `tfds_gtzan.audio`."""

  def decode_seconds(self, max_segments: int | None = None) -> float:
    return (self.max_segments if max_segments is None else max_segments) * melspec.SEGMENT_SECONDS

  def segments_in(self, samples: int) -> int:
    return samples // self.segment_samples

  def features(self, y: np.ndarray, max_segments: int | None = -1) -> np.ndarray:
    from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa)
    return audio.segment_features(y, self._cap(max_segments))

  def features_of_blocks(self, blocks: Iterable[np.ndarray], max_segments: int | None = -1
                         ) -> Iterator[np.ndarray]:
    from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa)
    return audio.segment_features_of_blocks(blocks, self._cap(max_segments))

  def spread_features(self, y: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    joined, positions = self.spread_audio(y, count)  # each 2 s segment's log-mel is its own
    return self.features(joined, None), positions


class _Musicnn(FeatureSet):
  """musicnn's 187-frame patches of the whole clip's log-mel, stored [96, 187]."""

  def decode_seconds(self, max_segments: int | None = None) -> float:
    n = self.max_segments if max_segments is None else max_segments
    # Patch n - 1's last frame reads up to sample n * 47872; the margin keeps the end of a
    # truncated decode (where resampling differs from a whole decode) out of it.
    return n * self.segment_samples / self.sample_rate + _DECODE_MARGIN_SECONDS

  def segments_in(self, samples: int) -> int:
    return (1 + samples // MUSICNN_HOP_LENGTH) // MUSICNN_PATCH_FRAMES

  def features(self, y: np.ndarray, max_segments: int | None = -1) -> np.ndarray:
    y = np.asarray(y, np.float32)
    if y.ndim != 1:
      raise ValueError(f'features() expects mono audio of shape [samples], got {y.shape}.')
    cap = self._cap(max_segments)
    if (cap is not None and cap <= 0) or self.segments_in(len(y)) == 0:
      return np.zeros((0, *self.shape), STORAGE_DTYPE)
    patches = musicnn_log_mel_patches(y)[:cap]
    return patches.transpose(0, 2, 1).astype(STORAGE_DTYPE)

  def spread_features(self, y: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    positions = spread(self.segments_in(len(y)), count)  # patches of the whole track's log-mel
    return self.features(y, None)[positions], positions

  def features_of_blocks(self, blocks: Iterable[np.ndarray], max_segments: int | None = -1
                         ) -> Iterator[np.ndarray]:
    """With a cap: `features` of the first `decode_seconds(cap)` of the audio, computed once, so
    that they equal what a build stores for a file bit for bit (the same samples, the same
    computation). Without one: patch by patch, each from the audio it reads (the 256 samples
    either side included), equal to `features` of the whole within float32 rounding (a float16
    step at most, where BLAS sums the mel product in another order)."""
    cap = self._cap(max_segments)
    if cap is not None:
      if cap <= 0:
        return
      limit = math.ceil(self.decode_seconds(cap) * self.sample_rate)
      parts, size = [], 0
      for block in blocks:
        parts.append(np.asarray(block, np.float32)[:limit - size])
        size += len(parts[-1])
        if size >= limit:
          break
      y = np.concatenate([np.zeros(0, np.float32), *parts])
      patches = self.features(y, cap)
      if len(patches):
        yield patches
      return
    # In the zero-padded signal (n_fft // 2 zeros either side, as librosa centres frames),
    # patch p's frames read samples [p * 47872, (p + 1) * 47872 + 256).
    pad, size = MUSICNN_N_FFT // 2, self.segment_samples
    rest = np.zeros(pad, np.float32)
    blocks = iter(blocks)
    while True:
      block = next(blocks, None)
      last = block is None
      rest = np.concatenate([rest, np.zeros(pad, np.float32) if last else np.asarray(block, np.float32)])
      whole = max(0, (len(rest) - pad) // size)
      if whole:
        yield _musicnn_patches_of_padded(rest[:whole * size + pad])
        rest = rest[whole * size:]
      if last:
        return


def _musicnn_patches_of_padded(padded: np.ndarray) -> np.ndarray:
  """[n, 96, 187] float16 of n * 47872 + 256 samples of the padded signal, its frames uncentred."""
  import librosa  # pylint: disable=g-import-not-at-top
  mel = librosa.feature.melspectrogram(y=padded, sr=MUSICNN_SAMPLE_RATE, hop_length=MUSICNN_HOP_LENGTH,
                                       n_fft=MUSICNN_N_FFT, n_mels=MUSICNN_N_MELS, center=False)
  rep = np.log10(10000 * mel.astype(np.float32) + 1)  # [96, n * 187]
  n = rep.shape[1] // MUSICNN_PATCH_FRAMES
  return rep.reshape(MUSICNN_N_MELS, n, MUSICNN_PATCH_FRAMES).transpose(1, 0, 2).astype(STORAGE_DTYPE)


_MEL_MAX_SEGMENTS = 14  # tfds_gtzan.audio.MAX_SEGMENTS (audio imports librosa; tested equal).

FEATURE_SETS: dict[str, FeatureSet] = {
    'mel': _Mel(
        name='mel', sample_rate=melspec.SAMPLE_RATE, n_mels=melspec.N_MELS, frames=melspec.FRAMES,
        segment_samples=melspec.SEGMENT_SAMPLES, segment_seconds=melspec.SEGMENT_SECONDS,
        max_segments=_MEL_MAX_SEGMENTS,
        params={'sample_rate': melspec.SAMPLE_RATE, 'n_fft': melspec.N_FFT,
                'hop_length': melspec.HOP_LENGTH, 'n_mels': melspec.N_MELS,
                'segment_seconds': melspec.SEGMENT_SECONDS, 'max_segments': _MEL_MAX_SEGMENTS,
                'frames': melspec.FRAMES, 'top_db': melspec.TOP_DB, 'ref': melspec.REF,
                'amin': melspec.AMIN, 'dtype': np.dtype(STORAGE_DTYPE).name},
        doc=(f'Log-mel spectrogram in dB (ref 1.0, top_db 80), float16: {melspec.N_MELS} mel bands x '
             f'{melspec.FRAMES} frames of one 2 s segment at 22050 Hz (n_fft 512, hop 256).')),
    'musicnn': _Musicnn(
        name='musicnn', sample_rate=MUSICNN_SAMPLE_RATE, n_mels=MUSICNN_N_MELS,
        frames=MUSICNN_PATCH_FRAMES, segment_samples=MUSICNN_PATCH_SAMPLES, segment_seconds=3,
        max_segments=MUSICNN_MAX_PATCHES,
        params={'sample_rate': MUSICNN_SAMPLE_RATE, 'n_fft': MUSICNN_N_FFT,
                'hop_length': MUSICNN_HOP_LENGTH, 'n_mels': MUSICNN_N_MELS,
                'mel': 'librosa.feature.melspectrogram defaults (Slaney, centred, whole clip)',
                'log': 'log10(10000 * mel + 1) in float32',
                'segment_seconds': MUSICNN_PATCH_SAMPLES / MUSICNN_SAMPLE_RATE,
                'frames': MUSICNN_PATCH_FRAMES, 'max_segments': MUSICNN_MAX_PATCHES,
                'dtype': np.dtype(STORAGE_DTYPE).name},
        doc=(f'musicnn input, float16: log10(1 + 10000 mel) of librosa\'s default mel spectrogram '
             f'({MUSICNN_N_MELS} mel bands, n_fft 512, hop 256) of the whole clip at 16 kHz, taken in '
             f'float32; {MUSICNN_N_MELS} bands x {MUSICNN_PATCH_FRAMES} frames of one non-overlapping '
             '3 s (2.992 s) patch from the clip\'s start. musicnn takes the transpose [frames, bands].')),
}


def names() -> tuple[str, ...]:
  return tuple(FEATURE_SETS)


def get(name: str | FeatureSet | None = None) -> FeatureSet:
  """The feature set `name` (None: 'mel'); ValueError, naming the choices, for another name."""
  if isinstance(name, FeatureSet):
    return name
  name = DEFAULT if name is None else name
  if name not in FEATURE_SETS:
    raise ValueError(f'Unknown feature set {name!r}; one of {", ".join(map(repr, FEATURE_SETS))}.')
  return FEATURE_SETS[name]
