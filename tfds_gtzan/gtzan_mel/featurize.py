"""Decodes clips and computes their features (a `feature_sets` entry: 'mel' by default) on all cores.

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
  mel: np.ndarray | None = None  # [n, mels, frames] float16 (of the feature set).
  seconds: float = 0.0  # Decoded duration (capped at the feature set's decode_seconds()).
  error: str | None = None  # Why the clip could not be decoded.


@dataclasses.dataclass(frozen=True)
class AugmentedFeatures:
  """The feature segments of one augmented copy of a clip."""
  clip: sources.Clip
  copy: int  # 1..K.
  # [n, mels, frames] float16. n <= the clip's: a copy stretched shorter than the
  # clip has fewer whole segments (augment.pitch_shift_and_stretch pads nothing).
  mel: np.ndarray


def featurize(clips: Sequence[sources.Clip], *, workers: int | None = None,
              feature_set: str | feature_sets.FeatureSet = 'mel') -> list[ClipFeatures]:
  """Featurises `clips` in parallel, with a progress bar; results in input order."""
  fs = feature_sets.get(feature_set)
  return _map(lambda clip: featurize_clip(clip, fs), clips, workers, 'Decoding clips')


def featurize_augmented(clips: Sequence[sources.Clip], *, copies: int, seed: int,
                        params: augment.AugmentParams, workers: int | None = None,
                        feature_set: str | feature_sets.FeatureSet = 'mel'
                        ) -> list[list[AugmentedFeatures]]:
  """Copies 1..`copies` of each clip (decoded once), augmented then featurised, in parallel.

  A copy's segments are its own whole segments, as for a clip: one stretched shorter
  than the clip has fewer of them (segment i of a copy is cut where the clip's segment i is).
  Only for clips that `featurize` read: a decoding error here is raised.
  """
  fs = feature_sets.get(feature_set)

  def one_clip(clip: sources.Clip) -> list[AugmentedFeatures]:
    y = _waveform(clip, fs, AUGMENT_SAMPLE_RATE)
    return [AugmentedFeatures(clip, copy, fs.features(_resampled(augment.augment_clip(
        y, seed=seed, track=clip.track, copy=copy, params=params), fs)))
            for copy in range(1, copies + 1)]

  return _map(one_clip, clips, workers, f'Augmenting clips x{copies}')


def _waveform(clip: sources.Clip, fs: feature_sets.FeatureSet, sr: int) -> np.ndarray:
  """The clip's audio that `fs` reads, at `sr` Hz."""
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
  features = fs.features(y)
  if not len(features):
    logging.warning('No segment in %s: only %.2f s of audio.', clip.file, seconds)
  return ClipFeatures(clip, features, seconds=seconds)
