"""From the gtzan_mel TFDS dataset to model inputs.

The splits are small enough to hold in host memory (full GTZAN: ~14k segments,
0.6 GB as float16), so each split is read once with random access
(`tfds.data_source`) and then batched with numpy by `tfds_gtzan.data`.

`config.features` (absent: 'mel') picks the feature set (`tfds_gtzan.feature_sets`):
'mel', the paper's [128, 173] log-mel segments of `config.dataset`, or 'musicnn', the
pretrained musicnn networks' [96, 187] patches of the same clips ('gtzan_mel/tracks' ->
'gtzan_mel/tracks_musicnn'); `input_shape(config)` is the shape of one example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

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
  if not copies and features == feature_sets.DEFAULT:
    return config.dataset
  builder_name, _, base = config.dataset.partition('/')
  if builder_name != 'gtzan_mel' or not base:
    needs = f'config.augment.audio_copies={copies}' if copies else f'config.features={features!r}'
    raise ValueError(f'{needs} needs a gtzan_mel/<config> dataset, '
                     f'not config.dataset={config.dataset!r}.')
  # pylint: disable-next=g-import-not-at-top  (TFDS and librosa: only to build derived data)
  from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
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


def load_datasets_with_source(config: ml_collections.ConfigDict, augment_splits: Sequence[str] = ('train',)
                              ) -> tuple[dict[str, Arrays], dict[str, Any]]:
  """`load_datasets`, and the record of where the data came from that checkpoints keep.

  The record: {'kind': 'tfds', 'name': the TFDS name read, 'version': its version,
  'class_names': the label names}, and 'features': the feature set where it is not 'mel'
  (so records written before feature sets still compare equal); `evaluation.load_data`
  reads the same data from it or refuses.
  """
  name = dataset_name(config, augment_splits)
  data_dir = config.data_dir or None
  builder = gtzan_data.get_builder(name, data_dir, config.manual_dir or None)
  label = builder.info.features['label']
  source = {'kind': 'tfds', 'name': name, 'version': str(builder.info.version),
            'class_names': list(label.names)}
  features = feature_set_name(config)
  if features != feature_sets.DEFAULT:
    source['features'] = features
  return {split: gtzan_data.read_split(name, split, data_dir) for split in SPLITS}, source


def data_source_changes(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
  """'key old -> new' for each field two data records differ in; [] when `saved` is empty.

  The arrays file's path is left out: the same file read from elsewhere is the same data.
  An empty `saved` was written before checkpoints recorded their data, so it is not compared.
  """
  if not saved:
    return []
  keys = sorted((set(saved) | set(current)) - {'arrays'})
  return [f'{k} {saved.get(k)!r} -> {current.get(k)!r}' for k in keys if saved.get(k) != current.get(k)]


def arrays_source(description: str, class_names: Sequence[str] | None = None) -> dict[str, Any]:
  """The data record of splits a caller passed in as arrays (nothing on disk names them)."""
  from tfds_gtzan.gtzan_mel import sources  # pylint: disable=g-import-not-at-top
  return {'kind': 'arrays', 'description': description,
          'class_names': list(class_names or sources.GENRES)}


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (the remainder is dropped; it is reshuffled in next epoch)."""
  if num_examples < batch_size:
    raise ValueError(f'The training split has {num_examples} examples, fewer than '
                     f'config.batch_size={batch_size}.')
  return num_examples // batch_size


def band_statistics(mel: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
  """Per-mel-band mean and variance over examples and frames of `mel` [N, mels, frames]."""
  total = np.zeros(mel.shape[1], np.float64)
  total_sq = np.zeros(mel.shape[1], np.float64)
  for start in range(0, len(mel), chunk):
    x = mel[start:start + chunk].astype(np.float64)
    total += x.sum(axis=(0, 2))
    total_sq += np.square(x).sum(axis=(0, 2))
  count = mel.shape[0] * mel.shape[2]
  mean = total / count
  return mean.astype(np.float32), np.maximum(total_sq / count - mean**2, 0.0).astype(np.float32)


def model_inputs(batch: Arrays, with_mask: bool = False) -> Arrays:
  """Keeps what a step consumes: mel (stored float16), label and, for evaluation, mask."""
  keys = ('mel', 'label', 'mask') if with_mask else ('mel', 'label')
  return {k: batch[k] for k in keys}
