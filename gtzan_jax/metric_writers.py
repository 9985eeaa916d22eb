"""Scalar metrics to TensorBoard event files (tensorboardX, no TensorFlow needed).

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import os

import jax


class MetricWriter:
  """Writes scalars under `<workdir>/tensorboard`."""

  def __init__(self, logdir: str | None):
    self._writer = None
    if logdir is not None:
      from tensorboardX import SummaryWriter  # imported lazily: only process 0 needs it
      self._writer = SummaryWriter(logdir)

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in scalars.items():
      self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def create(workdir: str) -> MetricWriter:
  return MetricWriter(os.path.join(workdir, 'tensorboard') if jax.process_index() == 0 else None)
