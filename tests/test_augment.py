"""Tests for the audio augmentation (tfds_gtzan.augment) and the augmented gtzan_mel configs."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import fake_gtzan
import librosa
import ml_collections
import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds

from gtzan_jax import input_pipeline
from tfds_gtzan import audio
from tfds_gtzan import augment
from tfds_gtzan import data
from tfds_gtzan import synthetic
from tfds_gtzan.gtzan_mel import featurize
from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
from tfds_gtzan.gtzan_mel import sources

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SPLITS = ('train', 'validation', 'test')
SR = audio.SAMPLE_RATE
ALWAYS = augment.AugmentParams(noise_prob=1, pitch_prob=1)
COPIES = 2


@pytest.fixture(scope='module')
def y() -> np.ndarray:
  return fake_gtzan.clip(2, 3)[:, 0]  # 4.5 s mono at 22050 Hz.


def _params(**kwargs: float) -> augment.AugmentParams:
  return augment.AugmentParams(**kwargs)


# --- The augmentation itself. ---

@pytest.mark.parametrize('params', [
    _params(noise_prob=1, pitch_prob=0), _params(noise_prob=0, pitch_prob=1), ALWAYS,
    _params(pitch_prob=1, pitch_semitones=0, stretch_range=0.3)], ids=['noise', 'pitch', 'both',
                                                                        'stretch'])
def test_keeps_dtype_and_at_most_the_length(y, params):
  for copy in (1, 2):
    out = augment.augment_clip(y, seed=0, track='jazz.00003', copy=copy, params=params)
    choice = augment.draw(params, seed=0, track='jazz.00003', copy=copy)
    # Stretched faster, a copy is shorter than the clip (never padded); slower, it is cut.
    length = min(len(y), round(len(y) / choice.rate)) if choice.pitch else len(y)
    assert out.shape == (length,) and out.dtype == np.float32 and np.isfinite(out).all()
    assert not np.array_equal(out, y[:length])


@pytest.mark.parametrize('rate', [0.8, 1.25])
def test_stretch_is_cut_to_the_length_but_never_padded(y, rate):
  out = augment.pitch_shift_and_stretch(y, 0.0, rate)
  assert out.shape == (min(len(y), round(len(y) / rate)),)
  assert np.abs(out[-SR // 10:]).max() > 0  # Audio to the end: no zeros appended.


def test_a_faster_copy_of_a_28_s_clip_has_only_whole_segments_of_audio():
  """Stretched by 1.1, the 28 s the builder decodes become 25.5 s: 12 segments, none of padding."""
  y = synthetic.generate_clip(9, 0)[:audio.MAX_SEGMENTS * audio.SEGMENT_SAMPLES]
  out = augment.pitch_shift_and_stretch(y, 1.0, 1.1)
  assert len(out) == round(len(y) / 1.1)
  segments = audio.segment(out)
  assert len(segments) == 12
  for i, samples in enumerate(segments):  # Zero-padding would show as samples that are exactly 0.
    assert np.count_nonzero(samples == 0) < 10, i


def test_reproducible_by_seed_track_and_copy(y):
  def run(seed=0, track='jazz.00003', copy=1):
    return augment.augment_clip(y, seed=seed, track=track, copy=copy, params=ALWAYS)

  np.testing.assert_array_equal(run(), run())
  for other in (run(seed=1), run(copy=2), run(track='jazz.00004')):  # Another stretch: maybe another length.
    assert other.shape != run().shape or not np.allclose(other, run())


def test_track_hash_is_stable_across_processes():
  # A constant: Python's hash() of a str differs between processes.
  assert augment.track_hash('blues.00000') == 6373920803759452406
  assert augment.draw(augment.AugmentParams(), seed=0, track='blues.00000', copy=1) == augment.draw(
      augment.AugmentParams(), seed=0, track='blues.00000', copy=1)


def test_noise_only_has_the_expected_scale(y):
  level = 0.01
  params = _params(noise_prob=1, pitch_prob=0, noise_level=level)
  out = augment.augment_clip(y, seed=3, track='jazz.00003', copy=1, params=params)
  noise = out.astype(np.float64) - y
  expected_std = level * np.abs(y).max()
  assert abs(noise.std() / expected_std - 1) < 0.02  # 99225 samples: sampling error ~0.2 %.
  assert abs(noise.mean()) < 0.02 * expected_std
  # Gaussian: ~99.7 % of samples within 3 std.
  assert np.mean(np.abs(noise) < 3 * expected_std) > 0.99


def test_pitch_then_stretch_equals_librosa(y):
  params = _params(noise_prob=0, pitch_prob=1, pitch_semitones=3, stretch_range=0.2)
  choice = augment.draw(params, seed=5, track='jazz.00003', copy=2)
  assert choice.pitch and not choice.noise
  assert -3 <= choice.semitones <= 3 and 0.8 <= choice.rate <= 1.2
  expected = librosa.effects.time_stretch(librosa.effects.pitch_shift(y, sr=SR, n_steps=choice.semitones),
                                          rate=choice.rate)[:len(y)]  # Cut if longer; never padded.
  out = augment.augment_clip(y, seed=5, track='jazz.00003', copy=2, params=params)
  np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('rate', [0.5, 0.87, 1.0, 1.13, 2.0])
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_phase_vocoder_equals_librosas_bit_for_bit(y, rate, dtype):
  stereo = np.stack([y, y[::-1]]).astype(dtype)  # librosa's leading channel axes are kept too.
  stft = librosa.stft(stereo, n_fft=1024)
  expected = librosa.phase_vocoder(stft, rate=rate)
  out = augment.phase_vocoder(stft, rate=rate)
  assert out.dtype == expected.dtype and out.shape == expected.shape
  np.testing.assert_array_equal(out, expected)
  np.testing.assert_array_equal(augment.time_stretch(stereo[0], rate),
                                librosa.effects.time_stretch(stereo[0], rate=rate))


def test_each_augmentation_applies_with_its_probability(y):
  params = _params(noise_prob=0.3, pitch_prob=0.7, pitch_semitones=2, stretch_range=0.1)
  draws = [augment.draw(params, seed=0, track=f'rock.{i:05d}', copy=c)
           for i in range(100) for c in range(1, 5)]
  assert abs(np.mean([d.noise for d in draws]) - 0.3) < 0.07  # 400 draws: std ~0.023.
  assert abs(np.mean([d.pitch for d in draws]) - 0.7) < 0.07
  assert min(d.semitones for d in draws) >= -2 and max(d.semitones for d in draws) <= 2
  assert min(d.rate for d in draws) >= 0.9 and max(d.rate for d in draws) <= 1.1
  never = _params(noise_prob=0, pitch_prob=0)
  np.testing.assert_array_equal(augment.augment_clip(y, seed=0, track='t', copy=1, params=never), y)


def test_bad_parameters_are_refused():
  with pytest.raises(ValueError, match='noise_prob=1.5 is not in'):
    _params(noise_prob=1.5)
  with pytest.raises(ValueError, match='stretch_range=1.0'):
    _params(stretch_range=1)
  assert _params(pitch_semitones=2) == _params(pitch_semitones=2.0)


# --- Augmented configs. ---

def test_augmented_config_names_are_deterministic_and_registered(tmp_path):
  config = gtzan_mel_dataset_builder.augmented_config('tracks', copies=2)
  assert config is gtzan_mel_dataset_builder.augmented_config('gtzan_mel/tracks', copies=2,
                                                              noise_prob=0.5)
  assert config.name.startswith('tracks_aug2_') and len(config.name) == len('tracks_aug2_') + 8
  others = [gtzan_mel_dataset_builder.augmented_config(*args, **kwargs).name for args, kwargs in [
      (('paper',), {'copies': 2}), (('tracks',), {'copies': 3}),
      (('tracks',), {'copies': 2, 'seed': 1}), (('tracks',), {'copies': 2, 'noise_level': 0.01})]]
  assert len({config.name, *others}) == 5
  builder = tfds.builder(f'gtzan_mel/{config.name}', data_dir=tmp_path)
  assert builder.builder_config is config and builder.base_config_name == 'tracks'
  assert builder.info.metadata['augment'] == {'copies': 2, 'seed': 0, 'algorithm_version': 2,
                                              **augment.AugmentParams().to_dict(), 'splits': ['train']}
  assert 'Validation and test are those of gtzan_mel/tracks' in config.description
  with pytest.raises(ValueError, match='Unknown gtzan_mel config'):
    gtzan_mel_dataset_builder.augmented_config('nope', copies=1)
  with pytest.raises(ValueError, match='copies must be'):
    gtzan_mel_dataset_builder.augmented_config('tracks', copies=0)


def test_config_defaults_match_the_augmentation_defaults():
  from configs import paper  # pylint: disable=g-import-not-at-top
  if 'augment' not in paper.get_config():
    pytest.skip('configs/paper.py has no `augment` yet.')
  config = paper.get_config().augment
  assert config.audio_copies == 0
  for field, value in augment.AugmentParams().to_dict().items():
    assert config[field] == value, field


def _read_all(name: str, data_dir: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
  return {split: data.read_split(f'gtzan_mel/{name}', split, data_dir) for split in SPLITS}


@pytest.fixture(scope='module')
def fake_manual_dir(tmp_path_factory) -> pathlib.Path:
  return fake_gtzan.write_fake_gtzan(tmp_path_factory.mktemp('manual'))


@pytest.fixture(scope='module')
def builds(fake_manual_dir, tmp_path_factory):
  """The fake tree's `tracks` and its augmented variant (ALWAYS, COPIES), both read."""
  data_dir = tmp_path_factory.mktemp('data')
  config = gtzan_mel_dataset_builder.augmented_config('tracks', copies=COPIES, params=ALWAYS)
  names = {'plain': 'tracks', 'augmented': config.name}
  builders = {key: data.get_builder(f'gtzan_mel/{name}', data_dir, fake_manual_dir)
              for key, name in names.items()}
  return {'data_dir': data_dir, 'config': config, 'builders': builders,
          'splits': {key: _read_all(name, data_dir) for key, name in names.items()}}


def test_augmented_build_leaves_validation_and_test_alone(builds):
  plain, augmented = builds['splits']['plain'], builds['splits']['augmented']
  for split in ('validation', 'test'):
    assert set(augmented[split]) == set(plain[split]) and not augmented[split]['copy'].any()
    for key in plain[split]:
      np.testing.assert_array_equal(augmented[split][key], plain[split][key])
  train, plain_train = augmented['train'], plain['train']
  assert len(train['label']) == (COPIES + 1) * len(plain_train['label'])
  originals = train['copy'] == 0
  for key in plain_train:
    np.testing.assert_array_equal(train[key][originals], plain_train[key])
  assert set(train['track'][~originals]) == set(plain_train['track'])
  for copy in range(1, COPIES + 1):
    rows = train['copy'] == copy
    np.testing.assert_array_equal(train['segment'][rows], plain_train['segment'])
    np.testing.assert_array_equal(train['label'][rows], plain_train['label'])
    assert not np.array_equal(train['mel'][rows], plain_train['mel'])
  assert not np.array_equal(train['mel'][train['copy'] == 1], train['mel'][train['copy'] == 2])
  summary = builds['builders']['augmented'].info.metadata['summary']
  assert summary['segments'] == {'train': len(train['label']), 'validation': 8, 'test': 8}
  assert summary['augmented_segments'] == COPIES * len(plain_train['label'])


def test_stored_copy_is_the_augmented_clip_featurised(builds, fake_manual_dir):
  train = builds['splits']['augmented']['train']
  track, copy = 'blues.00002', 2
  assert track in set(train['track'])
  y, rate = sf.read(fake_manual_dir / 'genres' / 'blues' / f'{track}.wav', dtype='float32')
  assert rate == SR
  choice = augment.draw(ALWAYS, seed=0, track=track, copy=copy)
  shifted = librosa.effects.pitch_shift(y, sr=SR, n_steps=choice.semitones)
  expected_y = augment.add_noise(librosa.effects.time_stretch(shifted, rate=choice.rate)[:len(y)],
                                 ALWAYS.noise_level, np.random.default_rng(choice.noise_seed))
  rows = (train['track'] == track) & (train['copy'] == copy)
  assert train['segment'][rows].tolist() == [0, 1]
  for segment, stored in zip(train['segment'][rows], train['mel'][rows]):
    samples = expected_y[segment * audio.SEGMENT_SAMPLES:(segment + 1) * audio.SEGMENT_SAMPLES]
    expected = librosa.power_to_db(librosa.feature.melspectrogram(
        y=samples, sr=SR, n_fft=512, hop_length=256, n_mels=128), ref=1.0, top_db=80)
    np.testing.assert_allclose(stored.astype(np.float32), expected, rtol=2**-11, atol=2e-3)


def _train_config(**augment_overrides) -> ml_collections.ConfigDict:
  """The data keys of a trainer config (configs/paper.py), independent of its other keys."""
  augment_config = {'audio_copies': 0, **augment.AugmentParams().to_dict(), **augment_overrides}
  return ml_collections.ConfigDict({'dataset': 'gtzan_mel/tracks', 'data_dir': None,
                                    'manual_dir': None, 'augment': augment_config})


def test_load_datasets_reads_the_augmented_variant(builds, fake_manual_dir):
  config = _train_config(audio_copies=COPIES, noise_prob=1.0, pitch_prob=1.0)
  config.data_dir, config.manual_dir = str(builds['data_dir']), str(fake_manual_dir)
  assert input_pipeline.dataset_name(config) == f'gtzan_mel/{builds["config"].name}'
  datasets = input_pipeline.load_datasets(config)  # Prepared by the fixture: only read.
  builder = tfds.builder(input_pipeline.dataset_name(config), data_dir=config.data_dir)
  assert isinstance(builder, gtzan_mel_dataset_builder.Builder)  # The code, not files only.
  assert builder.builder_config is builds['config']
  for split in SPLITS:
    np.testing.assert_array_equal(datasets[split]['mel'],
                                  builds['splits']['augmented'][split]['mel'])


def test_dataset_name_without_augmentation():
  assert input_pipeline.dataset_name(_train_config()) == 'gtzan_mel/tracks'
  old = ml_collections.ConfigDict({'dataset': 'gtzan_mel/synthetic', 'data_dir': None})
  assert input_pipeline.dataset_name(old) == 'gtzan_mel/synthetic'  # No `augment` key at all.
  synthetic = _train_config(audio_copies=1)
  synthetic.dataset = 'gtzan_mel/synthetic'
  name = input_pipeline.dataset_name(synthetic)
  assert name.startswith('gtzan_mel/synthetic_aug1_')
  assert tfds.builder(name).base_config_name == 'synthetic'
  with pytest.raises(ValueError, match='config.augment: .*noise_prob=2.0'):
    input_pipeline.dataset_name(_train_config(audio_copies=1, noise_prob=2.0))


def test_paper_split_augments_only_training_segments(fake_manual_dir, tmp_path):
  config = gtzan_mel_dataset_builder.augmented_config('paper', copies=1, noise_prob=1.0,
                                                      pitch_prob=0.0)
  plain = data.get_builder('gtzan_mel/paper', tmp_path, fake_manual_dir)
  data.get_builder(f'gtzan_mel/{config.name}', tmp_path, fake_manual_dir)
  augmented = _read_all(config.name, tmp_path)
  for split in ('validation', 'test'):
    np.testing.assert_array_equal(augmented[split]['mel'],
                                  data.read_split('gtzan_mel/paper', split, tmp_path)['mel'])
  train = augmented['train']
  assert len(train['label']) == 2 * plain.info.metadata['summary']['segments']['train']
  keys = lambda rows: list(zip(train['track'][rows], train['segment'][rows]))
  assert keys(train['copy'] == 1) == keys(train['copy'] == 0)


def test_a_shorter_copy_gives_fewer_segments(tmp_path):
  """A copy stretched shorter than 28 s yields only its whole segments of audio; a slower one all 14."""
  track = 'rock.00011'
  rates = [augment.draw(ALWAYS, seed=0, track=track, copy=copy).rate for copy in (1, 2)]
  assert rates[0] > 1.08 > 1 > rates[1]  # Copy 1: 28 s / 1.098 = 25.5 s, 12 whole segments.
  path = tmp_path / f'{track}.wav'
  sf.write(path, synthetic.generate_clip(9, 11), SR, subtype='PCM_16')  # 30 s, as in GTZAN.
  clip = sources.AudioFileClip(track, 9, str(path), path.name)
  [copies] = featurize.featurize_augmented([clip], copies=2, seed=0, params=ALWAYS, workers=1)
  assert [(f.copy, len(f.mel)) for f in copies] == [(1, 12), (2, audio.MAX_SEGMENTS)]
  y = clip.waveform()
  for f in copies:
    stretched = augment.augment_clip(y, seed=0, track=track, copy=f.copy, params=ALWAYS)
    assert len(f.mel) == len(stretched) // audio.SEGMENT_SAMPLES and f.mel.dtype == audio.MEL_DTYPE
    # Within one float16 step: BLAS threads (one per worker there) may round the last bit apart.
    np.testing.assert_allclose(f.mel.astype(np.float32), audio.segment_features(stretched), atol=2**-4)


def test_paper_copies_skip_the_segments_a_shorter_copy_lacks(tmp_path, monkeypatch):
  """`paper` keeps a copy's segment i where the clip's segment i is in train, if the copy has one."""
  config = gtzan_mel_dataset_builder.augmented_config('paper', copies=1)
  builder = tfds.builder(f'gtzan_mel/{config.name}', data_dir=tmp_path)
  clips = [sources.SyntheticClip(synthetic.track_name(0, i), 0, i) for i in (0, 1)]
  mel = lambda n: np.arange(n, dtype=audio.MEL_DTYPE)[:, None, None] * np.ones(  # Segment i holds i.
      (1, audio.N_MELS, audio.FRAMES), audio.MEL_DTYPE)
  train = [(clips[0], i, mel(14)[i], 0) for i in (0, 5, 12, 13)] + [(clips[1], 13, mel(14)[13], 0)]
  lengths = {clips[0].track: 12, clips[1].track: 14}  # Copy 1 of clip 0 is 24-26 s long.
  monkeypatch.setattr(featurize, 'featurize_augmented', lambda clips, copies, seed, params, **kwargs: [
      [featurize.AugmentedFeatures(clip, 1, mel(lengths[clip.track]))] for clip in clips])
  examples = builder._augmented_examples(train)  # pylint: disable=protected-access
  assert [(clip.track, segment, copy) for clip, segment, _, copy in examples] == [
      (clips[0].track, 0, 1), (clips[0].track, 5, 1), (clips[1].track, 13, 1)]
  assert [float(m[0, 0]) for _, _, m, _ in examples] == [0, 5, 13]


def test_cli_builds_the_augmented_variant(builds, fake_manual_dir):
  name = builds['config'].name
  result = subprocess.run(
      [sys.executable, '-m', 'tfds_gtzan.build', '--config=tracks', f'--audio_copies={COPIES}',
       '--noise_prob=1', '--pitch_prob=1', f'--manual_dir={fake_manual_dir}',
       f'--data_dir={builds["data_dir"]}'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  version = gtzan_mel_dataset_builder.Builder.VERSION
  assert f'gtzan_mel/{name} {version}' in result.stdout  # Prepared by the fixture: reused.
  assert f'{COPIES} augmented copies of every training clip (seed 0)' in result.stdout
  assert f'of which augmented copies: {COPIES * 24}' in result.stdout


def test_replace_keeps_params_normalised():
  params = dataclasses.replace(augment.AugmentParams(), pitch_semitones=3)
  assert isinstance(params.pitch_semitones, float)


def test_crossval_makes_the_builders_copies(builds, fake_manual_dir, tmp_path):
  """crossval's per-fold audio copies of a track are the builder's copies of it, bit for bit."""
  from configs import paper  # pylint: disable=g-import-not-at-top
  from gtzan_jax import folds  # pylint: disable=g-import-not-at-top  (crossval's data)
  config = paper.get_config()
  config.dataset, config.data_dir, config.manual_dir = 'gtzan_mel/tracks', str(builds['data_dir']), str(fake_manual_dir)
  config.augment.update(audio_copies=COPIES, **ALWAYS.to_dict())
  pooled, class_names = folds.pooled_segments(config)  # built by the builder: every split's clips get copies
  assert class_names == list(sources.GENRES)
  all_splits = input_pipeline.dataset_name(config, augment_splits=input_pipeline.SPLITS)
  assert data.get_builder(all_splits, config.data_dir, prepare=False).is_prepared()  # kept for the next run
  train = builds['splits']['augmented']['train']
  assert set(np.unique(pooled['copy'])) == set(range(COPIES + 1))
  for track in np.unique(train['track']):
    for copy in range(1, COPIES + 1):
      built = train['mel'][(train['track'] == track) & (train['copy'] == copy)]
      ours = pooled['mel'][(pooled['track'] == track) & (pooled['copy'] == copy)]
      assert len(built) and np.array_equal(built, ours), (track, copy)
  validation_tracks = np.unique(builds['splits']['augmented']['validation']['track'])
  assert all(np.any((pooled['track'] == t) & (pooled['copy'] == COPIES)) for t in validation_tracks)
  again, _ = folds.pooled_segments(config)  # read back, not made again
  assert all(np.array_equal(again[k], pooled[k]) for k in pooled)
  config.augment.noise_level = 0.01  # other parameters: other copies, in a dataset of their own
  other, _ = folds.pooled_segments(config)
  assert input_pipeline.dataset_name(config, augment_splits=input_pipeline.SPLITS) != all_splits
  assert not np.array_equal(other['mel'][other['copy'] > 0], pooled['mel'][pooled['copy'] > 0])
