"""tfds_gtzan.feature_sets ('mel', 'musicnn') and how the trainer's data side names and reads them."""

from __future__ import annotations

import fake_gtzan
import librosa
import ml_collections
import numpy as np
import pytest
import soundfile as sf

from gtzan_jax import folds
from gtzan_jax import input_pipeline
from gtzan_jax.pretrained import features
from tfds_gtzan import audio
from tfds_gtzan import augment
from tfds_gtzan import data
from tfds_gtzan import feature_sets
from tfds_gtzan import synthetic

MUSICNN = feature_sets.get('musicnn')


def _config(**overrides) -> ml_collections.ConfigDict:
  """The data keys of a trainer config."""
  return ml_collections.ConfigDict({
      'dataset': 'gtzan_mel/tracks', 'data_dir': None, 'manual_dir': None,
      'augment': {'audio_copies': 0, **augment.AugmentParams().to_dict()}, **overrides})


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
  return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)


def test_registry():
  mel = feature_sets.get('mel')
  assert feature_sets.get() is feature_sets.get(None) is mel and feature_sets.names() == ('mel', 'musicnn')
  assert dict(mel.params) == audio.FEATURE_PARAMS  # The mel metadata of builds before feature sets.
  assert (mel.shape, mel.sample_rate, mel.max_segments, mel.segment_samples) == (
      (audio.N_MELS, audio.FRAMES), audio.SAMPLE_RATE, audio.MAX_SEGMENTS, audio.SEGMENT_SAMPLES)
  assert mel.decode_seconds() == audio.MAX_SEGMENTS * audio.SEGMENT_SECONDS == 28
  assert (MUSICNN.shape, MUSICNN.sample_rate, MUSICNN.max_segments) == ((96, 187), 16000, 10)
  assert MUSICNN.segment_duration == 2.992 and MUSICNN.segment_seconds == 3
  with pytest.raises(ValueError, match="Unknown feature set 'mfcc'; one of 'mel', 'musicnn'") as error:
    feature_sets.get('mfcc')
  assert '\n' not in str(error.value)


def test_mel_features_are_the_audio_modules():
  y = synthetic.generate_clip(3, 1)
  np.testing.assert_array_equal(feature_sets.get('mel').features(y), audio.segment_features(y))
  blocks = [y[i:i + 30000] for i in range(0, len(y), 30000)]
  np.testing.assert_array_equal(np.concatenate(list(feature_sets.get('mel').features_of_blocks(blocks, 3))),
                                audio.segment_features(y, 3))


def test_pretrained_features_are_musicnns_definition():
  """gtzan_jax.pretrained.features, now thin wrappers, still computes exactly its definition."""
  y = _noise(7.0)
  mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
  np.testing.assert_array_equal(features.log_mel(y), np.log10(10000 * mel.astype(np.float32) + 1))
  patches = features.log_mel_patches(y)
  assert patches.shape == (2, 187, 96) and patches.dtype == np.float32  # 1 + 112000 // 256 = 438 frames
  np.testing.assert_array_equal(patches.reshape(-1, 96), features.log_mel(y)[:374])
  assert (features.SAMPLE_RATE, features.N_FFT, features.HOP_LENGTH, features.N_MELS,
          features.PATCH_FRAMES) == (16000, 512, 256, 96, 187)


def test_musicnn_features_are_transposed_float16_patches():
  y = _noise(30.0)
  stored = MUSICNN.features(y)
  assert stored.shape == (10, 96, 187) and stored.dtype == np.float16  # a 30 s clip: 10
  np.testing.assert_array_equal(stored, features.log_mel_patches(y).transpose(0, 2, 1).astype(np.float16))
  assert len(MUSICNN.features(_noise(40.0))) == 10 and len(MUSICNN.features(_noise(40.0), None)) == 13
  assert MUSICNN.features(y, 3).shape == (3, 96, 187)
  assert MUSICNN.features(_noise(1.0)).shape == (0, 96, 187)
  # A patch needs 1 + len // 256 >= 187 frames: its last frame may reach into the end padding.
  for samples in (47615, 47616, 47872, 2 * 47872 - 257, 2 * 47872 - 256):
    assert MUSICNN.segments_in(samples) == len(features.log_mel_patches(_noise(samples / 16000))), samples


@pytest.mark.parametrize('seconds', [30.0, 47872 * 3 / 16000 - 0.01, 7.5])
def test_musicnn_features_of_blocks(seconds):
  y = _noise(seconds, seed=1)
  whole = MUSICNN.features(y, None)
  for block in (5000, 47872, 100000):
    blocks = [y[i:i + block] for i in range(0, len(y), block)]
    streamed = list(MUSICNN.features_of_blocks(blocks, None))  # patch by patch
    assert all(len(s) for s in streamed)
    got = np.concatenate(streamed) if streamed else np.zeros((0, 96, 187), np.float16)
    assert got.shape == whole.shape
    # Within a float16 step (2**-8 up to 8): BLAS sums the mel product of other sizes in another order.
    np.testing.assert_allclose(got.astype(np.float32), whole.astype(np.float32), atol=2**-8, rtol=0)
    # With a cap, what the builder computes for the decode it makes: bit for bit.
    limit = int(np.ceil(MUSICNN.decode_seconds(2) * 16000))
    capped = list(MUSICNN.features_of_blocks(blocks, 2))
    np.testing.assert_array_equal(np.concatenate(capped), MUSICNN.features(y[:limit], 2))
  assert not list(MUSICNN.features_of_blocks([_noise(2.0)], None))


def test_dataset_name_and_input_shape():
  assert input_pipeline.dataset_name(_config()) == 'gtzan_mel/tracks'  # mel names as before
  assert input_pipeline.dataset_name(_config(features='mel')) == 'gtzan_mel/tracks'
  old = ml_collections.ConfigDict({'dataset': 'gtzan_mel/synthetic', 'data_dir': None})
  assert input_pipeline.dataset_name(old) == 'gtzan_mel/synthetic'
  assert input_pipeline.input_shape(old) == (input_pipeline.N_MELS, input_pipeline.N_FRAMES) == (128, 173)
  for base in ('tracks', 'synthetic', 'fault_filtered', 'paper'):
    config = _config(dataset=f'gtzan_mel/{base}', features='musicnn')
    assert input_pipeline.dataset_name(config) == f'gtzan_mel/{base}_musicnn'
    assert input_pipeline.input_shape(config) == (96, 187)
  mel_aug = _config()
  mel_aug.augment.audio_copies = 2
  aug = _config(features='musicnn')
  aug.augment.audio_copies = 2
  mel_name, name = input_pipeline.dataset_name(mel_aug), input_pipeline.dataset_name(aug)
  assert mel_name.startswith('gtzan_mel/tracks_aug2_') and name.startswith('gtzan_mel/tracks_musicnn_aug2_')
  assert mel_name[-8:] != name[-8:]
  pooled = input_pipeline.dataset_name(aug, augment_splits=input_pipeline.SPLITS)
  assert pooled.startswith('gtzan_mel/tracks_musicnn_aug2all_') and pooled != name
  with pytest.raises(ValueError, match="Unknown config.features='mfcc'; one of 'mel', 'musicnn'.") as error:
    input_pipeline.dataset_name(_config(features='mfcc'))
  assert '\n' not in str(error.value)
  with pytest.raises(ValueError, match="Unknown config.features='mfcc'"):
    input_pipeline.input_shape(_config(features='mfcc'))
  with pytest.raises(ValueError, match="config.features='musicnn' needs a gtzan_mel/<config> dataset"):
    input_pipeline.dataset_name(_config(dataset='mnist', features='musicnn'))
  with pytest.raises(ValueError, match="Unknown gtzan_mel config 'tracks_aug2_x'"):
    input_pipeline.dataset_name(_config(dataset='gtzan_mel/tracks_aug2_x', features='musicnn'))


@pytest.fixture(scope='module')
def fake_tree(tmp_path_factory):
  manual_dir = fake_gtzan.write_fake_gtzan(tmp_path_factory.mktemp('manual'))
  return {'manual_dir': str(manual_dir), 'data_dir': str(tmp_path_factory.mktemp('data'))}


def test_load_datasets_records_the_feature_set_and_crossval_pools_it(fake_tree):
  mel = _config(**fake_tree)
  musicnn = _config(**fake_tree, features='musicnn')
  mel_splits, mel_source = input_pipeline.load_datasets_with_source(mel)
  splits, source = input_pipeline.load_datasets_with_source(musicnn)
  assert set(mel_source) == {'kind', 'name', 'version', 'class_names', 'source_digest'}  # no 'features'
  assert source == mel_source | {'name': 'gtzan_mel/tracks_musicnn', 'features': 'musicnn'}
  assert input_pipeline.data_source_changes(mel_source, source) == [
      "features None -> 'musicnn'", "name 'gtzan_mel/tracks' -> 'gtzan_mel/tracks_musicnn'"]
  for split in input_pipeline.SPLITS:
    assert splits[split]['mel'].shape[1:] == input_pipeline.input_shape(musicnn) == (96, 187)
    assert set(splits[split]['track']) == set(mel_splits[split]['track'])
  pooled, _ = folds.pooled_segments(musicnn)
  assert pooled['mel'].shape == (20, 96, 187)  # 20 clips of one 4.5 s patch
  assert sorted(pooled['track']) == sorted(np.concatenate([splits[s]['track'] for s in input_pipeline.SPLITS]))
  assert folds.pooled_segments(mel)[0]['mel'].shape == (40, 128, 173)
  record = dict(fold=0, folds=2, fold_seed=0, validation_fraction=0.1, arrays=None, class_names=['a', 'b'])
  assert 'features' not in folds.fold_source(mel, **record)
  assert folds.fold_source(musicnn, **record) == folds.fold_source(mel, **record) | {'features': 'musicnn'}


def test_a_clip_between_2_and_3_s_keeps_the_track_split(tmp_path):
  """A clip with a mel segment but no musicnn patch: in no musicnn split, and it moves no other track."""
  folder = tmp_path / 'manual' / 'blues'
  folder.mkdir(parents=True)
  for index in range(10):
    seconds = 2.5 if index == 3 else fake_gtzan.SECONDS
    sf.write(folder / f'blues.{index:05d}.wav', fake_gtzan.clip(0, index, seconds=seconds), 22050)
  mel = _config(data_dir=str(tmp_path / 'data'), manual_dir=str(tmp_path / 'manual'))
  musicnn = _config(data_dir=str(tmp_path / 'data'), manual_dir=str(tmp_path / 'manual'), features='musicnn')
  mel_splits, musicnn_splits = (input_pipeline.load_datasets(c) for c in (mel, musicnn))
  assert 'blues.00003' in set(mel_splits['train']['track'])  # (validation and test hold one clip)
  for split in input_pipeline.SPLITS:
    assert set(musicnn_splits[split]['track']) == set(mel_splits[split]['track']) - {'blues.00003'}
  summary = data.get_builder('gtzan_mel/tracks_musicnn', mel.data_dir).info.metadata['summary']
  assert summary['too_short'] == [{'file': 'blues/blues.00003.wav', 'seconds': 2.5}]
