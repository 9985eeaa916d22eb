"""From the gtzan_mel TFDS dataset to model inputs.

A split whose features fit the memory budget (`config.memory_budget`, 'auto': a quarter of
physical memory; full GTZAN: ~14k segments, 0.6 GB as float16) is read once with random
access (`tfds.data_source`) and then batched with numpy by `tfds_gtzan.data`; a bigger one
(a large collection) is streamed: a `tfds_gtzan.data.StreamedSplit` reads each batch from
the ArrayRecord files when it is needed, a background thread a few batches ahead, in the same
order, shards and resumption as in memory.
The class names are the dataset's own (GTZAN's genres, or a collection's labels).

`config.features` (absent: 'mel') picks the feature set (`tfds_gtzan.feature_sets`):
'mel', the paper's [128, 173] log-mel segments of `config.dataset`, or 'musicnn', the
pretrained musicnn networks' [96, 187] patches of the same clips ('gtzan_mel/tracks' ->
'gtzan_mel/tracks_musicnn'); `input_shape(config)` is the shape of one example.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from tfds_gtzan import data as gtzan_data
from tfds_gtzan import feature_sets

N_MELS = 128  # The 'mel' feature set's shape; `input_shape(config)` gives the config's.
N_FRAMES = 173
SPLITS = ('train', 'validation', 'test')

Arrays = dict[str, np.ndarray]


def feature_set_name(config: ml_collections.ConfigDict) -> str:
  """`config.features` ('mel' when absent), or a one-line ValueError naming the choices."""
  name = config.get('features', feature_sets.DEFAULT)
  name = feature_sets.DEFAULT if name is None else name
  if name not in feature_sets.FEATURE_SETS:
    raise ValueError(f'Unknown config.features={name!r}; one of '
                     f'{", ".join(map(repr, feature_sets.names()))}.')
  return name


def input_shape(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(mels, frames) of one example of the config's feature set: (128, 173) for mel, (96, 187) for musicnn."""
  return feature_sets.get(feature_set_name(config)).shape


def dataset_name(config: ml_collections.ConfigDict, augment_splits: Sequence[str] = ('train',)) -> str:
  """The TFDS name to read: `config.dataset`, its musicnn variant, or their augmented variant.

  With `config.segments_per_track` = K > 0 (a collection's dataset only), first the
  collection config that keeps K segments per track, e.g. 'gtzan_mel/folders_seg40'.

  With `config.features` = 'musicnn', the `gtzan_mel` config of `config.dataset` with
  the musicnn feature set, e.g. 'gtzan_mel/tracks_musicnn' (absent or 'mel':
  `config.dataset` itself). With `config.augment.audio_copies` = K > 0, that config
  plus K augmented copies of every training clip, with the parameters of
  `config.augment` (and `config.augment.seed`, default 0), e.g.
  'gtzan_mel/tracks_aug2_63f3e1dc' or 'gtzan_mel/tracks_musicnn_aug2_<hash>';
  registered with TFDS in this process. Validation and test are those of the
  config without copies, unless `augment_splits` names them too (cross-validation
  pools every split, copies included).
  """
  features = feature_set_name(config)
  augment = config.get('augment')
  copies = augment.get('audio_copies', 0) if augment is not None else 0
  per_track = int(config.get('segments_per_track') or 0)
  if not copies and features == feature_sets.DEFAULT and not per_track:
    return config.dataset
  builder_name, _, base = config.dataset.partition('/')
  if builder_name != 'gtzan_mel' or not base:
    needs = (f'config.augment.audio_copies={copies}' if copies else f'config.features={features!r}'
             if features != feature_sets.DEFAULT else f'config.segments_per_track={per_track}')
    raise ValueError(f'{needs} needs a gtzan_mel/<config> dataset, '
                     f'not config.dataset={config.dataset!r}.')
  # pylint: disable-next=g-import-not-at-top  (TFDS and librosa: only to build derived data)
  from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
  if per_track:
    try:
      base = gtzan_mel_dataset_builder.collection_config(base, per_track).name
    except ValueError as e:
      raise ValueError(f'config.segments_per_track={per_track}: {e}') from None
    if not copies and features == feature_sets.DEFAULT:
      return f'gtzan_mel/{base}'
  if not copies:
    try:
      return f'gtzan_mel/{gtzan_mel_dataset_builder.feature_config(base, features).name}'
    except ValueError as e:
      raise ValueError(f'config.features={features!r}: {e}') from None
  from tfds_gtzan import augment as audio_augment  # pylint: disable=g-import-not-at-top
  params = {field: augment[field] for field in audio_augment.AugmentParams.__dataclass_fields__
            if field in augment}
  try:
    aug_config = gtzan_mel_dataset_builder.augmented_config(
        base, copies=copies, seed=augment.get('seed', 0), splits=augment_splits, features=features,
        **params)
  except (TypeError, ValueError) as e:
    raise ValueError(f'config.augment: {e}') from None
  return f'gtzan_mel/{aug_config.name}'


def load_datasets(config: ml_collections.ConfigDict) -> dict[str, Arrays]:
  """Builds the dataset (`dataset_name(config)`) if it is missing, then reads every split into memory."""
  return load_datasets_with_source(config)[0]


def load_datasets_with_source(config: ml_collections.ConfigDict, augment_splits: Sequence[str] = ('train',),
                              *, check_source: bool = True) -> tuple[dict[str, Arrays], dict[str, Any]]:
  """`load_datasets`, and the record of where the data came from that checkpoints keep.

  The record: {'kind': 'tfds', 'name': the TFDS name read, 'version': its version,
  'class_names': the label names, 'source_digest': the digest of the audio it was built
  from}, and 'features': the feature set where it is not 'mel' (so records written before
  feature sets still compare equal); `evaluation.load_data` reads the same data from it or
  refuses. A prepared dataset built from other audio than `config.manual_dir` holds is
  refused (`tfds_gtzan.data.StaleDataError`), or rebuilt with `config.rebuild_data`;
  `check_source=False` reads it as it is (evaluate, which checks the digest itself).
  """
  name = dataset_name(config, augment_splits)
  data_dir = config.data_dir or None
  builder = gtzan_data.get_builder(name, data_dir, config.manual_dir or None,
                                   rebuild=bool(config.get('rebuild_data', False)), check_source=check_source)
  streamed = streamed_splits(builder, memory_budget(config))
  datasets = {}
  for split in SPLITS:
    if split not in streamed:
      datasets[split] = gtzan_data.read_split(name, split, data_dir)
    elif split == 'train':  # its band statistics in the same pass
      statistics = BandStatistics()
      datasets[split] = gtzan_data.StreamedSplit(name, split, data_dir, on_mel=statistics.add)
      datasets[split].band_statistics = statistics.result()
    else:
      datasets[split] = gtzan_data.StreamedSplit(name, split, data_dir)
  return datasets, tfds_source(config, builder)


def memory_budget(config: ml_collections.ConfigDict) -> int:
  """Bytes of features the splits may take in host memory (`config.memory_budget`).

  'auto' (or absent): a quarter of the machine's physical memory, leaving the rest to the
  model, the compiled steps and the page cache; else a size such as '2GB', '512MB' or '0'
  (stream every split). ValueError, one line, for anything else.
  """
  value = str(config.get('memory_budget', 'auto')).strip()
  if value.lower() == 'auto':
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 4
  match = re.fullmatch(r'(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?', value.lower())
  if not match:
    raise ValueError(f"config.memory_budget={value!r}: 'auto' or a size such as '2GB', '512MB', '0'.")
  return int(float(match[1]) * {'': 1, 'k': 2**10, 'm': 2**20, 'g': 2**30, 't': 2**40}[match[2]])


def streamed_splits(builder, budget: int) -> set[str]:
  """The splits to stream from disk: the smallest are held in memory while their features fit `budget`."""
  example = int(np.prod(builder.info.features['mel'].shape)) * np.dtype(np.float16).itemsize
  sizes = {split: builder.info.splits[split].num_examples * example for split in SPLITS}
  held, total = set(), 0
  for split in sorted(SPLITS, key=lambda s: (sizes[s], s)):
    if total + sizes[split] <= budget:
      held.add(split)
      total += sizes[split]
  streamed = set(SPLITS) - held
  if streamed:
    logging.info('%s: streaming %s from disk (%s of features; config.memory_budget %.2f GB).', builder.name,
                 ', '.join(sorted(streamed)), ', '.join(f'{s} {sizes[s] / 1e9:.2f} GB' for s in SPLITS), budget / 1e9)
  return streamed


def is_streamed(data) -> bool:
  """Whether a split is read from disk batch by batch (`tfds_gtzan.data.StreamedSplit`)."""
  return isinstance(data, gtzan_data.StreamedSplit)


def tfds_source(config: ml_collections.ConfigDict, builder) -> dict[str, Any]:
  """The data record of a prepared TFDS dataset (see `load_datasets_with_source`)."""
  source = {'kind': 'tfds', 'name': f'{builder.name}/{builder.builder_config.name}',
            'version': str(builder.info.version), 'class_names': list(builder.info.features['label'].names)}
  features = feature_set_name(config)
  if features != feature_sets.DEFAULT:
    source['features'] = features
  metadata = builder.info.metadata or {}
  digest = (metadata.get('source') or {}).get('digest')
  if digest:  # builds made before provenance records have none
    source['source_digest'] = digest
  if 'placement' in metadata:  # a collection: segments spread over each track (predict takes them so too)
    source['segments_per_track'] = metadata['max_segments']
  return source


def data_source_changes(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
  """'key old -> new' for each field two data records differ in; [] when `saved` is empty.

  The arrays file's path is left out: the same file read from elsewhere is the same data.
  An empty `saved` was written before checkpoints recorded their data, so it is not compared.
  """
  if not saved:
    return []
  keys = sorted((set(saved) | set(current)) - {'arrays'})
  if 'source_digest' not in saved:  # recorded before builds kept their source: nothing to compare
    keys = [k for k in keys if k != 'source_digest']
  return [f'{k} {saved.get(k)!r} -> {current.get(k)!r}' for k in keys if saved.get(k) != current.get(k)]


def legacy_class_names() -> list[str]:
  """The classes of data records and arrays files written before they named theirs: all were GTZAN's."""
  from tfds_gtzan.gtzan_mel import sources  # pylint: disable=g-import-not-at-top
  return list(sources.GENRES)


def class_names_of_labels(datasets: dict[str, Arrays]) -> list[str]:
  """'0', '1', ...: names for the labels of arrays that came without class names (as many as the largest label + 1)."""
  largest = max((int(d['label'].max()) for d in datasets.values() if len(d['label'])), default=0)
  return [str(i) for i in range(largest + 1)]


def arrays_source(description: str, class_names: Sequence[str]) -> dict[str, Any]:
  """The data record of splits a caller passed in as arrays (nothing on disk names them)."""
  return {'kind': 'arrays', 'description': description, 'class_names': list(class_names)}


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped; it is reshuffled in next epoch)."""
  if num_examples < batch_size:
    raise ValueError(f'The training split has {num_examples} examples, fewer than '
                     f'config.batch_size={batch_size}.')
  return num_examples // batch_size


class BandStatistics:
  """Per-mel-band mean and variance over examples and frames, from chunks of [n, mels, frames] (float64 sums)."""

  def __init__(self):
    self.total = self.total_sq = None
    self.count = 0

  def add(self, mel: np.ndarray) -> None:
    x = mel.astype(np.float64)
    if self.total is None:
      self.total, self.total_sq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    self.total += x.sum(axis=(0, 2))
    self.total_sq += np.square(x).sum(axis=(0, 2))
    self.count += x.shape[0] * x.shape[2]

  def result(self) -> tuple[np.ndarray, np.ndarray]:
    mean = self.total / self.count
    return mean.astype(np.float32), np.maximum(self.total_sq / self.count - mean**2, 0.0).astype(np.float32)


def band_statistics(mel: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
  """Per-mel-band mean and variance over examples and frames of `mel` [N, mels, frames]."""
  statistics = BandStatistics()
  for start in range(0, len(mel), chunk):
    statistics.add(mel[start:start + chunk])
  return statistics.result()


def training_band_statistics(train) -> tuple[np.ndarray, np.ndarray]:
  """`band_statistics` of the training split: computed while a streamed split was opened, else now."""
  return train.band_statistics if is_streamed(train) else band_statistics(train['mel'])


def model_inputs(batch: Arrays, with_mask: bool = False) -> Arrays:
  """Keeps what a step consumes: mel (stored float16), label and, for evaluation, mask."""
  keys = ('mel', 'label', 'mask') if with_mask else ('mel', 'label')
  return {k: batch[k] for k in keys}
