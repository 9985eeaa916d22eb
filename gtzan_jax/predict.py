"""Classifies audio files with a trained workdir: the top-3 genres of each file.

  python -m gtzan_jax.predict --workdir=runs/synthetic song.mp3 clip.wav [--segments] [--json] [--max_segments=14]

Files of any length, sample rate, channel count and format that
`tfds_gtzan.audio.load_audio` decodes. Each file is cut into whole 2 s segments
from its start, and by default only the first `tfds_gtzan.audio.MAX_SEGMENTS`
(14: 28 s) are classified, as the dataset keeps them: the segments come from
`audio.segment_features_of_blocks`, which gives the builder's
`audio.segment_features`, so a GTZAN file's prediction is evaluate's track
result for that clip. --max_segments=0 classifies every whole segment (for
long songs). A rest shorter than 2 s is dropped; a file shorter than 2 s is
zero-padded to one segment, and the output says so. Files are decoded and
classified `BLOCK_SECONDS` at a time, so memory stays bounded however long
they are; past the cap the rest is decoded only for the file's duration. The
file's probabilities are the softmax of the mean of its segments'
log-probabilities, as for tracks in evaluate. The output gives the number of
segments used, and of the file's whole segments when that is more.

--segments adds each segment's top-3 genres; --json prints one JSON object per
file (all ten probabilities) instead of text. An unreadable file gets a one-line
error on stderr; the other files are still classified and the exit status is 1.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags
from absl import logging

from gtzan_jax import cli
from gtzan_jax import evaluate
from tfds_gtzan import audio
from tfds_gtzan.synthetic import GENRES  # alphabetical = label order

FLAGS = flags.FLAGS
BATCH_SIZE = 16  # segments per forward pass: a clip's 14 in one batch
BLOCK_SECONDS = 60  # audio decoded and classified at a time


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Genre probabilities of one file, and of each of its 2 s segments."""

  path: str
  seconds: float
  padded: bool  # shorter than one segment, zero-padded to it
  probabilities: np.ndarray  # [classes]
  segment_probabilities: np.ndarray  # [segments, classes]: the segments used, from the start
  whole_segments: int = 0  # whole 2 s segments in the file: more than those used past --max_segments


def top_genres(probabilities: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
  """The k most probable (genre, probability) pairs, most probable first."""
  return [(GENRES[i], float(probabilities[i])) for i in np.argsort(-probabilities)[:k]]


def predict_file(trained: evaluate.Trained, path: str, max_segments: int = audio.MAX_SEGMENTS) -> Prediction:
  """Classifies the first `max_segments` whole segments of a file (0: all), BLOCK_SECONDS at a time.

  Raises `audio.AudioError` if the file cannot be decoded, ValueError for a negative `max_segments`.
  """
  if max_segments < 0:
    raise ValueError(f'max_segments must be >= 0 (0: every whole segment), got {max_segments}.')
  samples, short = 0, []

  def blocks():
    nonlocal samples
    for block in audio.load_audio_blocks(path, BLOCK_SECONDS):
      samples += len(block)
      if samples < audio.SEGMENT_SAMPLES:  # all of the file so far: padded if it ends here
        short.append(block)
      yield block

  stream = blocks()
  log_probs = [trained.log_probs(mel, BATCH_SIZE)
               for mel in audio.segment_features_of_blocks(stream, max_segments or None)]
  for _ in stream:  # past the cap: the rest is decoded for the file's duration only
    pass
  padded = not log_probs
  if padded:  # shorter than one segment
    y = np.concatenate([np.zeros(0, np.float32), *short])
    log_probs.append(trained.log_probs(audio.segment_features(
        np.pad(y, (0, audio.SEGMENT_SAMPLES - len(y))), 1), BATCH_SIZE))
  log_probs = np.concatenate(log_probs)
  mean = log_probs.mean(axis=0)
  probabilities = np.exp(mean - mean.max())
  return Prediction(path, samples / audio.SAMPLE_RATE, padded, probabilities / probabilities.sum(),
                    np.exp(log_probs), samples // audio.SEGMENT_SAMPLES)


def _clock(seconds: float) -> str:
  return f'{int(seconds) // 60}:{int(seconds) % 60:02d}'


def as_text(prediction: Prediction, with_segments: bool) -> str:
  """'path (30.0 s, first 14 of 15 segments): jazz 0.81, blues 0.12, rock 0.03', then the timeline if asked.

  'N segments' where all of the file's whole segments were used.
  """
  n, whole = len(prediction.segment_probabilities), prediction.whole_segments
  if prediction.padded:
    length = f'{prediction.seconds:.1f} s, shorter than {audio.SEGMENT_SECONDS} s: zero-padded to one segment'
  elif whole > n:
    length = f'{prediction.seconds:.1f} s, first {n} of {whole} segments'
  else:
    length = f'{prediction.seconds:.1f} s, {n} segment{"s" * (n != 1)}'
  top = ', '.join(f'{genre} {p:.2f}' for genre, p in top_genres(prediction.probabilities))
  lines = [f'{prediction.path} ({length}): {top}']
  if with_segments:
    for i, p in enumerate(prediction.segment_probabilities):
      start = i * audio.SEGMENT_SECONDS
      top = ', '.join(f'{genre} {q:.2f}' for genre, q in top_genres(p))
      lines.append(f'  {_clock(start)}-{_clock(start + audio.SEGMENT_SECONDS)}  {top}')
  return '\n'.join(lines)


def as_json(prediction: Prediction, with_segments: bool) -> dict[str, Any]:
  """The prediction with all probabilities, ready for `json.dumps`."""
  result = {'file': prediction.path, 'seconds': round(prediction.seconds, 3),
            'segments': len(prediction.segment_probabilities), 'whole_segments': prediction.whole_segments,
            'padded': prediction.padded,
            'top': top_genres(prediction.probabilities),
            'probabilities': dict(zip(GENRES, prediction.probabilities.tolist()))}
  if with_segments:
    result['timeline'] = [
        {'start': i * audio.SEGMENT_SECONDS, 'end': (i + 1) * audio.SEGMENT_SECONDS,
         'probabilities': dict(zip(GENRES, p.tolist()))}
        for i, p in enumerate(prediction.segment_probabilities)]
  return result


def run(workdir: str, paths: Sequence[str], *, with_segments: bool = False, json_output: bool = False,
        checkpoint: str = 'latest', max_segments: int = audio.MAX_SEGMENTS) -> int:
  """Classifies `paths` with `workdir`'s model, printing as it goes; returns the exit status."""
  if max_segments < 0:
    raise ValueError(f'--max_segments must be >= 0 (0: every whole segment), got {max_segments}.')
  trained = evaluate.load_trained(workdir, checkpoint)
  status = 0
  for path in paths:
    try:
      prediction = predict_file(trained, path, max_segments)
    except audio.AudioError as e:
      print(f'error: {e}', file=sys.stderr, flush=True)
      status = 1
      continue
    print(json.dumps(as_json(prediction, with_segments)) if json_output else as_text(prediction, with_segments),
          flush=True)
  return status


def main(argv: Sequence[str]) -> int:
  if len(argv) < 2:
    raise app.UsageError('Name at least one audio file.')
  logging.set_verbosity(logging.WARNING)  # stderr is for errors only
  try:
    return run(FLAGS.workdir, argv[1:], with_segments=FLAGS.segments, json_output=FLAGS.json,
               checkpoint=FLAGS.checkpoint, max_segments=FLAGS.max_segments)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  # Defined here rather than at import: see gtzan_jax/evaluate.py.
  flags.DEFINE_string('workdir', None, 'Training workdir (holds checkpoints/).', required=True)
  flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                    'The latest checkpoint, or the best by validation accuracy.')
  flags.DEFINE_bool('segments', False, 'Also print the top-3 genres of every 2 s segment.')
  flags.DEFINE_bool('json', False, 'Print one JSON object per file, with all ten probabilities.')
  flags.DEFINE_integer('max_segments', audio.MAX_SEGMENTS,
                       'Classify the first N whole 2 s segments of each file, as the dataset keeps them '
                       f'({audio.MAX_SEGMENTS}: 28 s); 0: every whole segment (long songs).', lower_bound=0)
  cli.run(main)
