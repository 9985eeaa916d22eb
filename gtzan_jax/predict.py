"""Classifies audio files with a trained workdir: the top-3 genres of each file.

  python -m gtzan_jax.predict --workdir=runs/synthetic song.mp3 clip.wav [--segments] [--json]

Files of any length, sample rate, channel count and format that
`tfds_gtzan.audio.load_audio` decodes. Each file is cut into whole 2 s segments
(a rest shorter than 2 s is dropped; a file shorter than 2 s is zero-padded to
one segment, and the output says so). Files are decoded and classified
`BLOCK_SECONDS` at a time, so memory stays bounded however long they are. The
file's probabilities are the softmax of the mean of its segments'
log-probabilities, as for tracks in evaluate.

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

from gtzan_jax import evaluate
from tfds_gtzan import audio
from tfds_gtzan.synthetic import GENRES  # alphabetical = label order

FLAGS = flags.FLAGS
BATCH_SIZE = 16  # segments per forward pass: a 30 s clip's 15 in one batch
BLOCK_SECONDS = 60  # audio decoded and classified at a time


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Genre probabilities of one file, and of each of its 2 s segments."""

  path: str
  seconds: float
  padded: bool  # shorter than one segment, zero-padded to it
  probabilities: np.ndarray  # [classes]
  segment_probabilities: np.ndarray  # [segments, classes]


def top_genres(probabilities: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
  """The k most probable (genre, probability) pairs, most probable first."""
  return [(GENRES[i], float(probabilities[i])) for i in np.argsort(-probabilities)[:k]]


def segments_of(y: np.ndarray) -> tuple[np.ndarray, bool]:
  """Log-mel features [n, mels, frames] of every whole 2 s segment of `y`, and whether it was padded.

  The features are rounded to the dataset's storage dtype, so the model sees what it was trained on.
  """
  padded = len(y) < audio.SEGMENT_SAMPLES
  if padded:
    y = np.pad(y, (0, audio.SEGMENT_SAMPLES - len(y)))
  segments = audio.segment(y, max_segments=len(y) // audio.SEGMENT_SAMPLES)
  return audio.log_mel(segments).astype(audio.MEL_DTYPE), padded


def predict_file(trained: evaluate.Trained, path: str) -> Prediction:
  """Classifies one file, BLOCK_SECONDS at a time; raises `audio.AudioError` if it cannot be decoded."""
  log_probs, samples, rest = [], 0, np.zeros(0, np.float32)
  for block in audio.load_audio_blocks(path, BLOCK_SECONDS):
    samples += len(block)
    y = np.concatenate([rest, block])
    whole = len(y) // audio.SEGMENT_SAMPLES * audio.SEGMENT_SAMPLES
    if whole:
      log_probs.append(trained.log_probs(segments_of(y[:whole])[0], BATCH_SIZE))
    rest = y[whole:]
  padded = not log_probs
  if padded:  # shorter than one segment
    log_probs.append(trained.log_probs(segments_of(rest)[0], BATCH_SIZE))
  log_probs = np.concatenate(log_probs)
  mean = log_probs.mean(axis=0)
  probabilities = np.exp(mean - mean.max())
  return Prediction(path, samples / audio.SAMPLE_RATE, padded, probabilities / probabilities.sum(),
                    np.exp(log_probs))


def _clock(seconds: float) -> str:
  return f'{int(seconds) // 60}:{int(seconds) % 60:02d}'


def as_text(prediction: Prediction, with_segments: bool) -> str:
  """'path (30.0 s, 15 segments): jazz 0.81, blues 0.12, rock 0.03', then the timeline if asked."""
  n = len(prediction.segment_probabilities)
  length = (f'{prediction.seconds:.1f} s, shorter than {audio.SEGMENT_SECONDS} s: zero-padded to one segment'
            if prediction.padded else f'{prediction.seconds:.1f} s, {n} segment{"s" * (n != 1)}')
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
            'segments': len(prediction.segment_probabilities), 'padded': prediction.padded,
            'top': top_genres(prediction.probabilities),
            'probabilities': dict(zip(GENRES, prediction.probabilities.tolist()))}
  if with_segments:
    result['timeline'] = [
        {'start': i * audio.SEGMENT_SECONDS, 'end': (i + 1) * audio.SEGMENT_SECONDS,
         'probabilities': dict(zip(GENRES, p.tolist()))}
        for i, p in enumerate(prediction.segment_probabilities)]
  return result


def run(workdir: str, paths: Sequence[str], *, with_segments: bool = False, json_output: bool = False,
        checkpoint: str = 'latest') -> int:
  """Classifies `paths` with `workdir`'s model, printing as it goes; returns the exit status."""
  trained = evaluate.load_trained(workdir, checkpoint)
  status = 0
  for path in paths:
    try:
      prediction = predict_file(trained, path)
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
               checkpoint=FLAGS.checkpoint)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
  # Defined here rather than at import: see gtzan_jax/evaluate.py.
  flags.DEFINE_string('workdir', None, 'Training workdir (holds checkpoints/).', required=True)
  flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                    'The latest checkpoint, or the best by validation accuracy.')
  flags.DEFINE_bool('segments', False, 'Also print the top-3 genres of every 2 s segment.')
  flags.DEFINE_bool('json', False, 'Print one JSON object per file, with all ten probabilities.')
  app.run(main)
