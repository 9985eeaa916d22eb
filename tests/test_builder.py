"""Tests for the gtzan_mel TFDS builder and its CLI, on a fake GTZAN tree and the mini GTZAN."""

from __future__ import annotations

import collections
import json
import pathlib
import subprocess
import sys

import fake_gtzan
import librosa
import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds

from tfds_gtzan import audio
from tfds_gtzan import data
from tfds_gtzan import feature_sets
from tfds_gtzan import synthetic
from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder
from tfds_gtzan.gtzan_mel import sources
from tfds_gtzan.gtzan_mel import splits

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
MINI_GTZAN = REPO_ROOT.parent / 'shared' / 'gtzan_mini'
SPLITS = ('train', 'validation', 'test')


def _build(config: str, data_dir: pathlib.Path, manual_dir: pathlib.Path | None = None
           ) -> tfds.core.DatasetBuilder:
  builder = tfds.builder(f'gtzan_mel/{config}', data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def _read_all(config: str, data_dir: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
  return {split: data.read_split(f'gtzan_mel/{config}', split, data_dir) for split in SPLITS}


def _tracks(split_data: dict[str, np.ndarray]) -> set[str]:
  return set(split_data['track'].tolist())


def _assert_track_disjoint(datasets: dict[str, dict[str, np.ndarray]]) -> None:
  for a, b in [('train', 'validation'), ('train', 'test'), ('validation', 'test')]:
    assert not _tracks(datasets[a]) & _tracks(datasets[b]), (a, b)


@pytest.fixture(scope='module')
def fake_manual_dir(tmp_path_factory) -> pathlib.Path:
  return fake_gtzan.write_fake_gtzan(tmp_path_factory.mktemp('manual'))


@pytest.fixture(scope='module')
def fake_splits(fake_manual_dir, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
  """The fake tree's `tracks` splits, as read_split gives them."""
  data_dir = tmp_path_factory.mktemp('data')
  _build('tracks', data_dir, fake_manual_dir)
  return _read_all('tracks', data_dir)


def test_builder_defaults(tmp_path):
  builder = tfds.builder('gtzan_mel', data_dir=tmp_path)
  assert builder.builder_config.name == 'synthetic'
  assert builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
  assert builder.info.features['label'].names == list(sources.GENRES)
  assert builder.info.features['mel'].shape == (128, 173)
  assert builder.info.features['mel'].np_dtype == np.float16
  assert dict(builder.info.metadata) == {'feature_set': 'mel', **audio.FEATURE_PARAMS}
  assert tuple(synthetic.GENRES) == sources.GENRES
  assert {c.name for c in builder.BUILDER_CONFIGS} == {'synthetic', 'fault_filtered', 'tracks', 'paper',
                                                       'folders', 'manifest', 'fma_small', 'fma_medium',
                                                       'fma_large'}
  paper = tfds.builder('gtzan_mel/paper', data_dir=tmp_path).builder_config.description
  assert 'several' in paper and 'inflates test accuracy' in paper


@pytest.mark.parametrize('nested', [True, False], ids=['genres_layout', 'flat_layout'])
def test_fake_tree_builds_tracks_with_skip_report(tmp_path, nested):
  manual_dir = fake_gtzan.write_fake_gtzan(tmp_path / 'manual', nested=nested)
  builder = _build('tracks', tmp_path / 'data', manual_dir)
  prefix = 'genres/' if nested else ''
  per_genre = {'train': 3, 'validation': 1, 'test': 1}  # 5 clips: round-half-up 10 % each.
  num_genres = len(fake_gtzan.GENRES)
  expected_segments = {split: n * num_genres * fake_gtzan.SEGMENTS_PER_CLIP
                       for split, n in per_genre.items()}
  summary = builder.info.metadata['summary']
  assert summary['segments'] == expected_segments
  assert summary['clips_read'] == num_genres * fake_gtzan.CLIPS_PER_GENRE + 1  # + the 1 s clip.
  assert [item['file'] for item in summary['clips_skipped']] == [prefix + fake_gtzan.CORRUPT_FILE]
  assert 'not a RIFF/WAV file' in summary['clips_skipped'][0]['reason']
  assert summary['too_short'] == [{'file': prefix + fake_gtzan.SHORT_FILE, 'seconds': 1.0}]
  assert summary['unknown_genre_files'] == 1
  assert {split: info.num_examples for split, info in builder.info.splits.items()} == (
      expected_segments)
  # The summary persists with the dataset.
  reloaded = tfds.builder('gtzan_mel/tracks', data_dir=tmp_path / 'data')
  assert reloaded.info.metadata['summary'] == summary


@pytest.fixture(scope='module')
def musicnn_build(fake_manual_dir, tmp_path_factory):
  """The fake tree's `tracks_musicnn`: its builder and splits."""
  data_dir = tmp_path_factory.mktemp('data_musicnn')
  builder = _build('tracks_musicnn', data_dir, fake_manual_dir)
  return {'builder': builder, 'data_dir': data_dir, 'splits': _read_all('tracks_musicnn', data_dir)}


def test_musicnn_config_stores_96_by_187_patches(musicnn_build):
  builder = musicnn_build['builder']
  assert builder.builder_config.name == 'tracks_musicnn' and builder.base_config_name == 'tracks'
  assert builder.info.features['mel'].shape == (96, 187)
  assert builder.info.features['mel'].np_dtype == np.float16
  assert builder.info.version == gtzan_mel_dataset_builder.Builder.VERSION
  metadata = dict(builder.info.metadata)
  assert metadata | {'summary': None, 'source': None} == {
      'feature_set': 'musicnn', **feature_sets.get('musicnn').params, 'summary': None, 'source': None,
      'class_names': list(sources.GENRES)}
  for split_data in musicnn_build['splits'].values():
    assert split_data['mel'].shape[1:] == (96, 187) and split_data['mel'].dtype == np.float16
    assert np.isfinite(split_data['mel']).all() and split_data['mel'].max() < 6.6
    assert set(split_data['segment'].tolist()) == {0}  # 4.5 s: one 3 s patch per clip
  # Built-in, like the mel configs: no registration needed in another process.
  assert gtzan_mel_dataset_builder.feature_config('gtzan_mel/tracks', 'musicnn') is builder.builder_config
  assert gtzan_mel_dataset_builder.feature_config('tracks') is tfds.builder(
      'gtzan_mel/tracks', data_dir=musicnn_build['data_dir']).builder_config


def test_musicnn_config_has_the_mel_configs_tracks_per_split(musicnn_build, fake_splits):
  for split in SPLITS:
    assert _tracks(musicnn_build['splits'][split]) == _tracks(fake_splits[split]), split
  _assert_track_disjoint(musicnn_build['splits'])


def test_musicnn_config_skips_and_reports_as_mel_does(musicnn_build):
  summary = musicnn_build['builder'].info.metadata['summary']
  clips = {'train': 3, 'validation': 1, 'test': 1}  # per genre, one patch each
  assert summary['segments'] == {split: n * len(fake_gtzan.GENRES) for split, n in clips.items()}
  assert summary['clips_read'] == len(fake_gtzan.GENRES) * fake_gtzan.CLIPS_PER_GENRE + 1
  assert [item['file'] for item in summary['clips_skipped']] == ['genres/' + fake_gtzan.CORRUPT_FILE]
  assert 'not a RIFF/WAV file' in summary['clips_skipped'][0]['reason']
  assert summary['too_short'] == [{'file': 'genres/' + fake_gtzan.SHORT_FILE, 'seconds': 1.0}]
  assert summary['unknown_genre_files'] == 1


def test_stored_musicnn_patches_equal_pretrained_features(musicnn_build, fake_manual_dir):
  """What the build stores is `pretrained.features.log_mel_patches` of the 16 kHz decode, transposed, float16."""
  from gtzan_jax.pretrained import features  # pylint: disable=g-import-not-at-top
  all_data = {key: np.concatenate([split[key] for split in musicnn_build['splits'].values()])
              for key in ('track', 'segment', 'mel')}
  for file in ('blues/blues.00001.wav', fake_gtzan.STEREO_FILE, fake_gtzan.AU_FILE):
    expected = features.log_mel_patches(features.load_16k(str(fake_manual_dir / 'genres' / file)))
    stored = all_data['mel'][all_data['track'] == pathlib.Path(file).stem]
    assert stored.shape == (1, 96, 187) and expected.shape == (1, 187, 96)
    np.testing.assert_array_equal(stored, expected.transpose(0, 2, 1).astype(np.float16))


def test_musicnn_augmented_copies(fake_manual_dir, musicnn_build, tmp_path):
  """tracks_musicnn_aug1_<hash>: validation and test of tracks_musicnn; copies augmented at 22050 Hz, then 16 kHz."""
  from tfds_gtzan import augment  # pylint: disable=g-import-not-at-top
  params = augment.AugmentParams(noise_prob=1.0, pitch_prob=1.0)
  config = gtzan_mel_dataset_builder.augmented_config('tracks', copies=1, params=params, features='musicnn')
  mel_config = gtzan_mel_dataset_builder.augmented_config('tracks', copies=1, params=params)
  assert config.name.startswith('tracks_musicnn_aug1_') and len(config.name) == len('tracks_musicnn_aug1_') + 8
  assert mel_config.name.startswith('tracks_aug1_') and mel_config.name[-8:] != config.name[-8:]
  assert 'tracks_musicnn' in config.description and '22050 Hz' in config.description
  builder = _build(config.name, tmp_path, fake_manual_dir)
  assert builder.info.features['mel'].shape == (96, 187)
  assert builder.info.metadata['feature_set'] == 'musicnn' and builder.info.metadata['augment']['copies'] == 1
  built = _read_all(config.name, tmp_path)
  plain = musicnn_build['splits']
  for split in ('validation', 'test'):
    for key in plain[split]:
      np.testing.assert_array_equal(built[split][key], plain[split][key])
  train = built['train']
  originals = train['copy'] == 0
  np.testing.assert_array_equal(train['mel'][originals], plain['train']['mel'])
  assert set(train['track'][~originals]) == set(plain['train']['track'])
  track = 'blues.00002'
  y = audio.load_audio(fake_manual_dir / 'genres' / 'blues' / f'{track}.wav', audio.SAMPLE_RATE)
  copy = augment.augment_clip(y, seed=0, track=track, copy=1, params=params)
  expected = feature_sets.get('musicnn').features(audio.resample(copy, audio.SAMPLE_RATE, 16000))
  stored = train['mel'][(train['track'] == track) & (train['copy'] == 1)]
  assert len(stored) == len(expected) == 1
  # Within one float16 step: BLAS (one thread per builder worker) may round the last bit apart.
  np.testing.assert_allclose(stored.astype(np.float32), expected.astype(np.float32), atol=2**-8)
  assert not np.array_equal(stored, train['mel'][(train['track'] == track) & originals])


def test_cli_builds_the_musicnn_variant(fake_manual_dir, musicnn_build):
  result = _run_cli('--config=tracks', '--features=musicnn', f'--manual_dir={fake_manual_dir}',
                    f'--data_dir={musicnn_build["data_dir"]}')
  assert result.returncode == 0, result.stderr
  version = gtzan_mel_dataset_builder.Builder.VERSION
  assert f'gtzan_mel/tracks_musicnn {version}' in result.stdout  # Prepared by the fixture: reused.
  assert 'segments written: 20 (train 12, validation 4, test 4)' in result.stdout
  assert f'clips shorter than 3 s (no segments): 1\n  genres/{fake_gtzan.SHORT_FILE}: 1.0 s' in result.stdout


def test_tracks_split_is_stratified_and_track_disjoint(fake_splits):
  _assert_track_disjoint(fake_splits)
  for split, clips_per_genre in [('train', 3), ('validation', 1), ('test', 1)]:
    split_data = fake_splits[split]
    clips = collections.Counter(split_data['label'][split_data['segment'] == 0].tolist())
    assert clips == {sources.GENRES.index(genre): clips_per_genre for genre in fake_gtzan.GENRES}


def test_examples_are_sorted_and_labelled(fake_splits):
  for split_data in fake_splits.values():
    keys = list(zip(split_data['track'].tolist(), split_data['segment'].tolist()))
    assert keys == sorted(keys)
    assert split_data['mel'].dtype == np.float16 and split_data['label'].dtype == np.int32
    genres = [track.split('.')[0] for track in split_data['track']]
    assert [sources.GENRES[label] for label in split_data['label']] == genres
    assert set(split_data['segment'].tolist()) == {0, 1}


def test_stored_mel_equals_librosa_within_float16(fake_splits, fake_manual_dir):
  all_data = {key: np.concatenate([split[key] for split in fake_splits.values()])
              for key in ('track', 'segment', 'mel')}
  for file in ('blues/blues.00001.wav', fake_gtzan.AU_FILE):
    track = pathlib.Path(file).stem
    y, rate = sf.read(fake_manual_dir / 'genres' / file, dtype='float32')
    assert rate == audio.SAMPLE_RATE
    for segment in range(fake_gtzan.SEGMENTS_PER_CLIP):
      stored = all_data['mel'][(all_data['track'] == track) & (all_data['segment'] == segment)]
      samples = y[segment * audio.SEGMENT_SAMPLES:(segment + 1) * audio.SEGMENT_SAMPLES]
      expected = librosa.power_to_db(
          librosa.feature.melspectrogram(y=samples, sr=22050, n_fft=512, hop_length=256,
                                         n_mels=128), ref=1.0, top_db=80)
      # float16 keeps 11 significant bits: rounding error <= |x| * 2**-11 (<= 0.05 dB
      # at -100 dB); 1e-3 dB covers float32 differences of the batched computation.
      np.testing.assert_allclose(stored[0].astype(np.float32), expected, rtol=2**-11, atol=1e-3)


def test_gtzan_built_from_a_subset_is_never_reused_for_the_whole_and_back(fake_manual_dir, tmp_path):
  """The trap of issue 17: `tracks` built from a few clips, then asked for with all of them (and back)."""
  subset = tmp_path / 'mini'
  for genre in fake_gtzan.GENRES:
    (subset / genre).mkdir(parents=True)
    for clip in sorted((fake_manual_dir / 'genres' / genre).glob(f'{genre}.0000[0-2].*')):
      (subset / genre / clip.name).symlink_to(clip)
  data_dir = tmp_path / 'data'
  small = data.get_builder('gtzan_mel/tracks', str(data_dir), str(subset))
  assert small.info.metadata['source']['kind'] == 'gtzan' and small.info.metadata['source']['num_files'] == 12
  for asked, built in ((fake_manual_dir, subset), (subset, fake_manual_dir)):
    with pytest.raises(data.StaleDataError) as error:
      data.get_builder('gtzan_mel/tracks', str(data_dir), str(asked))
    message = str(error.value)
    assert '\n' not in message and f'manual_dir {asked}' in message and str(built) in message, message
    rebuilt = data.get_builder('gtzan_mel/tracks', str(data_dir), str(asked), rebuild=True)
    assert rebuilt.info.metadata['source']['manual_dir'] == str(asked)
  # A dataset prepared before builds recorded their source cannot be checked: refused too.
  metadata = data_dir / 'gtzan_mel' / 'tracks' / str(rebuilt.info.version) / 'metadata.json'
  record = json.loads(metadata.read_text())
  metadata.write_text(json.dumps({k: v for k, v in record.items() if k != 'source'}))
  with pytest.raises(data.StaleDataError, match='prepared before builds recorded their source'):
    data.get_builder('gtzan_mel/tracks', str(data_dir), str(subset))
  assert data.get_builder('gtzan_mel/tracks', str(data_dir)).is_prepared()  # no manual_dir: read as it is


def test_fault_filtered_uses_the_shipped_lists(tmp_path):
  listed = splits.fault_filtered_tracks()
  genre, unlisted = next((genre, track) for genre in sources.GENRES for track in
                         (f'{genre}.{i:05d}' for i in range(100)) if track not in listed)
  chosen = {split: min(t for t, s in listed.items() if s == split and t.startswith(genre))
            for split in SPLITS}
  folder = tmp_path / 'manual' / genre
  folder.mkdir(parents=True)
  for index, track in enumerate([*chosen.values(), unlisted]):
    sf.write(folder / f'{track}.wav', fake_gtzan.clip(0, index), fake_gtzan.SAMPLE_RATE)
  builder = _build('fault_filtered', tmp_path / 'data', tmp_path / 'manual')
  datasets = _read_all('fault_filtered', tmp_path / 'data')
  for split, track in chosen.items():
    assert _tracks(datasets[split]) == {track}
  summary = builder.info.metadata['summary']
  assert summary['unlisted_clips'] == 1
  assert summary['listed_missing'] == len(listed) - 3 == 927


def test_paper_split_sizes_match_fractions(fake_manual_dir, tmp_path):
  builder = _build('paper', tmp_path, fake_manual_dir)
  segments = builder.info.metadata['summary']['segments']
  total = len(fake_gtzan.GENRES) * fake_gtzan.CLIPS_PER_GENRE * fake_gtzan.SEGMENTS_PER_CLIP
  assert sum(segments.values()) == total == 40
  for split in ('validation', 'test'):
    assert segments[split] == round(total * gtzan_mel_dataset_builder.PAPER_FRACTIONS[split]) == 6
  assert segments['train'] == 28


@pytest.mark.parametrize('files, problem', [
    (None, 'does not exist'),
    ([], 'is empty'),
    (['notes.txt', 'polka/polka.00000.wav'], 'has no GTZAN genre folder'),
])
def test_bad_manual_dir_gives_one_line_error(tmp_path, files, problem):
  manual_dir = tmp_path / 'manual'
  if files is not None:
    manual_dir.mkdir()
    for file in files:
      (manual_dir / file).parent.mkdir(exist_ok=True)
      (manual_dir / file).write_text('not audio')
  with pytest.raises(sources.ManualDirError) as error:
    _build('tracks', tmp_path / 'data', manual_dir)
  message = str(error.value)
  assert problem in message and str(manual_dir) in message and '\n' not in message
  assert 'genres/<genre>/<genre>.NNNNN.wav' in message
  assert not tfds.builder('gtzan_mel/tracks', data_dir=tmp_path / 'data').is_prepared()


def test_too_few_readable_clips_is_a_one_line_error(tmp_path):
  folder = tmp_path / 'manual' / 'blues'
  folder.mkdir(parents=True)
  for index in range(2):  # Both go to train: validation and test would be empty.
    sf.write(folder / f'blues.{index:05d}.wav', fake_gtzan.clip(0, index), fake_gtzan.SAMPLE_RATE)
  with pytest.raises(sources.ManualDirError, match='no examples for the validation and test split'):
    _build('tracks', tmp_path / 'data', tmp_path / 'manual')
  assert not tfds.builder('gtzan_mel/tracks', data_dir=tmp_path / 'data').is_prepared()


@pytest.mark.parametrize('n, expected', [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)),
                                         (4, (2, 1, 1)), (10, (8, 1, 1)), (15, (11, 2, 2)),
                                         (100, (80, 10, 10))])
def test_shuffled_split_sizes(n, expected):
  assignment = splits.shuffled_split(range(n), seed=0, fractions={'validation': .1, 'test': .1})
  counts = collections.Counter(assignment.values())
  assert tuple(counts[split] for split in SPLITS) == expected
  assert assignment == splits.shuffled_split(range(n)[::-1], seed=0,
                                             fractions={'validation': .1, 'test': .1})


def test_failed_build_leaves_nothing_prepared(fake_manual_dir, tmp_path, monkeypatch):
  generate = gtzan_mel_dataset_builder.Builder._generate_examples
  calls = []

  def fail_after_train(self, examples):
    calls.append(len(examples))
    if len(calls) > 1:  # Train is written; fail in the middle of validation.
      yield from generate(self, examples[:1])
      raise RuntimeError('disk on fire')
    yield from generate(self, examples)

  monkeypatch.setattr(gtzan_mel_dataset_builder.Builder, '_generate_examples', fail_after_train)
  with pytest.raises(RuntimeError, match='disk on fire'):
    _build('tracks', tmp_path, fake_manual_dir)
  assert len(calls) == 2
  assert not tfds.builder('gtzan_mel/tracks', data_dir=tmp_path).is_prepared()
  assert not list(tmp_path.glob('gtzan_mel/tracks/*'))  # No version dir, no incomplete.* dir.
  monkeypatch.undo()
  assert data.get_builder('gtzan_mel/tracks', tmp_path, fake_manual_dir).is_prepared()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'tfds_gtzan.build', *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=300, check=False)


def test_cli_bad_manual_dir_exits_2_with_one_line(tmp_path):
  result = _run_cli('--config=tracks', f'--manual_dir={tmp_path / "missing"}',
                    f'--data_dir={tmp_path / "data"}')
  assert result.returncode == 2
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and 'does not exist' in errors[0]
  assert 'Traceback' not in result.stderr


def test_cli_prints_summary(fake_manual_dir, tmp_path):
  result = _run_cli('--config=tracks', f'--manual_dir={fake_manual_dir}',
                    f'--data_dir={tmp_path}')
  assert result.returncode == 0, result.stderr
  assert 'clips read: 21' in result.stdout
  assert 'segments written: 40 (train 24, validation 8, test 8)' in result.stdout
  assert f'genres/{fake_gtzan.CORRUPT_FILE}: not a RIFF/WAV file' in result.stdout
  assert f'genres/{fake_gtzan.SHORT_FILE}: 1.0 s' in result.stdout


@pytest.mark.slow
def test_synthetic_builds_are_identical(synthetic_data_dir, tmp_path):
  data.get_builder('gtzan_mel/synthetic', tmp_path)  # A second build.
  first, second = (_read_all('synthetic', d) for d in (synthetic_data_dir, tmp_path))
  per_split = {split: count * len(sources.GENRES) * audio.MAX_SEGMENTS
               for split, count in synthetic.SPLIT_COUNTS.items()}
  for split in SPLITS:
    assert len(first[split]['label']) == per_split[split]
    for key in first[split]:
      np.testing.assert_array_equal(first[split][key], second[split][key])
  _assert_track_disjoint(first)


@pytest.mark.slow
def test_synthetic_musicnn_has_the_synthetic_tracks_per_split(synthetic_data_dir):
  """synthetic_musicnn, built into the session's synthetic data_dir: 10 patches per 30 s clip, the same tracks."""
  data.get_builder('gtzan_mel/synthetic_musicnn', synthetic_data_dir)
  mel, musicnn = (_read_all(config, synthetic_data_dir) for config in ('synthetic', 'synthetic_musicnn'))
  for split, count in synthetic.SPLIT_COUNTS.items():
    assert _tracks(musicnn[split]) == _tracks(mel[split])
    assert musicnn[split]['mel'].shape == (count * len(sources.GENRES) * 10, 96, 187)


def _mini_gtzan() -> pathlib.Path:
  if not MINI_GTZAN.is_dir():
    pytest.skip(f'The shared mini GTZAN folder is absent ({MINI_GTZAN}).')
  return MINI_GTZAN


@pytest.mark.slow
def test_mini_gtzan_tracks(tmp_path):
  builder = _build('tracks', tmp_path, _mini_gtzan())
  datasets = _read_all('tracks', tmp_path)
  assert sum(len(d['label']) for d in datasets.values()) == 1400
  assert builder.info.metadata['summary']['segments'] == {'train': 1120, 'validation': 140,
                                                          'test': 140}
  folder_label = {file.stem: sources.GENRES.index(file.parent.name)
                  for file in _mini_gtzan().glob('genres/*/*.wav')}
  for split_data in datasets.values():
    assert split_data['mel'].shape[1:] == (128, 173)
    assert np.isfinite(split_data['mel']).all()
    assert split_data['label'].tolist() == [folder_label[t] for t in split_data['track']]
  _assert_track_disjoint(datasets)


@pytest.mark.slow
def test_mini_gtzan_fault_filtered(tmp_path):
  builder = _build('fault_filtered', tmp_path, _mini_gtzan())
  assert builder.info.metadata['summary']['segments'] == {'train': 560, 'validation': 686,
                                                          'test': 56}
  _assert_track_disjoint(_read_all('fault_filtered', tmp_path))


@pytest.mark.slow
def test_mini_gtzan_tracks_musicnn(tmp_path):
  """Real 30 s GTZAN clips give 10 patches each, split as `tracks` splits them."""
  builder = _build('tracks_musicnn', tmp_path, _mini_gtzan())
  assert builder.info.metadata['summary']['segments'] == {'train': 800, 'validation': 100, 'test': 100}
  _build('tracks', tmp_path, _mini_gtzan())
  mel, musicnn = _read_all('tracks', tmp_path), _read_all('tracks_musicnn', tmp_path)
  for split in SPLITS:
    assert _tracks(musicnn[split]) == _tracks(mel[split])
    assert musicnn[split]['mel'].shape[1:] == (96, 187) and np.isfinite(musicnn[split]['mel']).all()
