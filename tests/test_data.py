"""Tests for tfds_gtzan.data: reading splits and deterministic, sharded batching."""

from __future__ import annotations

import fake_gtzan
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_gtzan import data

NUM_EXAMPLES = 23


def _arrays(num_examples: int = NUM_EXAMPLES) -> dict[str, np.ndarray]:
  """A split like read_split's, with a small 'mel' whose first value is the row index."""
  mel = np.zeros((num_examples, 2, 3), np.float16)
  mel[:, 0, 0] = np.arange(num_examples)
  return {
      'mel': mel,
      'label': np.arange(num_examples, dtype=np.int32) % 10,
      'track': np.array([f'blues.{i // 2:05d}' for i in range(num_examples)]),
      'segment': np.arange(num_examples, dtype=np.int32) % 2,
  }


def _rows(batches) -> list[int]:
  """The example indices of the real rows of `batches`, in order."""
  rows = []
  for batch in batches:
    real = batch['mask'] > 0 if 'mask' in batch else slice(None)
    rows += batch['mel'][real, 0, 0].astype(int).tolist()
  return rows


def _batches(**kwargs) -> list[dict[str, np.ndarray]]:
  kwargs = {'process_index': 0, 'process_count': 1, **kwargs}
  return list(data.iterate_batches(kwargs.pop('data', _arrays()), kwargs.pop('batch_size', 4),
                                   **kwargs))


@pytest.mark.parametrize('num_examples, batch_size, drop_remainder, expected', [
    (23, 4, True, 5), (23, 4, False, 6), (24, 4, True, 6), (24, 4, False, 6), (3, 4, True, 0),
    (0, 4, False, 0)])
def test_num_batches(num_examples, batch_size, drop_remainder, expected):
  assert data.num_batches(num_examples, batch_size, drop_remainder) == expected


def test_epoch_permutation_is_deterministic_in_seed_and_epoch():
  first = data.epoch_permutation(100, seed=3, epoch=1)
  np.testing.assert_array_equal(first, data.epoch_permutation(100, seed=3, epoch=1))
  assert sorted(first.tolist()) == list(range(100))
  assert not np.array_equal(first, data.epoch_permutation(100, seed=3, epoch=2))
  assert not np.array_equal(first, data.epoch_permutation(100, seed=4, epoch=1))


@pytest.mark.parametrize('shuffle', [False, True])
def test_each_example_once_per_epoch(shuffle):
  padded = _batches(shuffle=shuffle, drop_remainder=False, epoch=5)
  assert sorted(_rows(padded)) == list(range(NUM_EXAMPLES))
  dropped = _batches(shuffle=shuffle, drop_remainder=True, epoch=5)
  assert len(dropped) == NUM_EXAMPLES // 4
  assert _rows(dropped) == _rows(padded)[:len(dropped) * 4]
  if not shuffle:
    assert _rows(padded) == list(range(NUM_EXAMPLES))


def test_padding_and_mask():
  batches = _batches(shuffle=False, drop_remainder=False)
  assert all(set(b) == {'mel', 'label', 'segment', 'mask'} for b in batches)
  assert all(len(b['mel']) == 4 and b['mask'].dtype == np.float32 for b in batches)
  last = batches[-1]
  np.testing.assert_array_equal(last['mask'], [1, 1, 1, 0])
  assert not last['mel'][3].any() and last['label'][3] == 0 and last['segment'][3] == 0
  assert last['mel'].dtype == np.float16 and last['label'].dtype == np.int32


def test_drop_remainder_has_no_mask_or_strings():
  batches = _batches(shuffle=True, drop_remainder=True)
  assert all(set(b) == {'mel', 'label', 'segment'} for b in batches)


@pytest.mark.parametrize('drop_remainder', [True, False])
def test_process_shards_concatenate_to_the_global_batch(drop_remainder):
  kwargs = {'shuffle': True, 'seed': 7, 'epoch': 2, 'drop_remainder': drop_remainder,
            'batch_size': 6}
  whole = _batches(**kwargs)
  shards = [_batches(process_index=i, process_count=2, **kwargs) for i in range(2)]
  assert len(shards[0]) == len(shards[1]) == len(whole)
  for batch, first, second in zip(whole, *shards):
    assert set(first) == set(batch)
    for key in batch:
      assert len(first[key]) == 3
      np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), batch[key])


def test_start_batch_resumes_mid_epoch():
  kwargs = {'shuffle': True, 'seed': 1, 'epoch': 3, 'drop_remainder': False}
  whole = _batches(**kwargs)
  resumed = _batches(start_batch=2, **kwargs)
  assert _rows(resumed) == _rows(whole[2:])
  assert not _batches(start_batch=len(whole), **kwargs)


def test_order_depends_on_seed_and_epoch():
  order = lambda **kw: _rows(_batches(shuffle=True, drop_remainder=False, **kw))
  assert order(seed=0, epoch=0) == order(seed=0, epoch=0)
  assert order(seed=0, epoch=0) != order(seed=0, epoch=1)
  assert order(seed=0, epoch=0) != order(seed=1, epoch=0)
  expected = data.epoch_permutation(NUM_EXAMPLES, seed=0, epoch=1).tolist()
  assert order(seed=0, epoch=1) == expected


def test_batch_size_must_divide_by_process_count():
  with pytest.raises(ValueError, match='divisible'):
    _batches(shuffle=False, batch_size=5, process_count=2)


def test_defaults_to_jax_processes():
  batches = list(data.iterate_batches(_arrays(), 4, shuffle=False))
  assert len(batches) == NUM_EXAMPLES // 4 and len(batches[0]['mel']) == 4


@pytest.fixture(scope='module')
def fake_data_dir(tmp_path_factory):
  manual_dir = fake_gtzan.write_fake_gtzan(tmp_path_factory.mktemp('manual'))
  data_dir = tmp_path_factory.mktemp('data')
  data.get_builder('gtzan_mel/tracks', data_dir, manual_dir)
  return data_dir


def test_get_builder_prepares_only_when_asked(fake_data_dir, tmp_path):
  assert not data.get_builder('gtzan_mel/tracks', tmp_path, prepare=False).is_prepared()
  assert data.get_builder('gtzan_mel/tracks', fake_data_dir).is_prepared()


def test_read_split(fake_data_dir):
  split = data.read_split('gtzan_mel/tracks', 'train', fake_data_dir)
  assert set(split) == {'mel', 'label', 'track', 'segment', 'copy', 'group'}
  assert not any(split['group'])  # GTZAN's clips have no group
  assert split['mel'].shape == (24, 128, 173) and split['mel'].dtype == np.float16
  assert split['label'].dtype == np.int32 and split['segment'].dtype == np.int32
  assert split['copy'].dtype == np.int32 and not split['copy'].any()
  assert split['track'].dtype.kind == 'U'
  keys = list(zip(split['track'].tolist(), split['segment'].tolist()))
  assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_iterate_batches_over_a_data_source(fake_data_dir):
  source = tfds.data_source('gtzan_mel/tracks', split='train', data_dir=fake_data_dir)
  in_source_order = {
      'mel': np.stack([ex['mel'] for ex in source]),
      'label': np.array([ex['label'] for ex in source], np.int32),
      'segment': np.array([ex['segment'] for ex in source], np.int32),
      'copy': np.array([ex['copy'] for ex in source], np.int32),
  }
  kwargs = {'shuffle': True, 'seed': 2, 'drop_remainder': False, 'process_index': 1,
            'process_count': 2}
  from_source = list(data.iterate_batches(source, 10, **kwargs))
  from_arrays = list(data.iterate_batches(in_source_order, 10, **kwargs))
  assert len(from_source) == len(from_arrays) == 3
  for got, expected in zip(from_source, from_arrays):
    assert set(got) == set(expected) == {'mel', 'label', 'segment', 'copy', 'mask'}
    for key in expected:
      assert got[key].dtype == expected[key].dtype
      np.testing.assert_array_equal(got[key], expected[key])
