"""What watches a training run: stop signals, the progress line and the finiteness check.

  with StopSignals() as stop:
    ...
    check_finite(mean_metrics, step, last_checkpoint, workdir)
    if stop.agreed(): ...  # checkpoint, then raise TrainingInterrupted
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable

import jax
import numpy as np
from absl import logging


class NonFiniteLossError(RuntimeError):
  """Raised when the loss or gradient norm is NaN or infinite."""


class TrainingInterrupted(Exception):
  """Raised after SIGTERM/SIGINT once the current step is checkpointed (at `step`)."""

  def __init__(self, message: str, step: int):
    super().__init__(message)
    self.step = step


class StopSignals:
  """Turns the first SIGTERM or SIGINT into a request to checkpoint and stop.

  A second signal gets the default behaviour (so a second Ctrl-C still kills).
  Only installs handlers when used from the main thread.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    self.received = signum
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
    logging.warning('Received %s: checkpointing after the current step, then stopping.',
                    signal.Signals(signum).name)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def agreed(self) -> int | None:
    """The signal received by any process, or None: every process must call this at the same step."""
    if jax.process_count() == 1:
      return self.received
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    received = multihost_utils.process_allgather(np.int32(self.received or 0))
    return int(np.max(received)) or None

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def check_finite(metrics: dict[str, float], step: int, last_checkpoint: Callable[[], int | None],
                 workdir: str) -> None:
  """Raises NonFiniteLossError naming the last committed checkpoint if loss or grad_norm is not finite.

  `last_checkpoint` is called only then: it should wait for pending saves and return the
  latest committed step, so the message never names a checkpoint still being written.
  """
  bad = [k for k in ('loss', 'grad_norm') if not np.isfinite(metrics[k])]
  if bad:
    last = last_checkpoint()
    where = (f'the last good checkpoint is step {last} in {workdir}/checkpoints'
             if last is not None else 'no checkpoint was written yet')
    raise NonFiniteLossError(
        f'{" and ".join(bad)} became {metrics[bad[0]]} by step {step}; stopped without saving it; '
        f'{where}. Try a lower learning rate.')


class Progress:
  """One console line per log interval: step, epoch, loss, accuracy, examples/s, ETA."""

  def __init__(self, total_steps: int, steps_per_epoch: int, batch_size: int, start_step: int):
    self.total_steps, self.steps_per_epoch, self.batch_size = total_steps, steps_per_epoch, batch_size
    self.start_time = time.perf_counter()
    self.last_step, self.last_time = start_step, self.start_time
    self.steps_timed, self.seconds_timed = 0, 0.0

  def line(self, step: int, metrics: dict[str, float]) -> tuple[str, float]:
    now = time.perf_counter()
    steps, seconds = step - self.last_step, now - self.last_time
    self.last_step, self.last_time = step, now
    self.steps_timed += steps
    self.seconds_timed += seconds
    rate = steps * self.batch_size / max(seconds, 1e-9)
    eta = (self.total_steps - step) * seconds / max(steps, 1)
    epoch = step / self.steps_per_epoch
    text = (f'step {step}/{self.total_steps} | epoch {epoch:.2f} | loss {metrics["loss"]:.4f} | '
            f'acc {metrics["accuracy"]:.3f} | {rate:.1f} ex/s | ETA {time.strftime("%H:%M:%S", time.gmtime(eta))}')
    return text, rate

  def restart(self, step: int) -> None:
    """Starts timing afresh at `step`, leaving out compilation and evaluation time."""
    self.last_step, self.last_time = step, time.perf_counter()

  def first_step_done(self, step: int) -> None:
    """Logs how long the run's first step took (its compilation included) and times afresh from it."""
    logging.info('First step (compilation included): %.1f s.', time.perf_counter() - self.start_time)
    self.restart(step)

  @property
  def seconds_since_start(self) -> float:
    return time.perf_counter() - self.start_time

  @property
  def examples_per_s(self) -> float | None:
    """Mean training examples/s over the timed intervals (compilation and evaluation left out)."""
    return self.steps_timed * self.batch_size / self.seconds_timed if self.seconds_timed else None
