"""The checkpoint policy: the latest N plus the best by validation accuracy; restore and mismatches."""

import os

import numpy as np
import pytest

from gtzan_jax import checkpointing


def _state(value):
  return {'params': {'w': np.full((3, 2), value, np.float32)}, 'step': np.array(value, np.int32)}


def _steps_on_disk(directory):
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def test_keeps_the_latest_and_the_best_epoch_end(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  ckpt = checkpointing.Checkpointer(directory, keep=2, use_async=False)
  accuracy = {10: 0.5, 20: 0.9, 30: 0.6, 40: 0.7}  # end-of-epoch steps; the best is step 20
  for step in range(10, 60, 5):
    metrics = {'validation_accuracy': accuracy[step]} if step in accuracy else None  # mid-epoch: none
    ckpt.save(step, _state(step), {'step': step}, metrics)
  ckpt.wait()
  assert ckpt.latest_step() == 55 and ckpt.best_step() == 20
  assert _steps_on_disk(directory) == [20, 50, 55]  # the best survives the latest two
  ckpt.close()

  reopened = checkpointing.Checkpointer(directory, keep=2, use_async=False)
  assert reopened.latest_step() == 55 and reopened.best_step() == 20
  state, meta = reopened.restore(20, _state(0))
  assert meta == {'step': 20} and int(state['step']) == 20
  np.testing.assert_array_equal(state['params']['w'], np.full((3, 2), 20, np.float32))
  assert reopened.restore_meta(55) == {'step': 55}
  reopened.close()


def test_a_checkpoint_of_another_model_is_a_clear_error(tmp_path):
  directory = str(tmp_path / 'checkpoints')
  ckpt = checkpointing.Checkpointer(directory, use_async=False)
  ckpt.save(1, _state(1), {'step': 1})
  ckpt.wait()
  other = {'params': {'w': np.zeros((4, 4), np.float32), 'b': np.zeros(4, np.float32)}, 'step': np.array(0, np.int32)}
  with pytest.raises(ValueError, match=f'Checkpoint {directory}/1 does not match this config'):
    ckpt.restore(1, other)
  ckpt.close()
