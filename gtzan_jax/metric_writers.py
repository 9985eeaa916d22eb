"""Metrics to TensorBoard event files (tensorboardX, no TensorFlow needed) and history.jsonl.

`<workdir>/history.jsonl` gets one JSON object per finished epoch (epoch, step,
train_loss, train_accuracy, validation_loss, validation_accuracy), for sweeps
and plots without a TensorBoard reader. A resumed run appends; if a line for
an epoch appears twice (the run died between writing it and its checkpoint),
the last one holds. Only process 0 writes; other processes get a writer that
does nothing.
"""

from __future__ import annotations

import json
import os

import jax


class MetricWriter:
  """Writes scalars under `<workdir>/tensorboard`."""

  def __init__(self, logdir: str | None, history_path: str | None = None):
    self._writer = None
    self._history_path = history_path
    if logdir is not None:
      from tensorboardX import SummaryWriter  # imported lazily: only process 0 needs it
      self._writer = SummaryWriter(logdir)

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def write_history(self, record: dict[str, float]) -> None:
    if self._history_path is not None:
      with open(self._history_path, 'a') as f:
        f.write(json.dumps(record) + '\n')

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def create(workdir: str) -> MetricWriter:
  if jax.process_index() != 0:
    return MetricWriter(None)
  return MetricWriter(os.path.join(workdir, 'tensorboard'), os.path.join(workdir, 'history.jsonl'))


def read_history(workdir: str) -> list[dict[str, float]]:
  """The per-epoch records of `<workdir>/history.jsonl`, one per epoch (the last written wins)."""
  by_epoch = {}
  with open(os.path.join(workdir, 'history.jsonl')) as f:
    for line in f:
      if line.strip():
        record = json.loads(line)
        by_epoch[record['epoch']] = record
  return [by_epoch[e] for e in sorted(by_epoch)]
