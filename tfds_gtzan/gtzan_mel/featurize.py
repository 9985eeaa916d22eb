"""Decodes clips and computes their log-mel segments on all cores.

Threads, not processes: decoding (libsndfile), resampling (soxr), the FFTs, the
mel matrix product and, for the most part, the augmentation's phase vocoder
(vectorised in `augment.phase_vocoder` for this reason) release the GIL, so a
thread pool keeps the cores busy without the seconds each spawned worker spends
importing librosa and scipy, and it stays safe when the caller has already
imported JAX (forking a process that runs JAX's threads can deadlock). BLAS is
limited to one thread per worker: the per-clip matrix products are small, and
OpenBLAS threads competing with the pool for the same cores cut its throughput
by more than half.
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
from tfds_gtzan.gtzan_mel import sources


@dataclasses.dataclass(frozen=True)
class ClipFeatures:
  """The outcome for one clip: mel segments, or why there are none."""
  clip: sources.Clip
  mel: np.ndarray | None = None  # [n, N_MELS, FRAMES] in audio.MEL_DTYPE.
  seconds: float = 0.0  # Decoded duration (capped at MAX_SEGMENTS segments).
  error: str | None = None  # Why the clip could not be decoded.


@dataclasses.dataclass(frozen=True)
class AugmentedFeatures:
  """The mel segments of one augmented copy of a clip."""
  clip: sources.Clip
  copy: int  # 1..K.
  # [n, N_MELS, FRAMES] in audio.MEL_DTYPE. n <= the clip's: a copy stretched shorter than the
  # clip has fewer whole segments (augment.pitch_shift_and_stretch pads nothing).
  mel: np.ndarray


def featurize(clips: Sequence[sources.Clip], *, workers: int | None = None) -> list[ClipFeatures]:
  """Featurises `clips` in parallel, with a progress bar; results in input order."""
  return _map(featurize_clip, clips, workers, 'Decoding clips')


def featurize_augmented(clips: Sequence[sources.Clip], *, copies: int, seed: int,
                        params: augment.AugmentParams, workers: int | None = None
                        ) -> list[list[AugmentedFeatures]]:
  """Copies 1..`copies` of each clip (decoded once), augmented then featurised, in parallel.

  A copy's segments are its own whole 2 s segments, as for a clip: one stretched shorter
  than the clip has fewer of them (segment i of a copy is cut where the clip's segment i is).
  Only for clips that `featurize` read: a decoding error here is raised.
  """
  def one_clip(clip: sources.Clip) -> list[AugmentedFeatures]:
    y = clip.waveform()
    return [AugmentedFeatures(clip, copy, audio.segment_features(augment.augment_clip(
        y, seed=seed, track=clip.track, copy=copy, params=params)))
            for copy in range(1, copies + 1)]

  return _map(one_clip, clips, workers, f'Augmenting clips x{copies}')


def _map(fn, items, workers: int | None, desc: str) -> list:
  """[fn(item) for item in items] on a thread pool with one BLAS thread each, with progress."""
  workers = workers or os.cpu_count() or 1
  with (threadpoolctl.threadpool_limits(limits=1, user_api='blas'),
        concurrent.futures.ThreadPoolExecutor(workers) as executor):
    results = executor.map(fn, items)
    return list(tqdm_utils.tqdm(results, total=len(items), desc=desc, unit=' clips'))


def featurize_clip(clip: sources.Clip) -> ClipFeatures:
  """Decodes one clip and computes the log-mel of all its segments in one call."""
  try:
    y = clip.waveform()
  except audio.AudioError as e:
    logging.warning('Skipping %s: %s', e.path, e.reason)
    return ClipFeatures(clip, error=e.reason)
  seconds = len(y) / audio.SAMPLE_RATE
  if seconds < audio.SEGMENT_SECONDS:
    logging.warning('No segment in %s: only %.2f s of audio.', clip.file, seconds)
  return ClipFeatures(clip, audio.segment_features(y), seconds=seconds)
