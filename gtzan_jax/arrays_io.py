"""Segments as .npz files, for machines without TFDS or librosa: the one reader and writer.

Two layouts:
  splits  `<split>/<key>` arrays of the three splits, as `tfds_gtzan.data.read_split` gives them
          (scripts/export_arrays.py writes them, scripts/study_arrays.py reads them);
  pooled  one set of `mel, label, track, copy, group` arrays, every segment of a dataset plus
          any augmented copies, and the class names (`gtzan_jax.crossval --arrays` reads them).
          `quantize` stores mel as uint8 (scale and offset beside it), read back as float16.
          Files written before `group` and `class_names` were kept read as GTZAN's, without groups.
Writes go to a temporary file renamed into place, so a cut-off write leaves no half file.
"""

from __future__ import annotations

import os

import numpy as np

Arrays = dict[str, np.ndarray]
POOLED_KEYS = ('mel', 'label', 'track', 'copy', 'group')


def _write(path: str, arrays: Arrays) -> None:
  tmp = path + '.tmp.npz'  # np.savez appends .npz to names without it
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def save_pooled(path: str, data: Arrays, class_names, quantize: bool = False) -> None:
  """Writes pooled segments and their class names; `quantize` stores mel as uint8 (scale and offset beside it)."""
  arrays = {k: data[k] for k in POOLED_KEYS if k in data}
  arrays['class_names'] = np.array(list(class_names), str)
  if quantize:
    mel = data['mel'].astype(np.float32)
    low, high = float(mel.min()), float(mel.max())
    scale = (high - low) / 255 or 1.0
    arrays['mel'] = np.round((mel - low) / scale).astype(np.uint8)
    arrays['mel_offset'], arrays['mel_scale'] = np.float32(low), np.float32(scale)
  _write(path, arrays)


def load_pooled(path: str) -> Arrays:
  """Reads what `save_pooled` wrote (mel as float16); a file without the arrays is a ValueError."""
  try:
    f = np.load(path)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: not a readable .npz file ({e}).') from None
  with f:
    data = {k: f[k] for k in f.files if k in POOLED_KEYS}
    if 'mel_scale' in f.files:
      data['mel'] = (data['mel'] * f['mel_scale'] + f['mel_offset']).astype(np.float16)
  missing = set(POOLED_KEYS) - set(data) - {'copy', 'group'}
  if missing:
    raise ValueError(f'{path} lacks the arrays {sorted(missing)}.')
  data.setdefault('copy', np.zeros(len(data['label']), np.int32))
  data.setdefault('group', np.full(len(data['label']), '', str))
  return data


def load_class_names(path: str) -> list[str] | None:
  """The class names a pooled file holds; None for one written before it kept them (GTZAN's)."""
  with np.load(path) as f:
    return [str(name) for name in f['class_names']] if 'class_names' in f.files else None


def save_splits(path: str, datasets: dict[str, Arrays]) -> None:
  """Writes {split: arrays} as `<split>/<key>` arrays."""
  _write(path, {f'{split}/{key}': value for split, arrays in datasets.items() for key, value in arrays.items()})


def load_splits(path: str) -> dict[str, Arrays]:
  """Reads what `save_splits` wrote: {split: {key: array}}."""
  datasets: dict[str, Arrays] = {}
  with np.load(path) as f:
    for name in f.files:
      split, _, key = name.partition('/')
      if not key:
        raise ValueError(f'{path}: array {name!r} is not <split>/<key>; write it with save_splits.')
      datasets.setdefault(split, {})[key] = f[name]
  return datasets
