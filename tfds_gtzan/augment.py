"""The paper's audio augmentation: additive noise, pitch shift then time stretch.

A copy of a clip gets, independently,
  - pitch shift + time stretch with probability `pitch_prob`: a shift drawn
    uniformly from [-pitch_semitones, +pitch_semitones] semitones
    (`librosa.effects.pitch_shift`), then a stretch by a rate drawn uniformly from
    [1 - stretch_range, 1 + stretch_range] (`librosa.effects.time_stretch`), then
    cut at the end to the clip's length if it came out longer. One that came out
    shorter (rate > 1) is kept as it is, not padded, so that every segment of a
    copy is stretched audio: it has fewer whole 2 s segments than the clip (a
    rate of 1.1 makes the 28 s the builder decodes into 25.5 s: 12 segments, not
    14). Zero-padding, as before ALGORITHM_VERSION 2, made the last ones silence
    (or pure noise) carrying a genre label. The samples are librosa's;
    `phase_vocoder` computes its phase vocoder without its per-frame Python
    loop, which held the GIL: the same output, bit for bit, and the builder's
    threads no longer wait on each other (BENCHMARKS.md);
  - additive Gaussian noise with probability `noise_prob`, of standard deviation
    `noise_level` x the clip's peak |amplitude| (after any pitch/stretch).
A copy is never longer than its clip, and may also come out unchanged
(probability (1 - noise_prob) * (1 - pitch_prob)). Everything random is drawn
from `numpy.random.default_rng` seeded by (seed, a SHA-256 of the track name,
copy index), in a fixed order, so a copy does not depend on the other clips, on
thread scheduling or on Python's per-process string hashing.

  y_aug = augment_clip(y, seed=0, track='blues.00000', copy=1, params=AugmentParams())

The `gtzan_mel` builder applies this to whole clips before segmenting them
(`tfds_gtzan.gtzan_mel.gtzan_mel_dataset_builder.augmented_config`).

It works at 22050 Hz (`audio.SAMPLE_RATE`, the default `sr`): the phase vocoder's
2048-point STFT (librosa's default) and hop are in samples, so the same parameters at
another rate would be another augmentation. The builder therefore augments at 22050 Hz
for every feature set and resamples a copy to the set's rate (16 kHz for 'musicnn',
`gtzan_mel.featurize`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import librosa
import numpy as np

from tfds_gtzan import audio

# Bump when the augmentation changes what it computes for the same parameters:
# it is part of the augmented configs' name hash, so old builds are not reused.
#   1: a stretched clip is cut or zero-padded back to the clip's length.
#   2: a stretched clip shorter than the clip is no longer zero-padded (the copy has
#      fewer segments, none of them padding); a longer one is still cut.
ALGORITHM_VERSION = 2


@dataclasses.dataclass(frozen=True)
class AugmentParams:
  """Augmentation parameters; the defaults are those of configs/paper.py's `augment`."""
  noise_prob: float = 0.5       # Probability of additive Gaussian noise.
  noise_level: float = 0.005    # Noise std relative to the clip's peak |amplitude|.
  pitch_prob: float = 0.5       # Probability of pitch shift + time stretch.
  pitch_semitones: float = 2.0  # Shift drawn uniformly from [-x, x] semitones.
  stretch_range: float = 0.1    # Stretch rate drawn uniformly from [1 - x, 1 + x].

  def __post_init__(self):
    for field in dataclasses.fields(self):  # 2 and 2.0 are the same parameters (and name hash).
      object.__setattr__(self, field.name, float(getattr(self, field.name)))
    problems = [f'{name}={getattr(self, name)} is not in [0, 1]'
                for name in ('noise_prob', 'pitch_prob') if not 0 <= getattr(self, name) <= 1]
    problems += [f'{name}={getattr(self, name)} is negative'
                 for name in ('noise_level', 'pitch_semitones') if getattr(self, name) < 0]
    if not 0 <= self.stretch_range < 1:
      problems.append(f'stretch_range={self.stretch_range} is not in [0, 1)')
    if problems:
      raise ValueError(f'Bad augmentation parameters: {"; ".join(problems)}.')

  def to_dict(self) -> dict[str, float]:
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Draw:
  """What one copy gets: the random choices of `draw`."""
  noise: bool
  pitch: bool  # Pitch shift + time stretch.
  semitones: float
  rate: float  # time_stretch rate: > 1 faster (shorter), < 1 slower.
  noise_seed: int


def track_hash(track: str) -> int:
  """A stable 64-bit hash of a track name (Python's hash() is salted per process)."""
  return int.from_bytes(hashlib.sha256(track.encode('utf-8')).digest()[:8], 'little')


def draw(params: AugmentParams, *, seed: int, track: str, copy: int) -> Draw:
  """The random choices for copy `copy` of `track`; all are drawn, whichever apply."""
  if seed < 0 or copy < 0:
    raise ValueError(f'seed ({seed}) and copy ({copy}) must be >= 0.')
  rng = np.random.default_rng([seed, track_hash(track), copy])
  u_noise, u_pitch, u_semitones, u_rate = rng.random(4)
  return Draw(
      noise=bool(u_noise < params.noise_prob),
      pitch=bool(u_pitch < params.pitch_prob),
      semitones=float(params.pitch_semitones * (2 * u_semitones - 1)),
      rate=float(1 + params.stretch_range * (2 * u_rate - 1)),
      noise_seed=int(rng.integers(2**63)))


def add_noise(y: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
  """`y` plus Gaussian noise of std `level` x max|y| (float32)."""
  peak = float(np.max(np.abs(y))) if y.size else 0.0
  noise = rng.standard_normal(len(y), dtype=np.float32) * np.float32(level * peak)
  return (y + noise).astype(np.float32, copy=False)


def phase_vocoder(stft: np.ndarray, *, rate: float, hop_length: int | None = None,
                  n_fft: int | None = None) -> np.ndarray:
  """`librosa.phase_vocoder`, bit for bit, without its Python loop over every output frame.

  librosa computes each output frame's magnitude and phase advance from two input frames in that
  loop (~1,300 iterations of ~10 small array operations for a 30 s clip). Only the phase
  accumulation depends on the frame before, so the rest runs on whole arrays here, and the
  accumulation keeps librosa's order and its rounding to the STFT's precision after each frame.
  """
  n_fft = n_fft or 2 * (stft.shape[-2] - 1)
  hop_length = hop_length or n_fft // 4
  steps = np.arange(0, stft.shape[-1], rate, dtype=np.float64)
  phi_advance = hop_length * librosa.fft_frequencies(sr=2 * np.pi, n_fft=n_fft)[:, None]
  padded = np.pad(stft, [(0, 0)] * (stft.ndim - 1) + [(0, 2)])
  magnitude, angle = np.abs(padded), np.angle(padded)
  left, alpha = steps.astype(int), np.mod(steps, 1.0)
  mag = (1.0 - alpha) * magnitude[..., left] + alpha * magnitude[..., left + 1]
  dphase = angle[..., left + 1] - angle[..., left] - phi_advance
  dphase = dphase - 2.0 * np.pi * np.round(dphase / (2.0 * np.pi))
  advance = np.moveaxis(phi_advance + dphase, -1, 0).copy()  # [frame, ..., bin], contiguous rows
  phase = np.empty(advance.shape, angle.dtype)
  accumulated = angle[..., 0].copy()
  for t in range(len(steps)):
    phase[t] = accumulated
    accumulated += advance[t]  # In place: rounded to float32 like librosa's phase_acc.
  return librosa.util.phasor(np.moveaxis(phase, 0, -1), mag=mag)


def time_stretch(y: np.ndarray, rate: float) -> np.ndarray:
  """`librosa.effects.time_stretch(y, rate=rate)` with `phase_vocoder`: the same samples."""
  stretched = phase_vocoder(librosa.stft(y), rate=rate)
  return librosa.istft(stretched, dtype=y.dtype, length=int(round(y.shape[-1] / rate)))


def pitch_shift(y: np.ndarray, semitones: float, sr: int = audio.SAMPLE_RATE) -> np.ndarray:
  """`librosa.effects.pitch_shift(y, sr=sr, n_steps=semitones)` with `phase_vocoder`: the same samples."""
  rate = 2.0 ** (-float(semitones) / 12)
  shifted = librosa.resample(time_stretch(y, rate), orig_sr=float(sr) / rate, target_sr=sr,
                             res_type='soxr_hq', scale=False)
  return librosa.util.fix_length(shifted, size=y.shape[-1])


def pitch_shift_and_stretch(y: np.ndarray, semitones: float, rate: float,
                            sr: int = audio.SAMPLE_RATE) -> np.ndarray:
  """Pitch shift by `semitones`, then time stretch by `rate`: min(len(y), round(len(y) / rate)) samples.

  A stretched clip that came out longer is cut at the end to len(y); a shorter one is
  not padded, so that every segment cut from it is audio (float32). The samples are
  librosa's `effects.pitch_shift` then `effects.time_stretch`, computed with `phase_vocoder`.
  """
  stretched = time_stretch(pitch_shift(y, semitones, sr), rate)
  return stretched[:len(y)].astype(np.float32, copy=False)


def apply(y: np.ndarray, choice: Draw, params: AugmentParams,
          sr: int = audio.SAMPLE_RATE) -> np.ndarray:
  """Applies the choices of `draw` to mono audio `y`: float32, at most len(y) samples.

  Shorter than `y` only where a time stretch by a rate > 1 made it so (never padded).
  """
  y = np.asarray(y, np.float32)
  if y.ndim != 1:
    raise ValueError(f'augment expects mono audio of shape [samples], got {y.shape}.')
  # pitch_shift and time_stretch need at least one STFT frame (n_fft 2048).
  if choice.pitch and len(y) >= 2048 and (choice.semitones != 0 or choice.rate != 1):
    y = pitch_shift_and_stretch(y, choice.semitones, choice.rate, sr)
  if choice.noise and params.noise_level > 0:
    y = add_noise(y, params.noise_level, np.random.default_rng(choice.noise_seed))
  return y


def augment_clip(y: np.ndarray, *, seed: int, track: str, copy: int,
                 params: AugmentParams = AugmentParams(), sr: int = audio.SAMPLE_RATE) -> np.ndarray:
  """Copy `copy` (>= 1) of clip `track`: deterministic in (seed, track, copy, params)."""
  return apply(y, draw(params, seed=seed, track=track, copy=copy), params, sr)


def describe(copies: int, seed: int, params: AugmentParams) -> str:
  """One sentence naming the augmentation, for dataset descriptions."""
  p = params
  return (f'{copies} augmented copies of every training clip (seed {seed}): with probability '
          f'{p.pitch_prob:g} a pitch shift uniform in +-{p.pitch_semitones:g} semitones then a '
          f'time stretch by a rate uniform in [{1 - p.stretch_range:g}, {1 + p.stretch_range:g}], '
          f'cut to the clip length if longer (a shorter copy is not padded: it has fewer '
          f'segments, all of them audio); with probability {p.noise_prob:g} Gaussian noise '
          f'of std {p.noise_level:g} x the clip peak.')


def metadata(copies: int, seed: int, params: AugmentParams) -> dict[str, Any]:
  """JSON-serialisable record of an augmentation, for dataset metadata."""
  return {'copies': copies, 'seed': seed, 'algorithm_version': ALGORITHM_VERSION,
          **params.to_dict()}
