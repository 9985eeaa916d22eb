"""Deterministic synthetic stand-in for GTZAN (no download needed).

Each of the ten GTZAN genres is rendered as a *caricature*: a short loop of
note and drum events, placed on a beat grid and synthesised with vectorised
numpy (wavetable oscillators, exponential / ADSR envelopes, filtered-noise
drums).  Every class is defined by several cues at once, so a CNN on log-mel
spectrograms separates them from time-frequency structure:

=========  ======================================================================
genre      cues
=========  ======================================================================
blues      68-96 BPM triplet shuffle, boogie dyads (R5/R6/Rb7), walking bass,
           dominant-7th 12-bar form, bending vibrato lead, shuffle hi-hats
classical  no drums, slow sustained string chords with vibrato and slow attack,
           legato high melody, optional harp arpeggios, slow dynamic swells
country    100-135 BPM boom-chick: root/fifth bass on 1 & 3, bright strummed
           chords on 2 & 4, banjo rolls, brushy snare
disco      114-132 BPM four-on-the-floor kick, open hi-hat on every off-beat,
           octave-jumping bass, minor-7th string stabs
hiphop     80-98 BPM, long 808 sub-bass on a syncopated kick, heavy clap on
           2 & 4, 16th hats with rolls, dark sparse chords, vinyl crackle
jazz       125-190 BPM swing ride cymbal, hi-hat foot on 2 & 4, walking upright
           bass, rootless 7th/9th comping, swung horn line, no backbeat
metal      130-180 BPM 16th double-kick, crashes, heavily clipped low power-chord
           chugs (drop tuning), tritone / flat-2 riffs
pop        96-124 BPM, I-V-vi-IV pad, synth plucks, vibrato "vocal" lead,
           kick + clap backbeat, straight 8th hats
reggae     64-84 BPM one-drop (kick + rim on beat 3 only), short off-beat skank
           chords, deep melodic bass with rests
rock       100-140 BPM crunchy (moderately driven) 8th power chords in a higher
           register, kick/snare backbeat, crashes every few bars
=========  ======================================================================

Within a class every clip draws its own key, tempo, pattern variants, beat
phase, instrument levels and drum sounds, plus background noise.  The finished
clip is scaled to an RMS level drawn from one range shared by all classes, so
loudness alone carries no label information.

Everything is deterministic in ``(genre, index, seed)``: the only randomness
comes from ``np.random.default_rng([seed, genre, index])``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import numpy as np
from scipy import signal

SAMPLE_RATE = 22050
CLIP_SECONDS = 30.0
GENRES = ('blues', 'classical', 'country', 'disco', 'hiphop', 'jazz', 'metal',
          'pop', 'reggae', 'rock')  # alphabetical = GTZAN label order
CLIPS_PER_GENRE = 20
SPLIT_COUNTS = {'train': 14, 'validation': 3, 'test': 3}

# Overall clip level, shared by all classes (dBFS RMS).
_LEVEL_DBFS = (-34.0, -20.0)
# Background noise, relative to the music (dB).
_SNR_DB = (28.0, 45.0)
_TABLE_SIZE = 4096  # wavetable length (power of two)

__all__ = [
    'SAMPLE_RATE', 'CLIP_SECONDS', 'GENRES', 'CLIPS_PER_GENRE', 'SPLIT_COUNTS',
    'generate_clip', 'track_name', 'split_of',
]


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

def track_name(genre: int, index: int) -> str:
  """GTZAN-style track name, e.g. ``track_name(0, 3) == 'blues.00003'``."""
  _check(genre, index)
  return f'{GENRES[genre]}.{index:05d}'


def split_of(index: int) -> str:
  """Split of the clip ``index`` within its genre (track-disjoint).

  Indices ``0..13`` are train, ``14..16`` validation, ``17..19`` test.
  """
  if not 0 <= index < CLIPS_PER_GENRE:
    raise ValueError(f'index must be in [0, {CLIPS_PER_GENRE}), got {index}')
  end = 0
  for name, count in SPLIT_COUNTS.items():
    end += count
    if index < end:
      return name
  raise AssertionError('SPLIT_COUNTS does not cover CLIPS_PER_GENRE')


def generate_clip(genre: int, index: int, seed: int = 0, *,
                  sample_rate: int = SAMPLE_RATE,
                  seconds: float = CLIP_SECONDS) -> np.ndarray:
  """Synthesises one clip of ``GENRES[genre]``.

  Args:
    genre: label in ``[0, 10)`` (index into ``GENRES``).
    index: clip number within the genre (any non-negative int; the dataset
      uses ``0..CLIPS_PER_GENRE-1``).
    seed: dataset-level seed; ``(genre, index, seed)`` alone determines the
      output (no global random state is used).
    sample_rate: output sample rate in Hz.
    seconds: clip duration.

  Returns:
    float32 mono waveform of ``round(seconds * sample_rate)`` samples,
    within ``[-1, 1]``.
  """
  _check(genre, index)
  if seed < 0:
    raise ValueError(f'seed must be non-negative, got {seed}')
  n = int(round(seconds * sample_rate))
  if n <= 0:
    raise ValueError(f'seconds * sample_rate must be positive, got {n}')
  rng = np.random.default_rng([seed, genre, index])
  ctx = _Ctx(rng=rng, sr=int(sample_rate), n=n)
  mix = _GENRE_FNS[genre](ctx).astype(np.float32, copy=False)

  # Background noise (a gently low-passed hiss) at a random SNR.
  rms = float(np.sqrt(np.mean(mix**2))) + 1e-9
  noise = rng.standard_normal(n, dtype=np.float32)
  noise = signal.lfilter([0.5], [1.0, -0.5], noise).astype(np.float32)
  noise *= rms * 10 ** (-rng.uniform(*_SNR_DB) / 20) / np.sqrt(np.mean(noise**2))
  mix += noise

  # Short fades, then scale to a class-independent random RMS level.
  fade = min(n // 2, int(0.01 * sample_rate))
  if fade > 0:
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    mix[:fade] *= ramp
    mix[n - fade:] *= ramp[::-1]
  target = 10 ** (rng.uniform(*_LEVEL_DBFS) / 20)
  mix *= target / (float(np.sqrt(np.mean(mix**2))) + 1e-12)
  np.clip(mix, -1.0, 1.0, out=mix)
  return mix


def _check(genre: int, index: int) -> None:
  if not 0 <= genre < len(GENRES):
    raise ValueError(f'genre must be in [0, {len(GENRES)}), got {genre}')
  if index < 0:
    raise ValueError(f'index must be non-negative, got {index}')


# --------------------------------------------------------------------------
# Shared helpers: context, beat grid, placement
# --------------------------------------------------------------------------

@dataclasses.dataclass
class _Ctx:
  """Per-clip state: random generator, sample rate, length, tempo, phase."""
  rng: np.random.Generator
  sr: int
  n: int
  bpm: float = 120.0
  t0: float = 0.0  # time of the first bar line (<= 0: clip starts mid-bar)

  @property
  def seconds(self) -> float:
    return self.n / self.sr

  @property
  def beat(self) -> float:
    return 60.0 / self.bpm

  def set_tempo(self, lo: float, hi: float, beats_per_bar: int = 4) -> None:
    self.bpm = float(self.rng.uniform(lo, hi))
    self.t0 = -float(self.rng.uniform(0.0, beats_per_bar * self.beat))

  def db(self, lo: float, hi: float) -> float:
    """Random gain drawn uniformly in dB."""
    return float(10 ** (self.rng.uniform(lo, hi) / 20))

  def canvas(self) -> np.ndarray:
    return np.zeros(self.n, np.float32)


def _grid(ctx: _Ctx, positions: Sequence[float], beats_per_bar: int = 4,
          jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Repeats per-bar beat positions over the clip.

  Returns ``(times_in_seconds, bar_index, position_in_bar)`` for every event
  that starts before the clip ends (events may start before 0; the placement
  keeps their tails).
  """
  pos = np.asarray(positions, float)
  n_bars = int(np.ceil((ctx.seconds - ctx.t0) / (beats_per_bar * ctx.beat))) + 1
  bars = np.repeat(np.arange(n_bars), len(pos))
  in_bar = np.tile(pos, n_bars)
  times = ctx.t0 + (bars * beats_per_bar + in_bar) * ctx.beat
  if jitter > 0:
    times = times + ctx.rng.normal(0.0, jitter, times.shape)
  keep = (times < ctx.seconds) & (times > -4 * beats_per_bar * ctx.beat)
  return times[keep], bars[keep], in_bar[keep]


def _place(buf: np.ndarray, sample: np.ndarray, times, gains=1.0,
           sr: int = SAMPLE_RATE) -> None:
  """Adds ``gain * sample`` into ``buf`` at each start time (seconds)."""
  times = np.atleast_1d(np.asarray(times, float))
  gains = np.broadcast_to(np.asarray(gains, np.float32), times.shape)
  starts = np.round(times * sr).astype(np.int64)
  n, length = len(buf), len(sample)
  for s, g in zip(starts.tolist(), gains.tolist()):
    a, b = max(0, -s), min(length, n - s)
    if a < b:
      buf[s + a:s + b] += g * sample[a:b]


def _humanize(ctx: _Ctx, count: int, lo: float = 0.75,
              hi: float = 1.0) -> np.ndarray:
  return ctx.rng.uniform(lo, hi, count).astype(np.float32)


# --------------------------------------------------------------------------
# Tones: wavetable oscillators and envelopes
# --------------------------------------------------------------------------

_TIMBRES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'sine': lambda k: (k == 1).astype(float),
    'bass': lambda k: 1.0 / k**2.2,                      # round bass
    'upright': lambda k: np.exp(-0.6 * (k - 1)) * (1 + 0.5 * (k == 2)),
    'pluck': lambda k: np.abs(np.sin(np.pi * k * 0.22)) / k**0.9,  # guitar
    'banjo': lambda k: np.abs(np.sin(np.pi * k * 0.11)) / k**0.6,
    'piano': lambda k: 1.0 / k**1.7,
    'saw': lambda k: 1.0 / k,
    'string': lambda k: (1.0 / k**1.1) * (1 + 1.5 * np.exp(-((k - 4) / 2.5)**2)),
    'square': lambda k: (k % 2) / k,                     # clarinet/harmonica
    'organ': lambda k: np.isin(k, (1, 2, 3, 4, 6, 8)) * (1.0 / np.sqrt(k)),
    'vocal': lambda k: 0.4 / k + np.exp(-((k - 3.5) / 1.5)**2),
    'sax': lambda k: 1.0 / k**0.8 * (1 + 2 * np.exp(-((k - 5) / 2.0)**2)),
}


@functools.lru_cache(maxsize=None)
def _table(timbre: str, n_harm: int) -> np.ndarray:
  """One period of a band-limited waveform (peak-normalised, float32)."""
  k = np.arange(1, n_harm + 1, dtype=float)
  amps = _TIMBRES[timbre](k)
  phases = 0.37 * k * k  # fixed quadratic phases keep the crest factor low
  x = np.arange(_TABLE_SIZE) / _TABLE_SIZE
  wave = (amps[:, None] * np.sin(2 * np.pi * k[:, None] * x + phases[:, None])).sum(0)
  return (wave / np.max(np.abs(wave))).astype(np.float32)


def _hz(midi) -> np.ndarray:
  return 440.0 * 2.0 ** ((np.asarray(midi, float) - 69.0) / 12.0)


@functools.lru_cache(maxsize=32)
def _curve(kind: str, n: int, sr: int, param: float = 0.0) -> np.ndarray:
  """Cached, read-only time bases shared by many notes of equal length."""
  t = np.arange(n) / sr
  if kind == 'vibrato':  # integral of sin(2 pi rate t)
    t = (1 - np.cos(2 * np.pi * param * t)) / (2 * np.pi * param)
  elif kind == 'glide':  # integral of exp(-t / tau)
    t = param * (1 - np.exp(-t / param))
  t.flags.writeable = False
  return t


def _osc(midi: float, n: int, sr: int, timbre: str, *, max_harm: int = 32,
         vibrato: tuple[float, float] = (0.0, 0.0),
         glide: tuple[float, float] = (0.0, 0.05)) -> np.ndarray:
  """Wavetable oscillator.

  Args:
    vibrato: (rate_hz, depth_semitones).
    glide: (start_offset_semitones, time_constant_s): pitch starts offset and
      decays exponentially to the note (bends, 808 drops).
  """
  f = float(_hz(midi))
  k = int(max(1, min(max_harm, 0.45 * sr / (f * 2 ** (abs(glide[0]) / 12)))))
  cycles = f * _curve('time', n, sr)
  rate, depth = vibrato
  if depth:  # linearised in the (small) depth
    cycles += (f * depth * np.log(2) / 12) * _curve('vibrato', n, sr, float(rate))
  semis, tau = glide
  if semis:
    cycles += (f * semis * np.log(2) / 12) * _curve('glide', n, sr, float(tau))
  idx = (cycles * _TABLE_SIZE).astype(np.int64)
  idx &= _TABLE_SIZE - 1
  return _table(timbre, k)[idx]


def _env_decay(n: int, sr: int, tau: float, attack: float = 0.004) -> np.ndarray:
  """Plucked / struck envelope: short linear attack, exponential decay."""
  t = np.arange(n, dtype=np.float32) / sr
  env = np.exp(-t / tau).astype(np.float32)
  a = min(n, max(1, int(attack * sr)))
  env[:a] *= np.linspace(0, 1, a, dtype=np.float32)
  r = min(n, int(0.005 * sr))
  if r:
    env[n - r:] *= np.linspace(1, 0, r, dtype=np.float32)
  return env


def _env_adsr(n: int, sr: int, attack: float, decay: float, sustain: float,
              release: float) -> np.ndarray:
  """Piecewise-linear ADSR over ``n`` samples (release ends at ``n``)."""
  total = n / sr
  a = min(attack, 0.45 * total)
  r = min(release, 0.45 * total)
  d = min(decay, max(total - a - r, 0.0))
  knots = [0.0, a, a + d, total - r, total]
  knots = np.maximum.accumulate(np.asarray(knots)) + np.arange(5) * 1e-9
  t = np.arange(n, dtype=np.float32) / sr
  return np.interp(t, knots, [0.0, 1.0, sustain, sustain, 0.0]).astype(np.float32)


class _Instrument:
  """Renders (chords of) notes with one timbre/envelope, caching by pitch."""

  def __init__(self, ctx: _Ctx, timbre: str, *, env: str = 'decay',
               tau: float = 0.3, adsr=(0.01, 0.1, 0.7, 0.1), max_harm: int = 32,
               vibrato=(0.0, 0.0), glide=(0.0, 0.05), strum: float = 0.0,
               length: float | None = None):
    self.ctx, self.timbre, self.env, self.tau, self.adsr = ctx, timbre, env, tau, adsr
    self.max_harm, self.vibrato, self.glide, self.strum = max_harm, vibrato, glide, strum
    self.length = length if length is not None else min(5 * tau, 3.0)
    self._cache: dict[tuple, np.ndarray] = {}

  def render(self, notes: tuple[int, ...], dur: float | None = None) -> np.ndarray:
    sr = self.ctx.sr
    dur = self.length if dur is None else dur
    key = (notes, round(dur, 3))
    if key not in self._cache:
      n = max(8, int(dur * sr))
      lag = int(self.strum * sr)
      out = np.zeros(n + lag * (len(notes) - 1), np.float32)
      env = (_env_decay(n, sr, self.tau) if self.env == 'decay'
             else _env_adsr(n, sr, *self.adsr))
      for i, m in enumerate(notes):
        tone = _osc(m, n, sr, self.timbre, max_harm=self.max_harm,
                    vibrato=self.vibrato, glide=self.glide)
        out[i * lag:i * lag + n] += tone * env
      self._cache[key] = out / np.sqrt(len(notes))
    return self._cache[key]

  def play(self, buf: np.ndarray, times, notes_per_event, gains=1.0,
           durs=None) -> None:
    """Places one (chord of) note(s) per event time."""
    times = np.atleast_1d(times)
    gains = np.broadcast_to(np.asarray(gains, np.float32), times.shape)
    if durs is None:
      durs = [None] * len(times)
    for t, notes, g, d in zip(times, notes_per_event, gains, durs):
      notes = (int(notes),) if np.isscalar(notes) else tuple(int(x) for x in notes)
      _place(buf, self.render(notes, d), t, g, self.ctx.sr)


# Harmony helpers ----------------------------------------------------------

_CHORDS = {
    'maj': (0, 4, 7), 'min': (0, 3, 7), 'dom7': (0, 4, 7, 10),
    'min7': (0, 3, 7, 10), 'maj7': (0, 4, 7, 11), 'pow': (0, 7, 12),
    'dom9': (4, 10, 14, 21), 'min9': (3, 10, 14, 19), 'maj9': (4, 11, 14, 19),
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def _in_register(pc: int, low: int) -> int:
  """The MIDI note of pitch class ``pc`` in ``[low, low + 12)``."""
  return low + (pc - low) % 12


def _chord(root_pc: int, quality: str, low: int) -> tuple[int, ...]:
  root = _in_register(root_pc, low)
  return tuple(root + i for i in _CHORDS[quality])


def _scale_notes(key: int, scale: Sequence[int], low: int, high: int) -> np.ndarray:
  notes = [m for m in range(low, high + 1) if (m - key) % 12 in scale]
  return np.asarray(notes)


def _walk(ctx: _Ctx, pool: np.ndarray, count: int, max_step: int = 2) -> np.ndarray:
  """Random walk (mostly stepwise) over the sorted note pool."""
  steps = ctx.rng.integers(-max_step, max_step + 1, count)
  idx = np.cumsum(steps) + ctx.rng.integers(len(pool) // 3, 2 * len(pool) // 3 + 1)
  period = max(1, 2 * (len(pool) - 1))  # reflect at the ends of the pool
  idx = idx % period
  idx = np.where(idx >= len(pool), period - idx, idx)
  return pool[idx]


# --------------------------------------------------------------------------
# Drums: filtered noise and pitched sweeps
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _sos(kind: str, freqs: tuple[float, ...], sr: int, order: int = 2):
  wn = [min(f, 0.45 * sr) for f in freqs]  # stay below Nyquist at low rates
  if len(wn) == 2:
    wn[0] = min(wn[0], 0.5 * wn[1])
  return signal.butter(order, wn if len(wn) == 2 else wn[0], btype=kind,
                       fs=sr, output='sos')


def _noise_hit(ctx: _Ctx, dur: float, tau: float, kind: str,
               freqs: tuple[float, ...]) -> np.ndarray:
  n = int(dur * ctx.sr)
  noise = ctx.rng.standard_normal(n).astype(np.float32)
  noise = signal.sosfilt(_sos(kind, freqs, ctx.sr), noise).astype(np.float32)
  noise /= np.max(np.abs(noise)) + 1e-9
  return noise * _env_decay(n, ctx.sr, tau, attack=0.001)


def _kick(ctx: _Ctx) -> np.ndarray:
  rng, sr = ctx.rng, ctx.sr
  n = int(0.4 * sr)
  t = np.arange(n) / sr
  f_hi, f_lo, tau_f = rng.uniform(110, 170), rng.uniform(42, 60), rng.uniform(0.02, 0.04)
  phase = 2 * np.pi * (f_lo * t + (f_hi - f_lo) * tau_f * (1 - np.exp(-t / tau_f)))
  body = np.sin(phase).astype(np.float32) * _env_decay(n, sr, rng.uniform(0.12, 0.22), 0.001)
  click = _noise_hit(ctx, 0.4, 0.004, 'lowpass', (4000.0,))
  return body + 0.3 * click


def _snare(ctx: _Ctx, tau: float | None = None) -> np.ndarray:
  rng, sr = ctx.rng, ctx.sr
  tau = rng.uniform(0.06, 0.12) if tau is None else tau
  noise = _noise_hit(ctx, 0.45, tau, 'bandpass', (1200.0, 9000.0))
  n = len(noise)
  body = _osc(rng.uniform(52, 57), n, sr, 'sine') * _env_decay(n, sr, 0.04, 0.001)
  return 0.9 * noise + 0.6 * body


def _layer(*parts: np.ndarray) -> np.ndarray:
  """Sums one-shots of different lengths (zero-padding the shorter ones)."""
  out = np.zeros(max(len(p) for p in parts), np.float32)
  for p in parts:
    out[:len(p)] += p
  return out


def _clap(ctx: _Ctx) -> np.ndarray:
  burst = _noise_hit(ctx, 0.35, 0.09, 'bandpass', (900.0, 4000.0))
  out = burst.copy()
  for lag in (0.011, 0.022):  # the classic multi-burst attack
    k = int(lag * ctx.sr)
    out[k:] += 0.8 * burst[:-k]
  return out / np.max(np.abs(out))


def _hat(ctx: _Ctx, open_: bool = False) -> np.ndarray:
  tau = ctx.rng.uniform(0.12, 0.2) if open_ else ctx.rng.uniform(0.015, 0.03)
  return _noise_hit(ctx, 5 * tau + 0.01, tau, 'highpass', (7000.0,))


def _ride(ctx: _Ctx) -> np.ndarray:
  rng, sr = ctx.rng, ctx.sr
  wash = _noise_hit(ctx, 1.2, rng.uniform(0.35, 0.6), 'highpass', (5000.0,))
  n = len(wash)
  bell = sum(_osc(m, n, sr, 'sine') for m in rng.uniform(96, 106, 4))
  return 0.6 * wash + 0.12 * bell * _env_decay(n, sr, 0.3, 0.001)


def _crash(ctx: _Ctx) -> np.ndarray:
  return _noise_hit(ctx, 2.0, ctx.rng.uniform(0.5, 0.8), 'highpass', (3000.0,))


def _rim(ctx: _Ctx) -> np.ndarray:
  n = int(0.12 * ctx.sr)
  tone = _osc(ctx.rng.uniform(83, 88), n, ctx.sr, 'square', max_harm=7)
  click = _noise_hit(ctx, 0.12, 0.01, 'bandpass', (2000.0, 8000.0))
  return (0.7 * tone + 0.5 * click) * _env_decay(n, ctx.sr, 0.018, 0.0005)


# --------------------------------------------------------------------------
# Genres.  Each returns an un-normalised float32 mix of ``ctx.n`` samples.
# --------------------------------------------------------------------------

def _blues(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(68, 96)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  sw = 2 / 3  # triplet swing

  # 12-bar form (optionally "quick change" to IV in bar 2), dominant 7ths.
  form = [0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7]
  if rng.random() < 0.5:
    form[1] = 5
  root_of = lambda bars: (key + np.asarray(form)[bars % 12]) % 12

  # Shuffle hats, kick on 1 & 3, snare on 2 & 4.
  t, _, p = _grid(ctx, [0, sw, 1, 1 + sw, 2, 2 + sw, 3, 3 + sw], jitter=0.004)
  _place(drums, _hat(ctx), t, np.where(p % 1 == 0, 0.5, 0.3) * _humanize(ctx, len(t)), ctx.sr)
  t, _, _ = _grid(ctx, [0, 2], jitter=0.004)
  _place(drums, _kick(ctx), t, 0.8 * _humanize(ctx, len(t)), ctx.sr)
  t, _, _ = _grid(ctx, [1, 3], jitter=0.004)
  _place(drums, _snare(ctx), t, 0.45 * _humanize(ctx, len(t)), ctx.sr)

  # Boogie guitar: root + 5th / 6th / b7th dyads on swung eighths.
  guitar = _Instrument(ctx, 'pluck', tau=rng.uniform(0.12, 0.2), length=0.5)
  t, bars, p = _grid(ctx, [0, sw, 1, 1 + sw, 2, 2 + sw, 3, 3 + sw], jitter=0.003)
  upper = np.array([7, 7, 9, 9, 10, 10, 9, 9])[np.floor(p).astype(int) * 2 + (p % 1 > 0)]
  low = int(rng.integers(40, 46))
  roots = np.array([_in_register(r, low) for r in root_of(bars)])
  guitar.play(music, t, zip(roots, roots + upper), 0.5 * _humanize(ctx, len(t), 0.8))

  # Walking bass, one note per beat.
  bass = _Instrument(ctx, 'bass', tau=0.35, length=1.0)
  t, bars, p = _grid(ctx, [0, 1, 2, 3], jitter=0.004)
  walk = np.where(bars % 2 == 0, np.array([0, 4, 7, 9])[p.astype(int)],
                  np.array([10, 9, 7, 4])[p.astype(int)])
  roots = np.array([_in_register(r, 28) for r in root_of(bars)])
  bass.play(music, t, roots + walk, 0.8 * _humanize(ctx, len(t), 0.85))

  # Bending, vibrato-laden lead (harmonica / guitar) in alternate bars.
  lead = _Instrument(ctx, rng.choice(['square', 'pluck']), env='adsr',
                     adsr=(0.02, 0.2, 0.6, 0.15), vibrato=(rng.uniform(5, 6.5), 0.35),
                     glide=(-1.0, 0.08))
  pool = _scale_notes(key, (0, 3, 5, 6, 7, 10), 62, 79)
  t, bars, _ = _grid(ctx, [0, sw, 1 + sw, 2, 3], jitter=0.01)
  sel = (bars % 2 == 1) & (rng.random(len(t)) < 0.7)
  notes = _walk(ctx, pool, int(sel.sum()))
  lead.play(music, t[sel], notes, 0.35, durs=[ctx.beat * 0.9] * int(sel.sum()))

  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _classical(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(50, 80)
  key = int(rng.integers(12))
  minor = rng.random() < 0.5
  music = ctx.canvas()
  if minor:
    prog = [[(0, 'min'), (5, 'min'), (7, 'maj'), (0, 'min')],
            [(0, 'min'), (8, 'maj'), (3, 'maj'), (7, 'maj')]][rng.integers(2)]
    scale = _MINOR
  else:
    prog = [[(0, 'maj'), (9, 'min'), (5, 'maj'), (7, 'maj')],
            [(0, 'maj'), (5, 'maj'), (7, 'maj'), (0, 'maj')],
            [(0, 'maj'), (2, 'min'), (7, 'maj'), (0, 'maj')]][rng.integers(3)]
    scale = _MAJOR
  bar = 4 * ctx.beat
  vib = (rng.uniform(4.8, 6.0), rng.uniform(0.1, 0.18))

  # String section: sustained chords, slow attack, overlapping release.
  strings = _Instrument(ctx, 'string', env='adsr', max_harm=24, vibrato=vib,
                        adsr=(rng.uniform(0.25, 0.5), 0.3, 0.85, 0.6))
  cello = _Instrument(ctx, 'string', env='adsr', max_harm=16, vibrato=vib,
                      adsr=(0.3, 0.3, 0.9, 0.6))
  t, bars, _ = _grid(ctx, [0])
  low = int(rng.integers(55, 61))
  for ti, b in zip(t, bars):
    r, q = prog[b % len(prog)]
    chord = _chord(key + r, q, low)
    strings.play(music, [ti], [chord], 0.45, durs=[bar + 0.5])
    cello.play(music, [ti], [_in_register(key + r, 36)], 0.5, durs=[bar + 0.5])

  # Legato melody (violin / flute) with stronger vibrato, half & quarter notes.
  melody = _Instrument(ctx, rng.choice(['string', 'sine']), env='adsr',
                       adsr=(0.08, 0.1, 0.9, 0.12), max_harm=12,
                       vibrato=(vib[0], 0.3))
  pool = _scale_notes(key, scale, 72, 88)
  t, _, p = _grid(ctx, [0, 2, 3])
  durs = np.where(p == 0, 2, 1) * ctx.beat * 1.02
  melody.play(music, t, _walk(ctx, pool, len(t), 1), 0.3, durs=durs)

  # Optional harp arpeggios.
  if rng.random() < 0.5:
    harp = _Instrument(ctx, 'pluck', tau=0.5, length=1.5)
    t, bars, p = _grid(ctx, np.arange(8) / 2)
    chords = [_chord(key + prog[b % len(prog)][0], prog[b % len(prog)][1], 60) for b in bars]
    idx = np.array([0, 1, 2, 1, 0, 1, 2, 1])[(p * 2).astype(int)] + (p >= 2)
    notes = [c[i % len(c)] + 12 * (i // len(c)) for c, i in zip(chords, idx)]
    harp.play(music, t, notes, 0.2)

  # Slow dynamic swells (phrase-level crescendo / diminuendo).
  knots = np.arange(0, ctx.seconds + 8, rng.uniform(4, 8))
  swell = np.interp(np.arange(ctx.n) / ctx.sr, knots, rng.uniform(0.45, 1.0, len(knots)))
  return music * swell.astype(np.float32)


def _country(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(100, 135)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  prog = [[0, 5, 0, 7], [0, 0, 5, 7], [0, 5, 7, 0]][rng.integers(3)]
  root_of = lambda bars: (key + np.asarray(prog)[bars % len(prog)]) % 12

  # Boom: root on 1, fifth (below) on 3.
  bass = _Instrument(ctx, 'bass', tau=0.25, length=0.8)
  t, bars, p = _grid(ctx, [0, 2], jitter=0.003)
  roots = np.array([_in_register(r, 36) for r in root_of(bars)])
  bass.play(music, t, np.where(p == 0, roots, roots - 5), 0.9)

  # Chick: bright strummed open chords on 2 & 4 (+ lighter off-beat strums).
  guitar = _Instrument(ctx, 'pluck', tau=rng.uniform(0.12, 0.2), strum=0.012,
                       length=0.5)
  t, bars, p = _grid(ctx, [1, 1.5, 3, 3.5], jitter=0.003)
  chords = [tuple(_in_register(r, 45) + np.array([0, 7, 12, 16, 19, 24])) for r in root_of(bars)]
  guitar.play(music, t, chords, np.where(p % 1 == 0, 0.6, 0.3))

  # Banjo forward rolls on eighths, high and bright.
  banjo = _Instrument(ctx, 'banjo', tau=0.1, length=0.35)
  t, bars, p = _grid(ctx, np.arange(8) / 2, jitter=0.003)
  roll = np.array([0, 1, 2, 0, 1, 2, 0, 2])[(p * 2).astype(int)]
  tones = np.array([0, 7, 16])[roll]
  roots = np.array([_in_register(r, 62) for r in root_of(bars)])
  banjo.play(music, t, roots + tones, 0.3 * _humanize(ctx, len(t), 0.7))

  # Brushy snare on 2 & 4, soft kick on 1 & 3, light hats.
  t, _, _ = _grid(ctx, [1, 3], jitter=0.004)
  _place(drums, _snare(ctx, tau=rng.uniform(0.12, 0.18)), t, 0.3, ctx.sr)
  t, _, _ = _grid(ctx, [0, 2], jitter=0.004)
  _place(drums, _kick(ctx), t, 0.5, ctx.sr)
  t, _, _ = _grid(ctx, np.arange(8) / 2, jitter=0.004)
  _place(drums, _hat(ctx), t, 0.12 * _humanize(ctx, len(t)), ctx.sr)
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _disco(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(114, 132)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  prog = [[(0, 'min7'), (5, 'min7')], [(0, 'min7'), (10, 'maj7')],
          [(0, 'min7'), (5, 'dom7'), (10, 'maj7'), (3, 'maj7')]][rng.integers(3)]

  # Four-on-the-floor, clap on 2 & 4, open hats on every off-beat.
  t, _, _ = _grid(ctx, [0, 1, 2, 3])
  _place(drums, _kick(ctx), t, 1.0, ctx.sr)
  t, _, _ = _grid(ctx, [1, 3])
  _place(drums, _layer(0.6 * _clap(ctx), 0.4 * _snare(ctx)), t, 0.55, ctx.sr)
  t, _, _ = _grid(ctx, [0.5, 1.5, 2.5, 3.5])
  _place(drums, _hat(ctx, open_=True), t, 0.45, ctx.sr)
  t, _, _ = _grid(ctx, [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75])
  _place(drums, _hat(ctx), t, 0.15 * _humanize(ctx, len(t)), ctx.sr)

  # Octave-jumping eighth-note bass.
  bass = _Instrument(ctx, 'saw', tau=0.09, max_harm=10, length=0.3)
  t, bars, p = _grid(ctx, np.arange(8) / 2)
  roots = np.array([_in_register(key + prog[b % len(prog)][0], 33) for b in bars])
  bass.play(music, t, roots + 12 * ((p * 2) % 2), 0.8)

  # String stabs on the "and" of 2 and on 4, plus a soft sustained pad.
  stabs = _Instrument(ctx, 'saw', env='adsr', adsr=(0.01, 0.08, 0.5, 0.08),
                      max_harm=20, length=0.25)
  t, bars, _ = _grid(ctx, [1.5, 3])
  chords = [_chord(key + prog[b % len(prog)][0], prog[b % len(prog)][1], 62) for b in bars]
  stabs.play(music, t, chords, 0.4)
  pad = _Instrument(ctx, 'string', env='adsr', adsr=(0.3, 0.2, 0.8, 0.3),
                    max_harm=16, vibrato=(5.5, 0.1))
  t, bars, _ = _grid(ctx, [0])
  chords = [_chord(key + prog[b % len(prog)][0], prog[b % len(prog)][1], 67) for b in bars]
  pad.play(music, t, chords, 0.15, durs=[4 * ctx.beat] * len(t))
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _hiphop(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(80, 98)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  prog = [[(0, 'min'), (8, 'maj')], [(0, 'min7'), (5, 'min7')],
          [(0, 'min'), (3, 'maj'), (8, 'maj'), (7, 'min')]][rng.integers(3)]
  kick_pos = [[0, 1.75, 2.5], [0, 0.75, 2.25, 2.5], [0, 2, 2.75], [0, 0.5, 2.5, 3.25]][rng.integers(4)]

  # Syncopated kick doubled by a long 808 sub-bass with a pitch drop.
  t, bars, _ = _grid(ctx, kick_pos, jitter=0.002)
  _place(drums, _kick(ctx), t, 0.7, ctx.sr)
  sub = _Instrument(ctx, 'sine', tau=rng.uniform(0.4, 0.7), glide=(3.0, 0.03),
                    length=1.2)
  notes = [_in_register(key + prog[(b // 2) % len(prog)][0], 28) for b in bars]
  sub.play(music, t, notes, 0.9)

  # Heavy clap + snare on 2 & 4.
  t, _, _ = _grid(ctx, [1, 3])
  _place(drums, _layer(_clap(ctx), 0.6 * _snare(ctx)), t, 0.8, ctx.sr)

  # 16th hats with accents, 32nd rolls at the end of every other bar.
  hat = _hat(ctx)
  t, bars, p = _grid(ctx, np.arange(16) / 4, jitter=0.002)
  _place(drums, hat, t, np.where(p % 0.5 == 0, 0.35, 0.18) * _humanize(ctx, len(t)), ctx.sr)
  t, bars, _ = _grid(ctx, 3 + np.arange(8) / 8)
  t = t[bars % 2 == 1]
  _place(drums, hat, t, np.linspace(0.1, 0.3, len(t)) if len(t) else 0.0, ctx.sr)

  # Dark, sparse keys: one long low-passed chord every two bars.
  keys = _Instrument(ctx, rng.choice(['piano', 'organ']), tau=1.2, max_harm=6, length=3.0)
  t, bars, _ = _grid(ctx, [0])
  sel = bars % 2 == 0
  chords = [_chord(key + prog[(b // 2) % len(prog)][0], prog[(b // 2) % len(prog)][1], 55)
            for b in bars[sel]]
  keys.play(music, t[sel], chords, 0.35)

  # Vinyl crackle: sparse random clicks.
  clicks = rng.integers(0, ctx.n, int(rng.uniform(15, 40) * ctx.seconds))
  music[clicks] += rng.uniform(-0.3, 0.3, len(clicks)).astype(np.float32)
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _jazz(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(125, 190)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  sw = 2 / 3
  prog = [[(2, 'min9'), (7, 'dom9'), (0, 'maj9'), (0, 'maj9')],
          [(2, 'min9'), (7, 'dom9'), (0, 'maj9'), (9, 'dom9')],
          [(0, 'maj9'), (9, 'min9'), (2, 'min9'), (7, 'dom9')]][rng.integers(3)]

  # Swing ride ("ding, ding-a ding"), hi-hat foot on 2 & 4, ghost snare.
  t, _, p = _grid(ctx, [0, 1, 1 + sw, 2, 3, 3 + sw], jitter=0.004)
  _place(drums, _ride(ctx), t, np.where(p % 1 == 0, 0.45, 0.3) * _humanize(ctx, len(t)), ctx.sr)
  t, _, _ = _grid(ctx, [1, 3], jitter=0.003)
  _place(drums, _hat(ctx), t, 0.3, ctx.sr)
  t, _, _ = _grid(ctx, [0, sw, 1, 1 + sw, 2, 2 + sw, 3, 3 + sw], jitter=0.006)
  t = t[rng.random(len(t)) < 0.12]
  _place(drums, _snare(ctx, tau=0.08), t, 0.12 * _humanize(ctx, len(t)), ctx.sr)

  # Walking upright bass: chord tones plus a chromatic approach on beat 4.
  bass = _Instrument(ctx, 'upright', tau=0.3, length=1.0, glide=(-0.3, 0.02))
  t, bars, p = _grid(ctx, [0, 1, 2, 3], jitter=0.004)
  roots = np.array([_in_register(key + prog[b % len(prog)][0], 33) for b in bars])
  nxt = np.array([_in_register(key + prog[(b + 1) % len(prog)][0], 33) for b in bars])
  pick = rng.choice([3, 4, 7, 10, 12], len(t))
  notes = np.where(p == 0, roots, np.where(p == 3, nxt + rng.choice([-1, 1], len(t)), roots + pick))
  bass.play(music, t, notes, 0.8 * _humanize(ctx, len(t), 0.85))

  # Comping: rootless 9th voicings on swung off-beats (Charleston and friends).
  piano = _Instrument(ctx, 'piano', tau=0.4, length=0.9)
  t, bars, _ = _grid(ctx, [0, sw, 1 + sw, 2 + sw, 3 + sw], jitter=0.008)
  sel = rng.random(len(t)) < 0.4
  chords = [tuple(_in_register(key + prog[b % len(prog)][0], 48) + np.array(_CHORDS[prog[b % len(prog)][1]]))
            for b in bars[sel]]
  piano.play(music, t[sel], chords, 0.4 * _humanize(ctx, int(sel.sum()), 0.7))

  # Horn line on swung eighths in alternate 2-bar phrases.
  horn = _Instrument(ctx, 'sax', env='adsr', adsr=(0.03, 0.05, 0.8, 0.05),
                     max_harm=20, vibrato=(5.0, 0.12))
  pool = _scale_notes(key, (0, 2, 3, 4, 7, 9, 10), 60, 77)
  t, bars, p = _grid(ctx, [0, sw, 1, 1 + sw, 2, 2 + sw, 3, 3 + sw], jitter=0.006)
  sel = ((bars // 2) % 2 == int(rng.integers(2))) & (rng.random(len(t)) < 0.85)
  durs = np.where(p % 1 == 0, sw, 1 - sw) * ctx.beat
  horn.play(music, t[sel], _walk(ctx, pool, int(sel.sum())), 0.3, durs=durs[sel])
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _distort(x: np.ndarray, drive: float, clip: float = 1.0) -> np.ndarray:
  """Normalises to unit RMS, then soft (tanh) plus hard clipping."""
  x = x / (float(np.sqrt(np.mean(x**2))) + 1e-9)
  return np.clip(np.tanh(drive * x), -clip, clip)


def _metal(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(130, 180)
  key = int(rng.integers(12))
  drums, guitar_buf, bass_buf = ctx.canvas(), ctx.canvas(), ctx.canvas()
  riff = [[0, 0, 1, 0], [0, 0, 6, 5], [0, 3, 1, 0], [0, 0, 6, 1]][rng.integers(4)]

  # 16th double kick, snare backbeat or blast beat, crash every bar.
  t, _, _ = _grid(ctx, np.arange(16) / 4, jitter=0.002)
  _place(drums, _kick(ctx), t, 0.7 * _humanize(ctx, len(t), 0.85), ctx.sr)
  snare_pos = [1, 3] if rng.random() < 0.6 else [0.5, 1.5, 2.5, 3.5]
  t, _, _ = _grid(ctx, snare_pos, jitter=0.002)
  _place(drums, _snare(ctx), t, 0.7, ctx.sr)
  t, _, _ = _grid(ctx, [0], jitter=0.002)
  _place(drums, _crash(ctx), t, 0.5, ctx.sr)
  t, _, _ = _grid(ctx, [0.5, 1.5, 2.5, 3.5])
  _place(drums, _hat(ctx, open_=True), t, 0.2, ctx.sr)

  # Palm-muted 16th chugs on low power chords (drop tuning) ...
  chug = _Instrument(ctx, 'saw', tau=rng.uniform(0.05, 0.08), max_harm=40, length=0.25)
  t, bars, p = _grid(ctx, np.arange(16) / 4, jitter=0.002)
  roots = np.array([_in_register(key + riff[int(q)], 26) for q in p])
  chords = [(r, r + 7, r + 12) for r in roots]
  accent = np.where(p % 1 == 0, 1.0, 0.7)
  chug.play(guitar_buf, t, chords, accent)
  bass = _Instrument(ctx, 'saw', tau=0.1, max_harm=8, length=0.3)
  t8 = p % 0.5 == 0
  bass.play(bass_buf, t[t8], roots[t8] - 12, 0.8)

  # ... and a ringing chord at the start of every other bar.
  ring = _Instrument(ctx, 'saw', tau=0.6, max_harm=40, length=1.5)
  t, bars, _ = _grid(ctx, [0])
  sel = bars % 2 == 1
  ring.play(guitar_buf, t[sel], [(_in_register(key, 26) + np.array([0, 7, 12, 19]))] * int(sel.sum()), 1.0)

  guitar = _distort(guitar_buf, rng.uniform(6, 12), clip=rng.uniform(0.6, 0.8))
  bass = _distort(bass_buf, 2.0)
  drums /= float(np.sqrt(np.mean(drums**2))) + 1e-9
  return 0.25 * drums * ctx.db(-2, 2) + 0.5 * guitar * ctx.db(-2, 2) + 0.2 * bass


def _pop(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(96, 124)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  prog = [[(0, 'maj'), (7, 'maj'), (9, 'min'), (5, 'maj')],
          [(9, 'min'), (5, 'maj'), (0, 'maj'), (7, 'maj')],
          [(0, 'maj'), (5, 'maj'), (9, 'min'), (7, 'maj')]][rng.integers(3)]
  chord_of = lambda b, low: _chord(key + prog[b % len(prog)][0], prog[b % len(prog)][1], low)

  # Kick, clap backbeat, straight 8th hats.
  t, _, _ = _grid(ctx, [[0, 2, 2.5], [0, 1.5, 2]][rng.integers(2)])
  _place(drums, _kick(ctx), t, 0.8, ctx.sr)
  t, _, _ = _grid(ctx, [1, 3])
  _place(drums, _layer(0.7 * _clap(ctx), 0.5 * _snare(ctx)), t, 0.5, ctx.sr)
  t, _, _ = _grid(ctx, np.arange(8) / 2)
  _place(drums, _hat(ctx), t, 0.25 * _humanize(ctx, len(t)), ctx.sr)

  # Sustained pad, one chord per bar; synth plucks arpeggiating on eighths.
  pad = _Instrument(ctx, 'saw', env='adsr', adsr=(0.05, 0.3, 0.7, 0.15), max_harm=12)
  t, bars, _ = _grid(ctx, [0])
  pad.play(music, t, [chord_of(b, 60) for b in bars], 0.3, durs=[4 * ctx.beat] * len(t))
  pluck = _Instrument(ctx, 'square', tau=0.12, max_harm=15, length=0.4)
  t, bars, p = _grid(ctx, np.arange(8) / 2)
  idx = np.array([0, 1, 2, 1, 0, 2, 1, 2])[(p * 2).astype(int)]
  notes = [chord_of(b, 72)[i] for b, i in zip(bars, idx)]
  pluck.play(music, t, notes, 0.2)

  # Clean eighth-note bass on the root.
  bass = _Instrument(ctx, 'bass', tau=0.15, length=0.4)
  t, bars, _ = _grid(ctx, np.arange(8) / 2)
  bass.play(music, t, [chord_of(b, 36)[0] for b in bars], 0.7)

  # "Vocal" lead: vibrato, pentatonic, 2-bar phrases with rests.
  voice = _Instrument(ctx, 'vocal', env='adsr', adsr=(0.04, 0.1, 0.85, 0.08),
                      max_harm=16, vibrato=(rng.uniform(5, 6), 0.3))
  pool = _scale_notes(key, (0, 2, 4, 7, 9), 64, 81)
  pos, length = np.array([0, 1, 1.5, 2, 3]), np.array([1, 0.5, 0.5, 1, 1])
  t, bars, p = _grid(ctx, pos, jitter=0.01)
  sel = (bars % 4) < 3
  durs = length[np.searchsorted(pos, p)] * ctx.beat
  voice.play(music, t[sel], _walk(ctx, pool, int(sel.sum()), 2), 0.35, durs=durs[sel])
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _reggae(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(64, 84)
  key = int(rng.integers(12))
  drums, music = ctx.canvas(), ctx.canvas()
  prog = [[(0, 'maj'), (5, 'maj')], [(0, 'min'), (5, 'min')],
          [(0, 'min'), (10, 'maj')], [(0, 'maj'), (7, 'maj'), (5, 'maj'), (0, 'maj')]][rng.integers(4)]
  chord_of = lambda b, low: _chord(key + prog[b % len(prog)][0], prog[b % len(prog)][1], low)

  # One drop: kick + rim together on beat 3 only; light swung hats.
  t, _, _ = _grid(ctx, [2], jitter=0.003)
  _place(drums, _kick(ctx), t, 0.9, ctx.sr)
  _place(drums, _rim(ctx), t, 0.6, ctx.sr)
  t, _, p = _grid(ctx, [0, 0.58, 1, 1.58, 2, 2.58, 3, 3.58], jitter=0.004)
  _place(drums, _hat(ctx), t, 0.15 * _humanize(ctx, len(t)), ctx.sr)

  # Skank: short, bright off-beat chords.
  skank = _Instrument(ctx, rng.choice(['pluck', 'organ']), env='adsr',
                      adsr=(0.003, 0.04, 0.3, 0.03), length=0.12)
  t, bars, _ = _grid(ctx, [0.5, 1.5, 2.5, 3.5], jitter=0.003)
  skank.play(music, t, [chord_of(b, 60) for b in bars], 0.5)

  # Deep, melodic bass with rests (often none on beat 1).
  pattern = [[(0.5, 0.5, 0), (1.0, 1.0, 0), (2.0, 0.5, 7), (2.5, 0.5, 12), (3.5, 0.5, 10)],
             [(0.0, 1.0, 0), (1.5, 0.5, 3), (2.0, 1.0, 7), (3.0, 0.5, 5), (3.5, 0.5, 3)],
             [(0.75, 0.75, 0), (1.5, 1.0, 0), (2.5, 0.5, 7), (3.0, 1.0, 5)]][rng.integers(3)]
  bass = _Instrument(ctx, 'bass', env='adsr', adsr=(0.01, 0.2, 0.7, 0.06), max_harm=4)
  pos, length, step = (np.array(x) for x in zip(*pattern))
  t, bars, p = _grid(ctx, pos, jitter=0.004)
  k = np.searchsorted(pos, p)
  notes = [chord_of(b, 31)[0] + step[i] for b, i in zip(bars, k)]
  bass.play(music, t, notes, 1.0, durs=length[k] * ctx.beat)

  # Organ "bubble" sometimes.
  if rng.random() < 0.5:
    organ = _Instrument(ctx, 'organ', env='adsr', adsr=(0.01, 0.05, 0.6, 0.04), max_harm=8,
                        length=0.15)
    t, bars, _ = _grid(ctx, [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75])
    organ.play(music, t, [chord_of(b, 48) for b in bars], 0.12)
  return drums * ctx.db(-2, 2) + music * ctx.db(-2, 2)


def _rock(ctx: _Ctx) -> np.ndarray:
  rng = ctx.rng
  ctx.set_tempo(100, 140)
  key = int(rng.integers(12))
  drums, guitar_buf, music = ctx.canvas(), ctx.canvas(), ctx.canvas()
  prog = [[0, 10, 5, 0], [0, 5, 7, 5], [0, 7, 9, 5], [0, 3, 5, 5]][rng.integers(4)]

  # Kick 1 & 3 (+ the "and" of 3), loud snare 2 & 4, 8th hats, crash every 4 bars.
  t, _, _ = _grid(ctx, [0, 2, 2.5], jitter=0.004)
  _place(drums, _kick(ctx), t, 0.8, ctx.sr)
  t, _, _ = _grid(ctx, [1, 3], jitter=0.004)
  _place(drums, _snare(ctx), t, 0.8, ctx.sr)
  t, _, _ = _grid(ctx, np.arange(8) / 2, jitter=0.004)
  _place(drums, _hat(ctx, open_=rng.random() < 0.3), t, 0.2 * _humanize(ctx, len(t)), ctx.sr)
  t, bars, _ = _grid(ctx, [0])
  _place(drums, _crash(ctx), t[bars % 4 == 0], 0.5, ctx.sr)

  # Driving 8th-note power chords with moderate crunch.
  guitar = _Instrument(ctx, 'saw', tau=rng.uniform(0.2, 0.35), max_harm=24, length=0.6)
  t, bars, _ = _grid(ctx, np.arange(8) / 2, jitter=0.003)
  roots = np.array([_in_register(key + prog[b % len(prog)], 40) for b in bars])
  guitar.play(guitar_buf, t, [(r, r + 7, r + 12) for r in roots], _humanize(ctx, len(t), 0.8))
  bass = _Instrument(ctx, 'bass', tau=0.2, length=0.5)
  bass.play(music, t, roots - 12, 0.7)
  guitar = _distort(guitar_buf, rng.uniform(1.5, 3.0))
  drums /= float(np.sqrt(np.mean(drums**2))) + 1e-9
  music /= float(np.sqrt(np.mean(music**2))) + 1e-9
  return 0.4 * drums * ctx.db(-2, 2) + 0.35 * guitar * ctx.db(-2, 2) + 0.2 * music


_GENRE_FNS: tuple[Callable[[_Ctx], np.ndarray], ...] = (
    _blues, _classical, _country, _disco, _hiphop, _jazz, _metal, _pop,
    _reggae, _rock)
assert len(_GENRE_FNS) == len(GENRES)
