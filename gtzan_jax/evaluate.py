"""Evaluates a trained workdir on one split, per segment and per track.

  python -m gtzan_jax.evaluate --workdir=runs/synthetic [--split=test] [--checkpoint=latest|best]
      [--figure_audio=song.wav]

The model is the checkpoint's; the data is exactly what it was trained on, as the
checkpoint records it (a TFDS dataset and version, or a cross-validation fold's own
tracks); other data is refused with one line. A track is classified by the argmax of
the mean of its segments' log-probabilities. Files written in the workdir, with STEM = report_<split> (report_<split>_best for
--checkpoint=best):

  STEM.json                       accuracy, loss, per-genre precision / recall / F1 and
                                  confusion matrices, for segments and for tracks
  STEM.md                         the same as markdown tables
  STEM_confusion_{segment,track}.png
                                  confusion matrices: counts and row-normalised
  clip_figure.png                 waveform and log-mel spectrogram of --figure_audio
                                  (default: a synthetic blues clip)

`load_trained` (from gtzan_jax.evaluation) restores a workdir's model; predict uses it too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags
from absl import logging

from gtzan_jax import cli
from gtzan_jax import evaluation
from gtzan_jax import input_pipeline
from gtzan_jax import report
from gtzan_jax import tables

FLAGS = flags.FLAGS
CLIP_FIGURE = 'clip_figure.png'

# The restored model and its scoring live in gtzan_jax.evaluation (predict and crossval use them too).
Trained = evaluation.Trained
load_trained = evaluation.load_trained


def save_clip_figure(path: str, audio_path: str | None = None) -> None:
  """Waveform and log-mel segments of the first 28 s of `audio_path` (None: a synthetic clip)."""
  from tfds_gtzan import audio, synthetic  # pylint: disable=g-import-not-at-top  (librosa)
  if audio_path:
    y = audio.load_audio(audio_path, max_seconds=audio.MAX_SEGMENTS * audio.SEGMENT_SECONDS)
    title = os.path.basename(audio_path)
  else:
    y, title = synthetic.generate_clip(0, 0), f'synthetic {synthetic.GENRES[0]} clip'
  mel = audio.log_mel(audio.segment(y))
  if not len(mel):
    raise ValueError(f'{audio_path}: shorter than {audio.SEGMENT_SECONDS} s; choose a longer --figure_audio.')
  report.plot_clip(y[:len(mel) * audio.SEGMENT_SAMPLES], mel, title, path)


def report_stem(workdir: str, split: str, checkpoint: str) -> str:
  """Path of the report files without their suffix: <workdir>/report_<split>[_best]."""
  return os.path.join(workdir, f'report_{split}' + ('_best' if checkpoint == 'best' else ''))


def _markdown(result: dict[str, Any], stem: str) -> str:
  levels = ('segment', 'track')
  lines = [f'# {result["split"]} split of {result["dataset"]}\n',
           f'Workdir `{result["workdir"]}`, model `{result["model"]}`, {result["checkpoint"]} checkpoint '
           f'(step {result["step"]}, epoch {result["epoch"]:.2f}). A track is classified by the mean of '
           'its segments\' log-probabilities.\n',
           tables.markdown_table(['level', 'examples', 'accuracy', 'macro F1', 'loss'], [
               [level, result[level]['count'], result[level]['accuracy'], result[level]['macro_f1'],
                result[level].get('loss')] for level in levels])]
  for level in levels:
    per_class = result[level]['per_class']
    lines += [f'## Per genre, {level} level\n',
              tables.markdown_table(['genre', 'precision', 'recall', 'F1', 'support'], [
                  [genre, m['precision'], m['recall'], m['f1'], m['support']] for genre, m in per_class.items()]),
              f'![{level} confusion matrices]({os.path.basename(stem)}_confusion_{level}.png)\n']
  return '\n'.join(lines)


def evaluate_workdir(workdir: str, split: str = 'test', checkpoint: str = 'latest', *,
                     datasets: dict[str, dict[str, np.ndarray]] | None = None,
                     figure_audio: str | None = None) -> dict[str, Any]:
  """Evaluates `workdir` on `split`, writes the files listed in the module docstring, returns the json.

  `datasets`: the splits as `input_pipeline.load_datasets` gives them; None: the data the
  checkpoint records (`evaluation.load_data`: the same, or a ValueError).
  """
  trained = load_trained(workdir, checkpoint)
  if datasets is None:
    datasets = evaluation.load_data(trained, workdir)
  result = {'workdir': workdir, 'split': split, 'dataset': trained.config.dataset,
            'model': trained.config.model, 'checkpoint': checkpoint, 'step': trained.step,
            'epoch': trained.epoch, **trained.evaluate(datasets[split])}
  stem = report_stem(workdir, split, checkpoint)
  report.write_json(f'{stem}.json', result)
  report.write_text(f'{stem}.md', _markdown(result, stem))
  for level in ('segment', 'track'):
    report.plot_confusion(result[level]['confusion'], f'{split} {level}s', f'{stem}_confusion_{level}.png',
                          trained.class_names)
  save_clip_figure(os.path.join(workdir, CLIP_FIGURE), figure_audio)
  return result


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)  # no per-restore INFO lines from orbax
  try:
    result = evaluate_workdir(FLAGS.workdir, FLAGS.split, FLAGS.checkpoint,
                              figure_audio=FLAGS.figure_audio or None)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None
  for level in ('segment', 'track'):
    print(f'{FLAGS.split} {level} accuracy {result[level]["accuracy"]:.4f} '
          f'(macro F1 {result[level]["macro_f1"]:.4f}, {result[level]["count"]} {level}s)')
  print(f'Report: {report_stem(FLAGS.workdir, FLAGS.split, FLAGS.checkpoint)}.md')


if __name__ == '__main__':
  # Defined here rather than at import, so that evaluate, predict and sweep (each with its own
  # --workdir) can be imported together, e.g. by the tests.
  flags.DEFINE_string('workdir', None, 'Training workdir (holds checkpoints/).', required=True)
  flags.DEFINE_enum('split', 'test', input_pipeline.SPLITS, 'Split to evaluate.')
  flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                    'The latest checkpoint, or the best by validation accuracy.')
  flags.DEFINE_string('figure_audio', '', 'Audio file for clip_figure.png; default: a synthetic clip.')
  cli.run(main)
