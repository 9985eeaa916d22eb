"""Training epochs behind one interface, streamed from the host or resident on the devices.

  epochs = make_epochs(config, par, step_fn, train_data, steps_per_epoch, report_at)
  for report in epochs.run(state, epoch, step):   # a Report at every point the loop must see
    state, step = report.state, report.step

`StreamedEpochs` feeds one global batch a step (the order depends only on
(seed, epoch), so a run resumed mid-epoch takes the same batches); it reports after
each step for which `report_at(step)` holds and at the epoch's end. `ResidentEpochs`
keeps the training split on the devices and runs a whole epoch as one compiled
program, so it reports once, at the epoch's end, with the metrics of every log interval;
a partial epoch (a resumed mid-epoch checkpoint) it streams. Both give the same losses.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
from absl import logging

from gtzan_jax import input_pipeline
from gtzan_jax.parallel import DataParallel
from tfds_gtzan import data as gtzan_data

Metrics = dict[str, float]
PREFETCH_BATCHES = 4  # batches a streamed split's reader thread keeps ready


@dataclasses.dataclass
class Report:
  """The state after `step`, and the per-step host metrics since the last report, by log interval."""
  state: Any
  step: int
  intervals: list[tuple[int, list[Metrics]]]  # (the interval's last step, its steps' metrics)


class StreamedEpochs:
  """Epochs fed from host memory one global batch a step."""

  def __init__(self, par: DataParallel, step_fn: Callable, data: dict[str, np.ndarray], *, batch_size: int,
               seed: int, steps_per_epoch: int, report_at: Callable[[int], bool],
               on_first_step: Callable[[], None] = lambda: None):
    self.par, self.data, self.batch_size, self.seed = par, data, batch_size, seed
    self.steps_per_epoch, self.report_at, self.on_first_step = steps_per_epoch, report_at, on_first_step
    self.step_fn = par.compile(step_fn)
    self._first = True

  def run(self, state: Any, epoch: int, step: int) -> Iterator[Report]:
    pending = []
    batches = gtzan_data.iterate_batches(self.data, self.batch_size, shuffle=True, seed=self.seed,
                                         epoch=epoch, start_batch=step - epoch * self.steps_per_epoch)
    if input_pipeline.is_streamed(self.data):  # read from disk: a thread reads ahead while steps run
      batches = gtzan_data.prefetch(batches, PREFETCH_BATCHES)
    for batch in batches:
      state, metrics = self.step_fn(state, self.par.put_batch(input_pipeline.model_inputs(batch)))
      step += 1
      pending.append(metrics)
      if self._first:  # the first step compiles: the caller keeps it out of examples/s
        jax.block_until_ready(metrics)
        self._first = False
        self.on_first_step()
      if self.report_at(step) or step % self.steps_per_epoch == 0:
        yield Report(state, step, [(step, [self.par.get_metrics(m) for m in pending])])
        pending = []


class ResidentEpochs:
  """Epochs over a training split kept on the devices, each one compiled program (`compile_epoch`)."""

  def __init__(self, streamed: StreamedEpochs, step_fn: Callable, state: Any, log_every_steps: int):
    self.streamed, self.par, self.log_every_steps = streamed, streamed.par, log_every_steps
    spe, batch_size = streamed.steps_per_epoch, streamed.batch_size
    self.split = self.par.put_split(input_pipeline.model_inputs(streamed.data))
    start = time.perf_counter()
    self.epoch_fn = self.par.compile_epoch(step_fn).lower(
        state, self.split, self.par.put_order(np.arange(spe * batch_size), batch_size)).compile()
    logging.info('Training split on the devices; one epoch compiled in %.1f s.', time.perf_counter() - start)

  def run(self, state: Any, epoch: int, step: int) -> Iterator[Report]:
    s = self.streamed
    if step != epoch * s.steps_per_epoch:  # resumed mid-epoch: finish it streamed
      yield from s.run(state, epoch, step)
      return
    order = gtzan_data.epoch_permutation(len(s.data['label']), seed=s.seed, epoch=epoch)
    state, stacked = self.epoch_fn(state, self.split,
                                   self.par.put_order(order[:s.steps_per_epoch * s.batch_size], s.batch_size))
    stacked = self.par.get_state(stacked)  # waits for the epoch: {metric: [steps_per_epoch]}
    per_step = [{k: float(v[i]) for k, v in stacked.items()} for i in range(s.steps_per_epoch)]
    ends = list(range(self.log_every_steps, s.steps_per_epoch, self.log_every_steps)) + [s.steps_per_epoch]
    starts = [0] + ends[:-1]
    yield Report(state, step + s.steps_per_epoch,
                 [(step + end, per_step[begin:end]) for begin, end in zip(starts, ends)])


def device_resident(config: ml_collections.ConfigDict, par: DataParallel, train_data: dict[str, np.ndarray]) -> bool:
  """Whether to keep the training split on the devices (config.device_resident: auto, on, off).

  auto: on for accelerators when one process trains, no mid-epoch checkpoints
  are asked for, the split is in host memory (not streamed) and a copy of it takes at
  most a quarter of a device's memory. Off on CPU: XLA:CPU ran the scanned epoch ~17x slower than streamed
  steps (BENCHMARKS.md), and there the host feed costs nothing measurable.
  A device-resident epoch checks for SIGTERM/SIGINT and non-finite losses at its end.
  """
  choice = config.get('device_resident', 'off')
  if choice not in ('auto', 'on', 'off'):
    raise ValueError(f"config.device_resident must be 'auto', 'on' or 'off', got {choice!r}.")
  if choice == 'off':
    return False
  if input_pipeline.is_streamed(train_data):
    if choice == 'on':
      raise ValueError('config.device_resident=on needs the training split in memory, but it is streamed '
                       '(it exceeds config.memory_budget); use auto or off.')
    return False
  if jax.process_count() > 1:
    if choice == 'on':
      raise ValueError('config.device_resident=on supports one process only; use auto or off.')
    return False
  if choice == 'auto' and (par.devices[0].platform == 'cpu' or config.checkpoint_every_steps):
    return False
  nbytes = sum(v.nbytes for k, v in input_pipeline.model_inputs(train_data).items())
  stats = par.devices[0].memory_stats() or {}
  fits = nbytes <= stats.get('bytes_limit', 16 * 2**30) / 4
  if choice == 'on' and not fits:
    logging.warning('config.device_resident=on: the training split (%.2f GB) takes over a quarter of '
                    'device memory.', nbytes / 1e9)
  return choice == 'on' or fits


def make_epochs(config: ml_collections.ConfigDict, par: DataParallel, step_fn: Callable, state: Any,
                train_data: dict[str, np.ndarray], steps_per_epoch: int, report_at: Callable[[int], bool],
                on_first_step: Callable[[], None]) -> StreamedEpochs | ResidentEpochs:
  """The epochs `config` asks for (`device_resident`), over `train_data` in batches of config.batch_size."""
  streamed = StreamedEpochs(par, step_fn, train_data, batch_size=config.batch_size, seed=config.seed,
                            steps_per_epoch=steps_per_epoch, report_at=report_at, on_first_step=on_first_step)
  if device_resident(config, par, train_data):
    return ResidentEpochs(streamed, step_fn, state, config.log_every_steps)
  return streamed
