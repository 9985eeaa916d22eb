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

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
  import tensorflow_datasets as tfds

Batch = dict[str, np.ndarray]
_READ_CHUNK = 1024  # Examples per random-access read.


def get_builder(name: str, data_dir: str | None, manual_dir: str | None = None, *,
                prepare: bool = True) -> tfds.core.DatasetBuilder:
  """The builder of `name` (e.g. 'gtzan_mel/synthetic'), prepared first if `prepare`."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (batching needs no TFDS)
  builder = tfds.builder(name, data_dir=data_dir)
  if prepare and not builder.is_prepared():
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def read_split(name: str, split: str, data_dir: str | None) -> Batch:
  """A whole prepared split in memory, sorted by (track, copy, segment).

  Returns:
    {'mel': [N, mels, frames] float16 ([N, 128, 173]; [N, 96, 187] for the musicnn
     feature set), 'label': [N] int32, 'track': [N] str,
     'segment': [N] int32, 'copy': [N] int32 (0: the clip; k >= 1: its augmented
     copy k, in the training split of augmented configs)}.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  examples = []
  for start in range(0, len(source), _READ_CHUNK):
    examples += source.__getitems__(list(range(start, min(start + _READ_CHUNK, len(source)))))
  data = _stack(examples)
  order = np.lexsort((data['segment'], data['copy'], data['track']))
  return {key: value[order] for key, value in data.items()}


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
    data: a dict of equally long arrays (as `read_split` returns) or a random-access
      TFDS data source.
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


def _stack(examples: Sequence[Mapping[str, Any]]) -> Batch:
  """Decoded TFDS examples as arrays with the dtypes `read_split` documents."""
  from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa: only for reading)
  mel = np.array([ex['mel'] for ex in examples], audio.MEL_DTYPE)
  return {
      'mel': mel if len(examples) else mel.reshape(0, audio.N_MELS, audio.FRAMES),
      'label': np.array([ex['label'] for ex in examples], np.int32),
      'track': np.array([_as_str(ex['track']) for ex in examples], str),
      'segment': np.array([ex['segment'] for ex in examples], np.int32),
      # Datasets prepared before version 1.1.0 have no 'copy': all are originals.
      'copy': np.array([ex.get('copy', 0) for ex in examples], np.int32),
  }


def _as_str(value: bytes | str) -> str:
  return value.decode() if isinstance(value, bytes) else value


def _is_numeric(array: np.ndarray) -> bool:
  return np.issubdtype(array.dtype, np.number) or array.dtype == bool
