"""Tags many audio files at full speed: decoding in parallel workers, many files' segments per forward pass.

  with Tagger(trained, batch_size=64, workers=2) as tagger:
    for tagged in tagger.tag(library.walk(['Music']).entries):   # in input order
      tagged.entry.path, tagged.prediction, tagged.error

Design:
- Workers (`tag_workers`: spawned processes that never import JAX, or threads) decode the
  files and compute their feature segments, each with one BLAS thread. The parent hands each
  worker at most four files ahead and at most `window` files past the first one not yet
  returned, so however the files' lengths differ, memory holds a bounded number of files'
  results and at most about one decoded block per file in flight.
- The parent gathers the segments of whichever files arrive into batches of at most
  `batch_size` rows and runs the checkpoint's model on them (`Forward`): one compiled function
  per batch shape (a partial batch is padded to it). On CPU the compiled function computes the
  rows one at a time inside it (a loop over the valid rows, so padding costs nothing), and each
  batch is shared out over one XLA CPU device per core in one program (a row alone leaves XLA's
  threads idle in its small operations; two devices at once match batches of 16 on 2 cores).
  A row's convolutions on few channels run on strided groups of columns that YNNPACK takes
  (`xla_cpu_kernels`), with the XLA:CPU inference flags that predict's process sets
  (`set_inference_flags`): together 1.62-1.66x the forward pass's segments/s with training's
  flags and XLA's own kernels (scripts/row_forward_ab.py, BENCHMARKS.md).
  A segment's log-probabilities are then independent of the other rows of its batch, of its
  place in it and of the device: a file gets the same bits whichever files share its batches,
  so an interrupted and resumed run writes the same output as an uninterrupted one. (Computed
  as one batch, XLA:CPU's convolutions give a row results that differ in the last bits with
  its position in the batch.) On an accelerator the batch is computed as one (much faster
  there); results may then differ in the last bits between batch compositions.
- Results come out in input order (`Tagger.tag` holds a file finished early until those
  before it are out). A file's probabilities are the softmax of the mean of its segments'
  log-probabilities, as in `predict.predict_file` and evaluate.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tfds_gtzan import library
from gtzan_jax import tag_workers
from tfds_gtzan import feature_sets

CPU_BATCH_SIZE = 64  # rows per compiled call; on CPU they are computed one by one inside it
ACCELERATOR_BATCH_SIZE = 512
POLL_SECONDS = 0.005  # how long the parent waits for workers' messages while batches are computing


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Class probabilities of one file, and of each of its segments."""

  path: str
  seconds: float
  padded: bool  # shorter than one segment, zero-padded to it
  probabilities: np.ndarray  # [classes]
  segment_probabilities: np.ndarray  # [segments, classes]: the segments used, from the start
  whole_segments: int = 0  # whole segments in the file: more than those used past --max_segments
  features: str = feature_sets.DEFAULT  # the feature set: its segment length times the timeline
  class_names: tuple[str, ...] | None = None  # the checkpoint's
  positions: tuple[int, ...] | None = None  # each segment's place (in segments); None: 0, 1, ... from the start


@dataclasses.dataclass(frozen=True)
class Tagged:
  """One file's outcome: a prediction, or the reason it failed."""

  entry: library.Entry
  prediction: Prediction | None = None
  error: str | None = None


def feature_set_of(trained: Any) -> feature_sets.FeatureSet:
  """The feature set `trained` (an `evaluate.Trained`) was trained on: its config's `features`, or 'mel'."""
  config = getattr(trained, 'config', None)
  name = config.get('features', None) if config is not None else None
  return feature_sets.get(name)


def class_names_of(trained: Any) -> tuple[str, ...]:
  """The checkpoint's class names (`Trained.class_names`: those of the data it was trained on)."""
  return tuple(trained.class_names)


def names_of(prediction: Prediction) -> tuple[str, ...]:
  """The prediction's class names ('0', '1', ... where it came without them)."""
  return prediction.class_names or tuple(str(i) for i in range(len(prediction.probabilities)))


def top_k(probabilities: np.ndarray, names: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
  """The k most probable (class, probability) pairs, most probable first (ties: the lower index)."""
  order = np.argsort(-np.asarray(probabilities), kind='stable')[:k]
  return [(names[i], float(probabilities[i])) for i in order]


def json_seconds(x: float) -> int | float:
  """A time for JSON: an int where it is whole (every mel segment boundary), else to the millisecond."""
  return int(x) if float(x).is_integer() else round(x, 3)


def segment_times(prediction: Prediction) -> list[tuple[int | float, int | float]]:
  """(start, end) seconds of each segment used: 2 s long for mel, 2.992 s ("3 s") for musicnn."""
  fs = feature_sets.get(prediction.features)
  positions = prediction.positions or range(len(prediction.segment_probabilities))
  return [(json_seconds(i * fs.segment_duration), json_seconds((i + 1) * fs.segment_duration)) for i in positions]


def spread_of(trained: Any) -> int:
  """Segments per track a checkpoint's data spread over each track (a collection's: 15 by default); 0: from the start."""
  return int((getattr(trained, 'data_source', None) or {}).get('segments_per_track', 0))


def file_probabilities(log_probs: np.ndarray) -> np.ndarray:
  """The softmax of the mean of segment log-probabilities [segments, classes]."""
  mean = log_probs.mean(axis=0)
  probabilities = np.exp(mean - mean.max())
  return probabilities / probabilities.sum()


def default_batch_size() -> int:
  import jax  # pylint: disable=g-import-not-at-top
  return CPU_BATCH_SIZE if jax.local_devices()[0].platform == 'cpu' else ACCELERATOR_BATCH_SIZE


def set_inference_flags() -> None:
  """XLA_FLAGS for a process that tags (predict's command line; before JAX starts its backend).

  One CPU device per core (`cpu_device_flag`) and XLA:CPU's inference flags
  (`xla_cpu_flags.tune_for_inference`). No-ops on accelerators.
  """
  from gtzan_jax import xla_cpu_flags  # pylint: disable=g-import-not-at-top
  xla_cpu_flags.tune_for_inference()
  os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {cpu_device_flag()}'.strip()


def cpu_device_flag() -> str:
  """The XLA flag that gives this process one CPU device per core (`Forward` runs batches on them at once).

  For XLA_FLAGS before JAX starts its backend; '' where XLA_FLAGS already sets a device count.
  """
  if 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
    return ''
  return f'--xla_force_host_platform_device_count={os.cpu_count() or 1}'


class Forward:
  """Log-probabilities [n, classes] of up to `batch_size` segments at a time (module docstring).

  `dispatch(mel)` starts the computation of `mel` [n <= batch_size, mels, frames] and returns
  a handle whose `result()` waits for it. `per_row` None: on CPU. On CPU each batch is shared
  out over up to one CPU device per core (`devices`; predict's command line makes them with
  `cpu_device_flag`), one program (shard_map) in which every device runs its rows one at a
  time: a row computed alone leaves XLA's threads idle within its small operations, and two
  devices at once on 2 cores were ~1.4x one (BENCHMARKS.md), as fast as batches of 16 computed
  together. `batch_size` is rounded up to a multiple of the devices. A stand-in without a
  `state` (tests) is called through its own `log_probs(mel, batch_size)`.
  """

  def __init__(self, trained: Any, batch_size: int, per_row: bool | None = None, devices: Sequence[Any] | None = None):
    self.batch_size = batch_size
    self._trained = trained
    self._fn = None
    self.devices: list[Any] = []
    if not hasattr(trained, 'state'):
      return
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from gtzan_jax import evaluation, input_pipeline  # pylint: disable=g-import-not-at-top
    self._features = trained.config.get('features', 'mel')
    self.shape = tuple(input_pipeline.input_shape(trained.config))
    first = jax.local_devices()[0]
    self.per_row = first.platform == 'cpu' if per_row is None else per_row
    if devices is None:
      devices = jax.local_devices()[:os.cpu_count() or 1] if self.per_row else [first]
    self.devices = list(devices)
    row = jax.ShapeDtypeStruct((1, *self.shape), feature_sets.STORAGE_DTYPE)
    classes = jax.eval_shape(evaluation.log_probs_fn, trained.state, row).shape[-1]

    def per_row_fn(state, mel, n):
      def one(i, out):
        x = jax.lax.dynamic_slice_in_dim(mel, i, 1, axis=0)
        return jax.lax.dynamic_update_slice_in_dim(out, evaluation.log_probs_fn(state, x).astype(out.dtype),
                                                   i, axis=0)
      return jax.lax.fori_loop(0, n[0], one, jnp.zeros((mel.shape[0], classes), jnp.float32))

    def batched_fn(state, mel, n):
      del n
      return evaluation.log_probs_fn(state, mel).astype(jnp.float32)

    # One program over the devices (shard_map): each runs its slice of the batch's rows; one compilation.
    from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top
    self._mesh = jax.sharding.Mesh(np.array(self.devices if self.per_row else self.devices[:1]), ('rows',))
    shards = self._mesh.devices.size
    self.batch_size = -(-batch_size // shards) * shards  # a multiple of the devices
    self._rows = NamedSharding(self._mesh, PartitionSpec('rows'))
    # Device k's slice holds rows k, k + shards, k + 2 shards, ... of the batch.
    self._order = np.arange(self.batch_size).reshape(-1, shards).T.reshape(-1)
    self._state = jax.device_put(trained.state, NamedSharding(self._mesh, PartitionSpec()))
    fn = per_row_fn if self.per_row else batched_fn
    self._fn = jax.jit(jax.shard_map(fn, mesh=self._mesh, in_specs=(PartitionSpec(), PartitionSpec('rows'),
                                                                     PartitionSpec('rows')),
                                     out_specs=PartitionSpec('rows'), check_vma=False))
    self._jax = jax

  @property
  def parallel(self) -> int:
    """Batches worth having in flight at once: the next one queued while one computes."""
    return 2 if self._fn is not None else 1

  def dispatch(self, mel: np.ndarray) -> Any:
    n = len(mel)
    if n > self.batch_size:
      raise ValueError(f'{n} rows for a batch of {self.batch_size}.')
    if self._fn is None:
      out = self._trained.log_probs(mel, self.batch_size)
      return _Ready(np.asarray(out, np.float32))
    if tuple(mel.shape[1:]) != self.shape:
      raise ValueError(f'This checkpoint needs {self._features!r} features shaped {list(self.shape)}; the '
                       f'segments given are {list(mel.shape[1:])}, another feature set.')
    if n < self.batch_size:
      mel = np.concatenate([mel, np.zeros((self.batch_size - n, *mel.shape[1:]), mel.dtype)])
    shards = self._mesh.devices.size
    if shards > 1:  # row i to device i % shards, so that a partial batch is shared out too
      mel = mel[self._order]
    valid = np.array([len(range(k, n, shards)) for k in range(shards)], np.int32)  # each device's, first
    out = self._fn(self._state, self._jax.device_put(mel, self._rows), self._jax.device_put(valid, self._rows))
    return _Pending(out, n, self._order if shards > 1 else None)

  def __call__(self, mel: np.ndarray) -> np.ndarray:
    return self.dispatch(mel).result()


class _Ready:
  def __init__(self, value: np.ndarray):
    self.value = value

  def ready(self) -> bool:
    return True

  def result(self) -> np.ndarray:
    return self.value


class _Pending:
  def __init__(self, array: Any, n: int, order: np.ndarray | None = None):
    self.array, self.n, self.order = array, n, order

  def ready(self) -> bool:
    return self.array.is_ready()

  def result(self) -> np.ndarray:
    out = np.asarray(self.array)
    if self.order is not None:  # back into the batch's order
      unsharded = np.empty_like(out)
      unsharded[self.order] = out
      out = unsharded
    return out[:self.n]


@dataclasses.dataclass
class _FileState:
  parts: list[np.ndarray] = dataclasses.field(default_factory=list)
  sent: int = 0  # segments received from the worker
  computed: int = 0  # of those, through the model
  info: dict[str, Any] | None = None
  error: str | None = None

  def done(self) -> bool:
    return self.error is not None or (self.info is not None and self.computed == self.sent)


@dataclasses.dataclass
class Counters:
  """What a Tagger has done so far (all its `tag` calls)."""

  files: int = 0
  failed: int = 0
  segments: int = 0  # through the model, padding rows not counted
  batches: int = 0
  model_seconds: float = 0.0  # waiting for the model's results in the parent
  worker_rss_mb: float = 0.0  # the largest peak resident memory of a worker process (process pools)


class Tagger:
  """Tags files with `trained`'s model; see the module docstring. A context manager: it holds the workers.

  `max_segments`: per file (None: as the checkpoint's data took them: at most `spread_of(trained)`
  spread over the whole file for a collection's, else the feature set's maximum from the start;
  0: all); `batch_size` 0:
  `default_batch_size()`; `workers` 0: the CPU count; `pool`: 'process' or 'thread'
  (`tag_workers`); `window`: files in flight at most (0: max(2 x batch_size, 8 x workers)).
  """

  def __init__(self, trained: Any, *, max_segments: int | None = None, batch_size: int = 0, workers: int = 0,
               pool: str = 'thread', window: int = 0):
    self.feature_set = feature_set_of(trained)
    self.max_segments = self.feature_set.max_segments if max_segments is None else max_segments
    self.spread = spread_of(trained) if max_segments is None else 0
    if self.max_segments < 0:
      raise ValueError(f'--max_segments must be >= 0 (0: every whole segment), got {self.max_segments}.')
    if batch_size < 0:
      raise ValueError(f'--batch_size must be >= 1 (0: {CPU_BATCH_SIZE} on CPU, {ACCELERATOR_BATCH_SIZE} on '
                       f'an accelerator), got {batch_size}.')
    if workers < 0:
      raise ValueError(f'--workers must be >= 1 (0: the CPU count), got {workers}.')
    if pool not in tag_workers.POOLS:
      raise ValueError(f'--pool must be one of {", ".join(tag_workers.POOLS)}, got {pool!r}.')
    self.class_names = class_names_of(trained)
    self.batch_size = batch_size or default_batch_size()
    self.forward = Forward(trained, self.batch_size)
    self.batch_size = self.forward.batch_size  # (a multiple of its devices)
    self.workers = workers or os.cpu_count() or 1
    self.pool_kind = pool
    self.window = window or max(2 * self.batch_size, 8 * self.workers)
    self.counters = Counters()
    self._pool: tag_workers.Pool | None = None

  def start(self) -> Tagger:
    """Starts the workers (else the first `tag` does)."""
    if self._pool is None:
      self._pool = tag_workers.make_pool(self.pool_kind, self.workers, self.feature_set.name, self.max_segments,
                                         self.spread)
    return self

  @property
  def pool(self) -> tag_workers.Pool | None:
    return self._pool

  def close(self) -> None:
    if self._pool is not None:
      if self._pool.kind == 'process':
        self.counters.worker_rss_mb = max(self.counters.worker_rss_mb, self._pool.peak_rss_mb)
      self._pool.close()
      self._pool = None

  def __enter__(self) -> Tagger:
    return self.start()

  def __exit__(self, *exc) -> None:
    self.close()

  def tag(self, entries: Sequence[library.Entry]) -> Iterator[Tagged]:
    """Yields every entry's `Tagged`, in order. An entry with an error (it could not be stat'ed) fails as is."""
    pool = self.start()._pool
    assert pool is not None
    n, batch_size = len(entries), self.batch_size
    states: dict[int, _FileState] = {}
    buffer: collections.deque[tuple[int, np.ndarray]] = collections.deque()  # waiting for the model, as they came
    buffered = 0
    in_flight: collections.deque = collections.deque()  # (owners, handle) of the batches being computed
    next_submit = next_yield = 0

    def receive(messages) -> None:
      nonlocal buffered
      for message in messages:
        kind, index, segments = message[:3]
        state = states.get(index)
        if state is None:  # cannot happen: a file is out only once its end is in
          continue
        if kind == 'end':
          state.info = message[3]
          state.error = state.error or state.info['error']
        if state.error is None and segments is not None:
          buffer.append((index, segments))
          state.sent += len(segments)
          buffered += len(segments)

    def dispatch() -> None:
      nonlocal buffered
      rows, owners, size = [], [], 0
      while buffer and size < batch_size:
        index, segments = buffer.popleft()
        take = min(len(segments), batch_size - size)
        if take < len(segments):
          buffer.appendleft((index, segments[take:]))
          segments = segments[:take]
        rows.append(segments)
        owners.append((index, take))
        size += take
      buffered -= size
      in_flight.append((owners, self.forward.dispatch(np.concatenate(rows))))

    def collect() -> None:
      owners, handle = in_flight.popleft()
      start = time.perf_counter()
      log_probs = handle.result()
      self.counters.model_seconds += time.perf_counter() - start
      self.counters.batches += 1
      if log_probs.shape[1] != len(self.class_names):
        raise ValueError(f'The model gives {log_probs.shape[1]} classes; the checkpoint names '
                         f'{len(self.class_names)} ({", ".join(self.class_names)}).')
      position = 0
      for index, count in owners:
        state = states.get(index)
        if state is not None and state.error is None:
          state.parts.append(log_probs[position:position + count])
          state.computed += count
          self.counters.segments += count
        position += count

    try:
      while next_yield < n:
        while next_submit < n and next_submit - next_yield < self.window and pool.can_submit():
          entry, state = entries[next_submit], _FileState()
          states[next_submit] = state
          if entry.error:
            state.error = entry.error
          else:
            pool.submit(next_submit, entry.path)
          next_submit += 1
        if states[next_yield].done():
          result = self._result(entries[next_yield], states.pop(next_yield))
          next_yield += 1  # before the yield: after the last one the call is complete, consumed or not
          yield result
          continue
        if in_flight and in_flight[0][1].ready():  # results in, without waiting
          collect()
          continue
        if buffered >= batch_size and len(in_flight) < self.forward.parallel:
          dispatch()
          continue
        messages = pool.get(timeout=0) if pool.busy() else []
        if messages:
          receive(messages)
          continue
        if pool.busy():  # wait for the workers; briefly while the model runs, to pick its results up
          receive(pool.get(timeout=POLL_SECONDS if in_flight else 1.0))
          continue
        if in_flight:
          collect()
          continue
        if buffered:
          dispatch()
          continue
        raise RuntimeError(f'Tagging stalled at {entries[next_yield].path}: no worker has it.')
    finally:
      if next_yield < n:  # abandoned (an error, Ctrl-C): the workers hold files of this call; start afresh
        self.close()

  def _result(self, entry: library.Entry, state: _FileState) -> Tagged:
    self.counters.files += 1
    if state.error is not None:
      self.counters.failed += 1
      return Tagged(entry, error=state.error)
    log_probs = np.concatenate(state.parts)
    info = state.info
    prediction = Prediction(entry.path, info['seconds'], info['padded'], file_probabilities(log_probs),
                            np.exp(log_probs), info['whole_segments'], self.feature_set.name, self.class_names,
                            tuple(info['positions']) if info.get('positions') else None)
    return Tagged(entry, prediction)
