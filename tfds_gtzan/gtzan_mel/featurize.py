"""Decodes clips and computes their features (a `feature_sets` entry: 'mel' by default) on all cores.

GTZAN's clips give their first segments; a collection's tracks (`Clip.spread` = K) give at
most K segments spread evenly over the whole track (`feature_sets.spread`), with their
positions.

Threads, not processes: decoding (libsndfile), resampling (soxr), the FFTs, the
mel matrix product and, for the most part, the augmentation's phase vocoder
(vectorised in `augment.phase_vocoder` for this reason) release the GIL, so a
thread pool keeps the cores busy without the seconds each spawned worker spends
importing librosa and scipy, and it stays safe when the caller has already
imported JAX (forking a process that runs JAX's threads can deadlock). BLAS is
limited to one thread per worker: the per-clip matrix products are small, and
OpenBLAS threads competing with the pool for the same cores cut its throughput
by more than half.

Clips are decoded at the feature set's sample rate. Augmented copies are made at
22050 Hz whatever the feature set (`augment` works in samples: its phase vocoder's
2048-point STFT, so the same parameters at another rate would be another
augmentation): for 'musicnn', copy k is augmented from the clip decoded at 22050 Hz,
then resampled to 16 kHz (as `audio.load_audio` resamples, soxr) and featurised.
"""

from __future__ import annotations

from collections.abc import Sequence
import concurrent.futures
import dataclasses
import os
import tempfile
import threading
import weakref

from absl import logging
import numpy as np
import threadpoolctl
from tensorflow_datasets.core.utils import tqdm_utils

from tfds_gtzan import audio
from tfds_gtzan import augment
from tfds_gtzan import feature_sets
from tfds_gtzan.gtzan_mel import sources

AUGMENT_SAMPLE_RATE = audio.SAMPLE_RATE  # 22050 Hz: the rate copies are augmented at.


@dataclasses.dataclass(frozen=True)
class ClipFeatures:
  """The outcome for one clip: feature segments, or why there are none."""
  clip: sources.Clip
  mel: np.ndarray | None = None  # [n, mels, frames] float16 (of the feature set); a SpilledArray in a build.
  seconds: float = 0.0  # Decoded duration (capped at the feature set's decode_seconds(), or MAX_TRACK_SECONDS).
  error: str | None = None  # Why the clip could not be decoded.
  # Grid position of each segment (its start / segment_duration); None: 0..n-1, from the start.
  positions: np.ndarray | None = None

  def position(self, i: int) -> int:
    """Where segment i lies in the clip, in segments from its start."""
    return i if self.positions is None else int(self.positions[i])


@dataclasses.dataclass(frozen=True)
class AugmentedFeatures:
  """The feature segments of one augmented copy of a clip."""
  clip: sources.Clip
  copy: int  # 1..K.
  # [n, mels, frames] float16. n <= the clip's: a copy stretched shorter than the
  # clip has fewer whole segments (augment.pitch_shift_and_stretch pads nothing).
  mel: np.ndarray
  positions: np.ndarray | None = None  # As ClipFeatures: the clip's segment each one is a copy of.

  def position(self, i: int) -> int:
    return i if self.positions is None else int(self.positions[i])


def featurize(clips: Sequence[sources.Clip], *, workers: int | None = None,
              feature_set: str | feature_sets.FeatureSet = 'mel', spill_dir: str | None = None
              ) -> list[ClipFeatures]:
  """Featurises `clips` in parallel, with a progress bar; results in input order.

  `spill_dir`: the features are written to one file there as they come (`Spill`) and the
  results read their rows from it when asked, so a collection bigger than memory builds in
  bounded memory.
  """
  fs = feature_sets.get(feature_set)
  if not spill_dir:
    return _map(lambda clip: featurize_clip(clip, fs), clips, workers, 'Decoding clips')
  spill = Spill(spill_dir)
  results = _map(lambda clip: spill.hold(featurize_clip(clip, fs)), clips, workers, 'Decoding clips')
  return spill.release(results)


class Spill:
  """Feature arrays appended to a new file in `folder` as workers make them, then read back a row at a time.

  `hold(x)` writes x.mel (if any) and returns x holding where it went; `release(items)`, once
  all are written, gives the items back with each array a `SpilledArray`, whose rows are read
  from the file when asked for (os.pread on one descriptor, however many clips). Nothing is
  mapped: the build's memory does not grow with the collection (a map per clip would also take
  a descriptor each, and mapped pages count as the process's memory).
  """

  def __init__(self, folder: str):
    # A new file each time: rewriting one that earlier arrays still read would change them.
    self.file = tempfile.NamedTemporaryFile(dir=folder, suffix='.bin', delete=False)  # pylint: disable=consider-using-with
    self.path = self.file.name
    self.lock = threading.Lock()
    self.size = 0
    self.fd = -1

  def hold(self, item):
    if item.mel is None:
      return item
    data = np.ascontiguousarray(item.mel)
    with self.lock:
      offset = self.size
      self.file.write(data.tobytes())
      self.size += data.nbytes
    return dataclasses.replace(item, mel=SpilledArray(self, offset, data.shape, data.dtype))

  def release(self, items):
    """`items` as given, their arrays now readable (call it once all are written)."""
    self.file.close()
    self.fd = os.open(self.path, os.O_RDONLY)
    weakref.finalize(self, os.close, self.fd)
    return items


class SpilledArray:
  """An [n, ...] array in a `Spill` file: `len`, `shape`, `dtype`, and row i (`[i]`, read when needed)."""

  def __init__(self, spill: Spill, offset: int, shape: tuple[int, ...], dtype: np.dtype):
    self.spill, self.offset, self.shape, self.dtype = spill, offset, tuple(shape), np.dtype(dtype)
    self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, i: int) -> SpilledRow:
    if not 0 <= i < self.shape[0]:
      raise IndexError(f'row {i} of {self.shape[0]}')
    return SpilledRow(self, i)


class SpilledRow:
  """Row i of a `SpilledArray`, read from disk only when made an array (`np.asarray`), as TFDS writes it."""

  def __init__(self, array: SpilledArray, i: int):
    self.array, self.i = array, i

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    a = self.array
    data = os.pread(a.spill.fd, a.row_bytes, a.offset + self.i * a.row_bytes)
    row = np.frombuffer(data, a.dtype).reshape(a.shape[1:])
    return row if dtype is None else row.astype(dtype)


def featurize_augmented(clips: Sequence[sources.Clip], *, copies: int, seed: int,
                        params: augment.AugmentParams, workers: int | None = None,
                        feature_set: str | feature_sets.FeatureSet = 'mel',
                        positions: dict[str, Sequence[int]] | None = None, spill_dir: str | None = None
                        ) -> list[list[AugmentedFeatures]]:
  """Copies 1..`copies` of each clip (decoded once), augmented then featurised, in parallel.

  A copy's segments are its own whole segments, as for a clip: one stretched shorter
  than the clip has fewer of them (segment i of a copy is cut where the clip's segment i is).
  A collection's track (`clip.spread`) is not augmented whole: its copies are made from the
  audio of its segments at `positions[track]` (those its features hold), joined, so a long
  track costs what a short clip costs; the copy's segment j is a copy of segment positions[j].
  Only for clips that `featurize` read: a decoding error here is raised. `spill_dir`: as `featurize`.
  """
  fs = feature_sets.get(feature_set)

  def one_clip(clip: sources.Clip) -> list[AugmentedFeatures]:
    y = _waveform(clip, fs, AUGMENT_SAMPLE_RATE)
    kept = None
    if clip.spread:
      kept = np.asarray(positions[clip.track], np.int32)
      y = _segments_audio(y, kept, fs.segment_duration, AUGMENT_SAMPLE_RATE)
    result = []
    for copy in range(1, copies + 1):
      mel = fs.features(_resampled(augment.augment_clip(y, seed=seed, track=clip.track, copy=copy,
                                                        params=params), fs), None if clip.spread else -1)
      copy_features = AugmentedFeatures(clip, copy, mel, None if kept is None else kept[:len(mel)])
      result.append(spill.hold(copy_features) if spill else copy_features)
    return result

  spill = Spill(spill_dir) if spill_dir else None
  results = _map(one_clip, clips, workers, f'Augmenting clips x{copies}')
  return spill.release(results) if spill else results


def _segments_audio(y: np.ndarray, positions: np.ndarray, duration: float, sr: int) -> np.ndarray:
  """The samples of the segments at grid `positions` (each `duration` s long) of `y` at `sr` Hz, joined."""
  size = round(duration * sr)
  return np.concatenate([np.zeros(0, np.float32)] + [y[round(p * duration * sr):][:size] for p in positions])


def _waveform(clip: sources.Clip, fs: feature_sets.FeatureSet, sr: int) -> np.ndarray:
  """The clip's audio that `fs` reads, at `sr` Hz: a collection's whole track (to MAX_TRACK_SECONDS)."""
  if clip.spread:
    return clip.waveform(sr, feature_sets.MAX_TRACK_SECONDS)
  if fs.name == 'mel':  # Exactly what builds before feature sets decoded.
    return clip.waveform()
  return clip.waveform(sr, fs.decode_seconds())


def _resampled(y: np.ndarray, fs: feature_sets.FeatureSet) -> np.ndarray:
  """An augmented copy (at AUGMENT_SAMPLE_RATE) at the feature set's rate."""
  if fs.sample_rate == AUGMENT_SAMPLE_RATE:
    return y
  return audio.resample(y, AUGMENT_SAMPLE_RATE, fs.sample_rate).astype(np.float32, copy=False)


def _map(fn, items, workers: int | None, desc: str) -> list:
  """[fn(item) for item in items] on a thread pool with one BLAS thread each, with progress."""
  workers = workers or os.cpu_count() or 1
  with (threadpoolctl.threadpool_limits(limits=1, user_api='blas'),
        concurrent.futures.ThreadPoolExecutor(workers) as executor):
    results = executor.map(fn, items)
    return list(tqdm_utils.tqdm(results, total=len(items), desc=desc, unit=' clips'))


def featurize_clip(clip: sources.Clip, feature_set: str | feature_sets.FeatureSet = 'mel') -> ClipFeatures:
  """Decodes one clip (at the feature set's rate) and computes the features of all its segments in one call."""
  fs = feature_sets.get(feature_set)
  try:
    y = _waveform(clip, fs, fs.sample_rate)
  except audio.AudioError as e:
    logging.warning('Skipping %s: %s', e.path, e.reason)
    return ClipFeatures(clip, error=e.reason)
  seconds = len(y) / fs.sample_rate
  positions = None
  if clip.spread:
    features, positions = fs.spread_features(y, clip.spread)
  else:
    features = fs.features(y)
  if not len(features):
    logging.warning('No segment in %s: only %.2f s of audio.', clip.file, seconds)
  return ClipFeatures(clip, features, seconds=seconds, positions=positions)
