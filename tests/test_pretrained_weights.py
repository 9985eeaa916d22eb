"""The tensor-bundle reader and musicnn's weights: exact round trips, one-line errors, the real wheel.

The bundles are written here by tests/tf_bundle_writer.py (no TensorFlow); the one test of
the real musicnn wheel runs when it is already in the cache (or $GTZAN_JAX_MUSICNN_WHEEL
names it) and is skipped, saying why, otherwise. No test uses the network.
"""

import os
import zipfile

import numpy as np
import pytest

from gtzan_jax.pretrained import tf_bundle, weights
from tf_bundle_writer import write_bundle


def tensors():
  rng = np.random.default_rng(0)
  out = {
      'conv2d/kernel': rng.normal(size=(3, 5, 1, 4)).astype(np.float32),
      'conv2d/bias': np.arange(4, dtype=np.float32) - 1.5,
      'global_step': np.array(12345, dtype=np.int64),
      'labels': np.array([[-7, 0, 2**31 - 1], [-2**31, 3, 9]], dtype=np.int32),
  }
  for i in range(12):              # names sharing prefixes, to fill several small blocks
    out[f'batch_normalization_{i}/moving_mean'] = rng.normal(size=(i + 1,)).astype(np.float32)
  return out


def one_line(excinfo) -> str:
  message = str(excinfo.value)
  assert '\n' not in message, message
  return message


def test_round_trip_is_exact_across_blocks(tmp_path):
  prefix = str(tmp_path / 'model.ckpt')
  want = tensors()
  assert write_bundle(prefix, want, block_size=64) > 3      # a multi-block index
  num_shards, entries = tf_bundle.read_index(prefix)
  assert num_shards == 1 and sorted(entries) == sorted(want)
  got = tf_bundle.read_bundle(prefix)
  for name, value in want.items():
    assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
    np.testing.assert_array_equal(got[name], value)
  only = tf_bundle.read_bundle(prefix, keep=lambda name: name.startswith('conv2d/'))
  assert sorted(only) == ['conv2d/bias', 'conv2d/kernel']


def test_flipped_data_byte_fails_the_crc_naming_the_tensor(tmp_path):
  prefix = str(tmp_path / 'model.ckpt')
  write_bundle(prefix, {'a': np.zeros(8, np.float32), 'b': np.ones((2, 2), np.float32)})
  path = prefix + '.data-00000-of-00001'
  data = bytearray(open(path, 'rb').read())
  data[32 + 5] ^= 0x10                                       # a byte of 'b' (after a's 32 bytes)
  open(path, 'wb').write(bytes(data))
  with pytest.raises(ValueError) as e:
    tf_bundle.read_bundle(prefix)
  assert path in one_line(e) and "'b'" in str(e.value) and 'crc32c' in str(e.value)
  assert list(tf_bundle.read_bundle(prefix, keep=lambda n: n == 'a')) == ['a']


def test_truncated_or_damaged_index_is_one_line_naming_the_file(tmp_path):
  prefix = str(tmp_path / 'model.ckpt')
  write_bundle(prefix, tensors(), block_size=64)
  path = prefix + '.index'
  table = open(path, 'rb').read()
  for damaged in (table[:len(table) // 2], table[:20], b''):
    open(path, 'wb').write(damaged)
    with pytest.raises(ValueError) as e:
      tf_bundle.read_index(prefix)
    assert one_line(e).startswith(path + ': ')
  flipped = bytearray(table)
  flipped[10] ^= 0x01                                        # inside the first data block
  open(path, 'wb').write(bytes(flipped))
  with pytest.raises(ValueError) as e:
    tf_bundle.read_index(prefix)
  assert one_line(e).startswith(path + ': ') and 'crc32c' in str(e.value)
  os.remove(path)
  with pytest.raises(FileNotFoundError) as e:
    tf_bundle.read_index(prefix)
  assert path in one_line(e)


def test_truncated_data_file_names_file_and_tensor(tmp_path):
  prefix = str(tmp_path / 'model.ckpt')
  write_bundle(prefix, {'a': np.zeros(8, np.float32), 'b': np.ones(8, np.float32)})
  path = prefix + '.data-00000-of-00001'
  open(path, 'r+b').truncate(40)
  with pytest.raises(ValueError) as e:
    tf_bundle.read_bundle(prefix)
  assert path in one_line(e) and "'b'" in str(e.value) and 'truncated' in str(e.value)


def test_masked_crc_matches_leveldb():
  assert tf_bundle.masked_crc32c(b'123456789') == ((((0xe3069283 >> 15) | (0xe3069283 << 17)) + 0xa282ead8)
                                                   & 0xffffffff)


def test_wrong_sha256_is_one_line_with_both_digests(tmp_path):
  path = str(tmp_path / weights.WHEEL_NAME)
  open(path, 'wb').write(b'not a wheel')
  with pytest.raises(ValueError) as e:
    weights.check_wheel(path)
  message = one_line(e)
  assert path in message and weights.WHEEL_SHA256 in message and weights.sha256_of(path) in message
  with pytest.raises(ValueError):
    weights.find_wheel(str(tmp_path), download=False)
  with pytest.raises(FileNotFoundError) as e:
    weights.find_wheel(str(tmp_path / 'empty'), download=False)
  assert 'pip download --no-deps musicnn==0.1.0' in one_line(e)


def fake_wheel(tmp_path) -> str:
  """A zip laid out like the musicnn wheel: MSD_musicnn's bundle with Adam slots, and the licence."""
  src = tmp_path / 'src'
  src.mkdir()
  model = tensors()
  model.update({'conv2d/kernel/Adam': np.ones(3, np.float32), 'conv2d/kernel/Adam_1': np.ones(3, np.float32),
                'beta1_power': np.array(0.9, np.float32), 'beta2_power': np.array(0.999, np.float32)})
  write_bundle(str(src / 'x'), model)
  path = str(tmp_path / 'wheels' / weights.WHEEL_NAME)
  os.makedirs(os.path.dirname(path))
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(src / 'x.index', 'musicnn/MSD_musicnn/.index')
    z.write(src / 'x.data-00000-of-00001', 'musicnn/MSD_musicnn/.data-00000-of-00001')
    z.writestr('musicnn/MSD_musicnn/checkpoint', 'model_checkpoint_path: "/home/someone/elsewhere/"\n')
    z.writestr(weights.LICENSE_MEMBER, 'ISC licence text\n')
  return path


def test_load_from_a_wheel_then_from_the_npz_cache(tmp_path, monkeypatch):
  wheel = fake_wheel(tmp_path)
  monkeypatch.setattr(weights, 'WHEEL_SHA256', weights.sha256_of(wheel))
  directory = os.path.dirname(wheel)
  got = weights.load('MSD_musicnn', directory, download=False)
  want = tensors()
  assert sorted(got) == sorted(want)                         # optimizer slots skipped
  for name in want:
    np.testing.assert_array_equal(got[name], want[name])
  assert open(os.path.join(directory, weights.LICENSE_NAME)).read() == 'ISC licence text\n'
  assert sorted(os.listdir(directory)) == sorted([weights.WHEEL_NAME, 'MSD_musicnn.npz', weights.LICENSE_NAME])
  assert len(weights.load('MSD_musicnn', directory, download=False, optimizer=True)) == len(want) + 4

  monkeypatch.setattr(weights, 'read_wheel', lambda *a, **k: pytest.fail('the cache was not used'))
  cached = weights.load('MSD_musicnn', directory, download=False)
  assert sorted(cached) == sorted(want)
  for name in want:
    np.testing.assert_array_equal(cached[name], want[name])
  with pytest.raises(ValueError) as e:
    weights.load('MSD_nope', directory)
  assert 'MSD_musicnn' in one_line(e)


def real_wheel() -> str | None:
  path = os.environ.get('GTZAN_JAX_MUSICNN_WHEEL') or os.path.join(weights.default_directory(), weights.WHEEL_NAME)
  return path if os.path.isfile(path) else None


@pytest.mark.skipif(real_wheel() is None, reason=(
    'the musicnn 0.1.0 wheel is not in the cache: run `python -m gtzan_jax.pretrained.weights` once, '
    'or set GTZAN_JAX_MUSICNN_WHEEL to its path'))
def test_real_msd_musicnn_wheel(tmp_path):
  wheel = real_wheel()
  weights.check_wheel(wheel)
  everything = weights.read_wheel(wheel, 'MSD_musicnn', optimizer=True)    # every crc32c checked
  assert len(everything) + 1 == 151                          # the .index's entries: the header and 150 tensors
  assert sum(weights.is_optimizer_slot(n) for n in everything) == 86
  got = weights.load('MSD_musicnn', str(tmp_path), wheel=wheel)
  assert len(got) == 64
  assert got['conv2d/kernel'].shape == (7, 38, 1, 204) and got['conv2d/kernel'].dtype == np.float32
  assert got['dense/kernel'].shape == (1506, 200) and got['dense_1/kernel'].shape == (200, 50)
  assert got['batch_normalization_9/moving_variance'].shape == (1506,)
  assert all(np.isfinite(v).all() for v in got.values())
  assert (got['batch_normalization_9/moving_variance'] > 0).all()
  assert 'Permission to use, copy, modify' in open(tmp_path / weights.LICENSE_NAME).read()
