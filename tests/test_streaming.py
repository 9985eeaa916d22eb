"""Splits bigger than the memory budget: streamed from the ArrayRecord files with the batches of the in-memory path."""

from __future__ import annotations

import threading

import jax
import numpy as np
import pytest

from gtzan_jax import evaluation, input_pipeline, train
from gtzan_jax.parallel import DataParallel
from tfds_gtzan import data

NAME = 'gtzan_mel/synthetic'


@pytest.fixture(scope='module')
def both(synthetic_data_dir):
  """The synthetic training split in memory and streamed."""
  statistics = input_pipeline.BandStatistics()
  streamed = data.StreamedSplit(NAME, 'train', synthetic_data_dir, on_mel=statistics.add)
  return data.read_split(NAME, 'train', synthetic_data_dir), streamed, statistics.result()


def _batches(split, **kwargs):
  return list(data.iterate_batches(split, 32, **kwargs))


def _equal(a, b) -> bool:
  return len(a) == len(b) and all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
                                  for x, y in zip(a, b))


def test_a_streamed_split_has_the_in_memory_order_and_fields(both):
  memory, streamed, _ = both
  assert len(streamed) == len(memory['label'])
  for key in ('label', 'track', 'segment', 'copy', 'group'):
    np.testing.assert_array_equal(streamed[key], memory[key])
  with pytest.raises(KeyError, match='streamed'):
    streamed['mel']  # pylint: disable=pointless-statement
  np.testing.assert_array_equal(data._stack(streamed.__getitems__([5, 0, 99]))['mel'],  # pylint: disable=protected-access
                                memory['mel'][[5, 0, 99]])


@pytest.mark.parametrize('kwargs', [
    dict(shuffle=True, seed=0, epoch=0), dict(shuffle=True, seed=3, epoch=7),
    dict(shuffle=True, seed=0, epoch=2, start_batch=17),  # resumed mid-epoch
    dict(shuffle=False, drop_remainder=False),  # evaluation: padded last batch and mask
    dict(shuffle=True, seed=1, epoch=1, process_index=1, process_count=4),  # one process's shard
], ids=['epoch0', 'seed3_epoch7', 'resume_mid_epoch', 'padded', 'process_shard'])
def test_streamed_batches_are_the_in_memory_batches(both, kwargs):
  memory, streamed, _ = both
  expected = _batches(memory, **kwargs)
  assert expected and _equal(_batches(streamed, **kwargs), expected)
  assert _equal(list(data.prefetch(iter(_batches(streamed, **kwargs)), 3)), expected)


def test_band_statistics_of_the_streaming_pass(both):
  memory, _, streamed_statistics = both
  for ours, theirs in zip(streamed_statistics, input_pipeline.band_statistics(memory['mel'])):
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_the_budget_decides_what_streams(synthetic_data_dir, tiny_config):
  tiny_config.data_dir = synthetic_data_dir
  builder = data.get_builder(NAME, synthetic_data_dir)
  example = 128 * 173 * 2
  sizes = {s: builder.info.splits[s].num_examples * example for s in input_pipeline.SPLITS}
  assert input_pipeline.streamed_splits(builder, 10**12) == set()
  assert input_pipeline.streamed_splits(builder, 0) == set(input_pipeline.SPLITS)
  assert input_pipeline.streamed_splits(builder, sizes['validation'] + sizes['test']) == {'train'}
  tiny_config.memory_budget = f'{sizes["validation"] + sizes["test"]}'
  datasets = input_pipeline.load_datasets(tiny_config)
  assert input_pipeline.is_streamed(datasets['train']) and not input_pipeline.is_streamed(datasets['test'])
  tiny_config.memory_budget = 'lots'
  with pytest.raises(ValueError, match="config.memory_budget='lots'"):
    input_pipeline.load_datasets(tiny_config)


def test_training_streamed_equals_training_in_memory(synthetic_data_dir, tiny_config, tmp_path):
  """Same losses, validation and test: the streamed run takes the in-memory run's steps."""
  tiny_config.data_dir, tiny_config.num_epochs, tiny_config.vgg.widths = synthetic_data_dir, 1, (4,)
  results = {}
  for budget in ('auto', '0'):
    tiny_config.memory_budget = budget
    results[budget] = train.train_and_evaluate(tiny_config, str(tmp_path / budget), devices=jax.devices()[:1])
  for key in ('validation', 'test'):
    for metric in ('accuracy', 'track_accuracy', 'num_examples'):
      assert results['0'][key][metric] == results['auto'][key][metric], (key, metric)
    assert results['0'][key]['loss'] == pytest.approx(results['auto'][key]['loss'], rel=1e-5)
  streamed = data.StreamedSplit(NAME, 'test', synthetic_data_dir)
  evaluator = evaluation.Evaluator(DataParallel('jit', jax.devices()[:1]), 24)
  trained = evaluation.load_trained(str(tmp_path / '0'))
  memory = data.read_split(NAME, 'test', synthetic_data_dir)
  np.testing.assert_array_equal(evaluator.log_probs(trained.state, streamed),
                                evaluator.log_probs(trained.state, memory['mel']))


def test_prefetch_raises_the_readers_error_and_stops_its_thread():
  def items():
    yield 1
    raise OSError('disk gone')

  with pytest.raises(OSError, match='disk gone'):
    list(data.prefetch(items()))
  endless = data.prefetch(iter(range(10**9)), 2)
  assert next(endless) == 0
  before = threading.active_count()
  endless.close()  # the consumer stops early: the reader thread ends too
  assert threading.active_count() == before - 1
