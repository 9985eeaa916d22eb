"""Evaluates a trained workdir on one split, per segment and per track.

  python -m gtzan_jax.evaluate --workdir=runs/synthetic [--split=test] [--checkpoint=latest|best]
      [--figure_audio=song.wav]

The model and dataset are the ones named by the config saved in the checkpoint.
A track is classified by the argmax of the mean of its segments' log-probabilities.
Files written in the workdir, with STEM = report_<split> (report_<split>_best for
--checkpoint=best):

  STEM.json                       accuracy, loss, per-genre precision / recall / F1 and
                                  confusion matrices, for segments and for tracks
  STEM.md                         the same as markdown tables
  STEM_confusion_{segment,track}.png
                                  confusion matrices: counts and row-normalised
  clip_figure.png                 waveform and log-mel spectrogram of --figure_audio
                                  (default: a synthetic blues clip)

`load_trained` restores a workdir's model; predict uses it too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import app
from absl import flags
from absl import logging

from gtzan_jax import checkpointing
from gtzan_jax import input_pipeline
from gtzan_jax import models
from gtzan_jax import report
from gtzan_jax import train
from tfds_gtzan import data as gtzan_data

FLAGS = flags.FLAGS
CLIP_FIGURE = 'clip_figure.png'

_log_probs = jax.jit(train.log_probs_fn)


@dataclasses.dataclass(frozen=True)
class Trained:
  """A model restored from a workdir with the config it was trained with."""

  config: ml_collections.ConfigDict
  state: train.TrainState
  step: int
  epoch: float

  def log_probs(self, mel: np.ndarray, batch_size: int = 0) -> np.ndarray:
    """Log-probabilities [N, classes] of segments `mel` [N, mels, frames], in padded batches.

    `batch_size`: 0 means the config's evaluation batch size.
    """
    batch_size = batch_size or self.config.eval_batch_size or self.config.batch_size
    batches = gtzan_data.iterate_batches({'mel': mel}, batch_size, shuffle=False, drop_remainder=False,
                                         process_index=0, process_count=1)
    return np.concatenate([np.asarray(_log_probs(self.state, batch['mel']))[batch['mask'] > 0]
                           for batch in batches])


def load_trained(workdir: str, checkpoint: str = 'latest') -> Trained:
  """Restores `workdir`'s latest checkpoint, or its best by validation accuracy ('best')."""
  if checkpoint not in ('latest', 'best'):
    raise ValueError(f"checkpoint must be 'latest' or 'best', got {checkpoint!r}.")
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'{workdir} holds no checkpoints; train there first (python -m gtzan_jax.main).')
  ckpt = checkpointing.Checkpointer(directory, use_async=False)
  try:
    step = {'latest': ckpt.latest_step, 'best': ckpt.best_step}[checkpoint]()
    if step is None:
      raise FileNotFoundError(f'{directory} holds no {checkpoint} checkpoint.')
    meta = ckpt.restore_meta(step)
    config = ml_collections.ConfigDict(meta['config'])
    model = models.create_model(config)
    abstract_state = jax.eval_shape(
        lambda rng: train.create_train_state(rng, config, model, meta['steps_per_epoch']),
        jax.random.PRNGKey(0))
    state, _ = ckpt.restore(step, abstract_state)
  finally:
    ckpt.close()
  return Trained(config, jax.device_put(state), step, meta['epoch'])


def evaluate_split(trained: Trained, data: dict[str, np.ndarray]) -> dict[str, Any]:
  """Segment- and track-level metrics (see `report.classification_metrics`) of one split."""
  log_probs = trained.log_probs(data['mel'])
  labels = data['label']
  segment = report.classification_metrics(labels, log_probs.argmax(-1))
  segment['loss'] = float(-log_probs[np.arange(len(labels)), labels].mean())
  _, track_log_probs, track_labels = report.aggregate_tracks(log_probs, labels, data['track'])
  return {'segment': segment, 'track': report.classification_metrics(track_labels, track_log_probs.argmax(-1))}


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
           report.markdown_table(['level', 'examples', 'accuracy', 'macro F1', 'loss'], [
               [level, result[level]['count'], result[level]['accuracy'], result[level]['macro_f1'],
                result[level].get('loss')] for level in levels])]
  for level in levels:
    per_class = result[level]['per_class']
    lines += [f'## Per genre, {level} level\n',
              report.markdown_table(['genre', 'precision', 'recall', 'F1', 'support'], [
                  [genre, m['precision'], m['recall'], m['f1'], m['support']] for genre, m in per_class.items()]),
              f'![{level} confusion matrices]({os.path.basename(stem)}_confusion_{level}.png)\n']
  return '\n'.join(lines)


def evaluate_workdir(workdir: str, split: str = 'test', checkpoint: str = 'latest', *,
                     datasets: dict[str, dict[str, np.ndarray]] | None = None,
                     figure_audio: str | None = None) -> dict[str, Any]:
  """Evaluates `workdir` on `split`, writes the files listed in the module docstring, returns the json.

  `datasets`: the splits as `input_pipeline.load_datasets` gives them; read from the
  checkpoint config's dataset when None.
  """
  trained = load_trained(workdir, checkpoint)
  if datasets is None:
    datasets = input_pipeline.load_datasets(trained.config)
  result = {'workdir': workdir, 'split': split, 'dataset': trained.config.dataset,
            'model': trained.config.model, 'checkpoint': checkpoint, 'step': trained.step,
            'epoch': trained.epoch, **evaluate_split(trained, datasets[split])}
  stem = report_stem(workdir, split, checkpoint)
  with open(f'{stem}.json', 'w') as f:
    json.dump(result, f, indent=2)
  with open(f'{stem}.md', 'w') as f:
    f.write(_markdown(result, stem))
  for level in ('segment', 'track'):
    report.plot_confusion(result[level]['confusion'], f'{split} {level}s', f'{stem}_confusion_{level}.png')
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
  app.run(main)
