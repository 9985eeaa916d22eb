"""Reads prepared `gtzan_mel` splits into numpy and cuts them into batches.

No TensorFlow: splits are read with random access (`tfds.data_source` over
ArrayRecord) and batched with numpy. Batching is deterministic in
(seed, epoch) and sharded across JAX processes: every process computes the same
global order and takes its own contiguous slice of each global batch.

  data = read_split('gtzan_mel/tracks', 'train', data_dir)
  for batch in iterate_batches(data, 128, shuffle=True, seed=0, epoch=epoch):
    ...  # batch['mel']: [128 // process_count, 128, 173] float16 ([.., 96, 187] for *_musicnn).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import jax
import numpy as np

if TYPE_CHECKING:
  import tensorflow_datasets as tfds

Batch = dict[str, np.ndarray]
_READ_CHUNK = 1024  # Examples per random-access read.


class StaleDataError(ValueError):
  """A prepared dataset came from other audio than manual_dir holds now. The message is one line."""


REBUILD_HINT = ('rebuild it from manual_dir with --config.rebuild_data=true (python -m tfds_gtzan.build: '
                '--rebuild), or use another data_dir')


def get_builder(name: str, data_dir: str | None, manual_dir: str | None = None, *,
                prepare: bool = True, rebuild: bool = False, check_source: bool = True
                ) -> tfds.core.DatasetBuilder:
  """The builder of `name` (e.g. 'gtzan_mel/synthetic'), prepared first if `prepare`.

  A prepared dataset is reused only if it came from the audio at hand: when `manual_dir` is
  given (and `check_source`), the record of what it was built from (`metadata['source']`:
  the files, their sizes, labels, groups and splits) must match what manual_dir holds now
  (`Builder.source_record`, which decodes nothing). Otherwise StaleDataError names both
  sources and how to rebuild, unless `rebuild`: then the dataset is rebuilt, and the stale
  copy is kept until the new one is complete (a failed rebuild puts it back). A dataset
  prepared before builds recorded their source counts as stale when a manual_dir is given.
  Without a manual_dir a prepared dataset is read as it is (evaluate reads what a checkpoint
  was trained on, whose record the checkpoint compares itself).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (batching needs no TFDS)
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    current = (builder.source_record(manual_dir) if manual_dir and check_source
               and hasattr(builder, 'source_record') else None)
    if current is not None:
      recorded = (builder.info.metadata or {}).get('source')
      if not recorded or recorded.get('digest') != current['digest']:
        if not rebuild:
          raise StaleDataError(_stale_message(name, builder, recorded, current))
        return _rebuild(name, data_dir, manual_dir, builder)
    return builder
  if prepare:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def _stale_message(name: str, builder, recorded: dict[str, Any] | None, current: dict[str, Any]) -> str:
  from tfds_gtzan.gtzan_mel import catalog  # pylint: disable=g-import-not-at-top
  where = f'{name} in {builder.data_path}'
  if not recorded:
    return (f'{where} was prepared before builds recorded their source, so it cannot be checked against '
            f'manual_dir {catalog.describe(current)}: {REBUILD_HINT}.')
  return (f'{where} was built from {catalog.describe(recorded)}, not from manual_dir '
          f'{catalog.describe(current)} ({catalog.differences(recorded, current)}): {REBUILD_HINT}.')


def _rebuild(name: str, data_dir: str | None, manual_dir: str, stale) -> tfds.core.DatasetBuilder:
  """Rebuilds `name` from manual_dir, keeping the stale copy aside until the new one is complete."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from etils import epath  # pylint: disable=g-import-not-at-top
  path = epath.Path(stale.data_path)
  aside = path.parent / f'.{path.name}.stale'  # not a version name: TFDS does not read it
  if aside.exists():  # left by a rebuild that was killed after moving it (the dataset itself is gone)
    aside.rmtree()
  path.rename(aside)
  try:
    fresh = tfds.builder(name, data_dir=data_dir)  # a new builder: the stale one holds the old class names
    fresh.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except BaseException:
    if not path.exists():
      aside.rename(path)
    raise
  aside.rmtree()
  return fresh


def read_split(name: str, split: str, data_dir: str | None) -> Batch:
  """A whole prepared split in memory, sorted by (track, copy, segment).

  Returns:
    {'mel': [N, mels, frames] float16 ([N, 128, 173]; [N, 96, 187] for the musicnn
     feature set), 'label': [N] int32, 'track': [N] str,
     'segment': [N] int32, 'copy': [N] int32 (0: the clip; k >= 1: its augmented
     copy k, in the training split of augmented configs), 'group': [N] str (artist or
     album of a collection's track; '' when none, and for GTZAN)}.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  if not len(source):
    return _stack([])
  mel, parts = None, []  # mel filled in place, then sorted in place: memory holds it once
  for start, chunk in _chunks(source):
    if mel is None:
      mel = np.empty((len(source), *chunk['mel'].shape[1:]), chunk['mel'].dtype)
    rows = chunk.pop('mel')
    mel[start:start + len(rows)] = rows
    parts.append(chunk)
  data = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
  order = np.lexsort((data['segment'], data['copy'], data['track']))
  _permute_rows(mel, order)
  return {'mel': mel, **{key: value[order] for key, value in data.items()}}


def _chunks(source, with_mel: bool = True) -> Iterator[tuple[int, Batch]]:
  """(start, `_stack` of examples [start, start + _READ_CHUNK)) over a whole data source, in its order."""
  for start in range(0, len(source), _READ_CHUNK):
    yield start, _stack(source.__getitems__(list(range(start, min(start + _READ_CHUNK, len(source))))), with_mel)


def _permute_rows(array: np.ndarray, order: np.ndarray) -> None:
  """array[:] = array[order], in place (one row of scratch): following the permutation's cycles."""
  done = np.zeros(len(order), bool)
  for start in range(len(order)):
    if done[start]:
      continue
    scratch, j = array[start].copy(), start
    while True:
      done[j] = True
      k = int(order[j])
      if k == start:
        array[j] = scratch
        break
      array[j] = array[k]
      j = k


class StreamedSplit:
  """A prepared split too big to hold in memory, read from its ArrayRecord files batch by batch.

    split = StreamedSplit('gtzan_mel/fma_large', 'train', data_dir, on_mel=stats.add)
    split['label'], split['track']          # every field but 'mel', in memory, in read_split's order
    for batch in iterate_batches(split, 64, shuffle=True, seed=0, epoch=3): ...   # as over read_split

  Position i is `read_split`'s example i (sorted by track, copy, segment), so `iterate_batches`
  gives the same batches over it as over the split in memory: the same order in (seed, epoch),
  the same shards per process, the same resumption mid-epoch. Opening it reads every example
  once (TFDS's random-access `data_source`) to keep the small fields and their order; `on_mel`,
  if given, sees each chunk of mel on the way (e.g. to compute statistics in the same pass).
  Memory holds the small fields (~100 bytes an example) and the batches being read.
  """

  def __init__(self, name: str, split: str, data_dir: str | None,
               on_mel: Callable[[np.ndarray], None] | None = None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self.name, self.split = name, split
    self.source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    # Without on_mel the mel bytes are not decoded (the pass costs the records' parsing only).
    light = self.source if on_mel else tfds.data_source(
        name, split=split, data_dir=data_dir, download=False, decoders={'mel': tfds.decode.SkipDecoding()})
    parts = []
    for _, fields in _chunks(light, with_mel=bool(on_mel)):
      if on_mel:
        on_mel(fields.pop('mel'))
      parts.append(fields)
    meta = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]} if parts else (
        {key: value for key, value in _stack([], with_mel=False).items()})
    order = np.lexsort((meta['segment'], meta['copy'], meta['track']))
    self.meta = {key: value[order] for key, value in meta.items()}
    self.rows = order  # position i of the sorted order is example rows[i] of the source
    self.band_statistics = None  # what a caller computed with on_mel, if it keeps it here (the trainer does)

  def __len__(self) -> int:
    return len(self.rows)

  def __getitem__(self, key: str) -> np.ndarray:
    if key == 'mel':
      raise KeyError(f"{self.name} {self.split} is streamed: its 'mel' is read batch by batch "
                     '(tfds_gtzan.data.iterate_batches), never whole.')
    return self.meta[key]

  def __contains__(self, key: str) -> bool:
    return key in self.meta

  def __getitems__(self, positions: Sequence[int]) -> list[dict[str, Any]]:
    """The examples at `positions` of the sorted order, decoded from disk."""
    return self.source.__getitems__(self.rows[np.asarray(positions, np.int64)].tolist())


T = TypeVar('T')


def prefetch(items: Iterator[T], size: int = 2) -> Iterator[T]:
  """Yields what `items` yields, produced by a background thread up to `size` items ahead.

  Reading and decoding a streamed split's next batches then overlaps the step running on the
  current one. An exception in the thread is raised here; closing the generator stops the thread.
  """
  ready: queue.Queue = queue.Queue(size)
  stop = threading.Event()
  done = object()

  def put(item) -> bool:
    while not stop.is_set():
      try:
        ready.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def work() -> None:
    try:
      for item in items:
        if not put((item, None)):
          return
      put((done, None))
    except BaseException as e:  # pylint: disable=broad-except  (raised again in the consumer)
      put((None, e))

  thread = threading.Thread(target=work, name='prefetch', daemon=True)
  thread.start()
  try:
    while True:
      item, error = ready.get()
      if error is not None:
        raise error
      if item is done:
        return
      yield item
  finally:
    stop.set()
    thread.join()


def epoch_permutation(num_examples: int, *, seed: int, epoch: int) -> np.ndarray:
  """A permutation of range(num_examples) that depends only on (seed, epoch)."""
  return np.random.default_rng((seed, epoch)).permutation(num_examples)


def num_batches(num_examples: int, batch_size: int, drop_remainder: bool) -> int:
  """Global batches per epoch; with drop_remainder=False the last may be partial."""
  if drop_remainder:
    return num_examples // batch_size
  return -(-num_examples // batch_size)


def iterate_batches(data: Mapping[str, np.ndarray] | Sequence[Mapping[str, Any]],
                    batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                    drop_remainder: bool = True, start_batch: int = 0,
                    process_index: int | None = None,
                    process_count: int | None = None) -> Iterator[Batch]:
  """Yields this process's share of each global batch of one epoch.

  Args:
    data: a dict of equally long arrays (as `read_split` returns), a `StreamedSplit` or a
      random-access TFDS data source.
    batch_size: the global batch size; it must divide by `process_count`.
    shuffle: order by `epoch_permutation(seed=seed, epoch=epoch)`, else keep order.
    seed: shuffling seed.
    epoch: epoch number, for the permutation.
    drop_remainder: drop the last partial global batch. Otherwise pad it with
      zeros to full size and add a 'mask' (float32, 1 real, 0 padding) to every
      batch.
    start_batch: skip the epoch's first batches, e.g. to resume mid-epoch.
    process_index: this process; default `jax.process_index()`.
    process_count: number of processes; default `jax.process_count()`.

  Yields:
    The numeric arrays ('mel', 'label', 'segment' and maybe 'mask'), each with
    batch_size // process_count rows: rows [i*B/P, (i+1)*B/P) of global batch b,
    which holds examples order[b*B:(b+1)*B].
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if batch_size <= 0 or batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} must be positive and divisible by the '
                     f'process count {process_count}.')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} not in [0, {process_count}).')
  if start_batch < 0:
    raise ValueError(f'start_batch must be >= 0, got {start_batch}.')
  num_examples = len(next(iter(data.values()))) if isinstance(data, Mapping) else len(data)
  order = (epoch_permutation(num_examples, seed=seed, epoch=epoch) if shuffle
           else np.arange(num_examples))
  local_size = batch_size // process_count
  for b in range(start_batch, num_batches(num_examples, batch_size, drop_remainder)):
    start = b * batch_size + process_index * local_size
    batch = _take(data, order[start:start + local_size])
    if not drop_remainder:
      batch = _pad(batch, local_size)
    yield batch


def _take(data: Mapping[str, np.ndarray] | Sequence[Mapping[str, Any]],
          rows: np.ndarray) -> Batch:
  """The numeric fields of the given rows."""
  if isinstance(data, Mapping):
    arrays = {key: np.asarray(value) for key, value in data.items()}
    return {key: value[rows] for key, value in arrays.items() if _is_numeric(value)}
  # A data source: one example also gives the fields' shapes when `rows` is empty.
  batch = _stack(data.__getitems__(rows.tolist() or [0]))
  return {key: value[:len(rows)] for key, value in batch.items() if _is_numeric(value)}


def _pad(batch: Batch, size: int) -> Batch:
  """Zero-pads every array to `size` rows and adds the float32 'mask'."""
  num_real = len(next(iter(batch.values())))
  padded = {key: np.concatenate([value, np.zeros((size - num_real, *value.shape[1:]), value.dtype)])
            for key, value in batch.items()}
  padded['mask'] = (np.arange(size) < num_real).astype(np.float32)
  return padded


def _stack(examples: Sequence[Mapping[str, Any]], with_mel: bool = True) -> Batch:
  """Decoded TFDS examples as arrays with the dtypes `read_split` documents (without 'mel' if not `with_mel`)."""
  from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa: only for reading)
  mel = np.array([ex['mel'] for ex in examples] if with_mel else [], audio.MEL_DTYPE)
  return {
      **({'mel': mel if len(examples) else mel.reshape(0, audio.N_MELS, audio.FRAMES)} if with_mel else {}),
      'label': np.array([ex['label'] for ex in examples], np.int32),
      'track': np.array([_as_str(ex['track']) for ex in examples], str),
      'segment': np.array([ex['segment'] for ex in examples], np.int32),
      # Datasets prepared before version 1.1.0 have no 'copy': all are originals.
      'copy': np.array([ex.get('copy', 0) for ex in examples], np.int32),
      # Only collections (folders, manifest, FMA) store a group; GTZAN's clips have none.
      'group': np.array([_as_str(ex.get('group', b'')) for ex in examples], str),
  }


def _as_str(value: bytes | str) -> str:
  return value.decode() if isinstance(value, bytes) else value


def _is_numeric(array: np.ndarray) -> bool:
  return np.issubdtype(array.dtype, np.number) or array.dtype == bool
