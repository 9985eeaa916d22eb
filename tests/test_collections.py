"""Your own music: the `folders`, `manifest` and `fma_*` configs, their splits, whole tracks and stale data."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import subprocess
import sys

import fake_collection
import fake_fma
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gtzan_jax import evaluate, folds, input_pipeline, predict
from tfds_gtzan import audio
from tfds_gtzan import data
from tfds_gtzan import feature_sets
from tfds_gtzan.gtzan_mel import catalog
from tfds_gtzan.gtzan_mel import featurize
from tfds_gtzan.gtzan_mel import splits
from tests.conftest import REPO

SPLITS = ('train', 'validation', 'test')


def _build(config: str, data_dir: pathlib.Path, manual_dir: pathlib.Path | None, **kwargs
           ) -> tfds.core.DatasetBuilder:
  return data.get_builder(f'gtzan_mel/{config}', str(data_dir), manual_dir and str(manual_dir), **kwargs)


def _read(config: str, data_dir: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
  return {split: data.read_split(f'gtzan_mel/{config}', split, str(data_dir)) for split in SPLITS}


def _split_of(datasets, key: str) -> dict[str, set[str]]:
  """{value of `key` (track or group): the splits it has segments in}."""
  where = collections.defaultdict(set)
  for split, d in datasets.items():
    for value in d[key]:
      where[str(value)].add(split)
  return where


@pytest.fixture(scope='module')
def collection(tmp_path_factory) -> pathlib.Path:
  return fake_collection.write_fake_collection(tmp_path_factory.mktemp('collection'))


@pytest.fixture(scope='module')
def manifest_build(collection, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('data')
  return {'builder': _build('manifest', data_dir, collection), 'splits': _read('manifest', data_dir),
          'data_dir': data_dir}


def test_folders_take_the_collections_own_labels(collection, tmp_path):
  builder = _build('folders', tmp_path, collection)
  assert builder.info.features['label'].names == list(fake_collection.LABELS)
  assert builder.info.metadata['class_names'] == list(fake_collection.LABELS)
  datasets = _read('folders', tmp_path)
  assert all(len(d['label']) for d in datasets.values())
  tracks = {t for d in datasets.values() for t in d['track']}
  assert tracks == {file.removesuffix('.flac') for file, _, _ in fake_collection.files()}  # path without extension
  for d in datasets.values():
    names = [fake_collection.LABELS[label] for label in d['label']]
    assert all(track.startswith(name + '/') for track, name in zip(d['track'], names))
    assert not any(d['group'])  # folders have no group column
  assert all(len(s) == 1 for s in _split_of(datasets, 'track').values())  # track-disjoint
  summary = builder.info.metadata['summary']
  assert list(summary['tracks']) == list(fake_collection.LABELS)
  assert {name: sum(c.values()) for name, c in summary['tracks'].items()} == {
      name: fake_collection.ARTISTS_PER_LABEL * fake_collection.TRACKS_PER_ARTIST for name in fake_collection.LABELS}
  source = builder.info.metadata['source']
  assert source['kind'] == 'folders' and source['num_files'] == len(fake_collection.files())
  assert source['manual_dir'] == str(collection.resolve())


def test_manifest_groups_never_sit_in_two_splits(manifest_build):
  datasets = manifest_build['splits']
  where = _split_of(datasets, 'group')
  assert len(where) == len(fake_collection.LABELS) * fake_collection.ARTISTS_PER_LABEL
  assert all(len(s) == 1 for s in where.values()), where
  assert {s for splits_of in where.values() for s in splits_of} == set(SPLITS)  # every split has an artist
  expected_group = {file.removesuffix('.flac'): group for file, _, group in fake_collection.files()}
  for d in datasets.values():
    assert all(expected_group[t] == g for t, g in zip(d['track'], d['group']))


def test_a_long_track_gives_segments_spread_over_all_of_it(manifest_build, collection):
  datasets = manifest_build['splits']
  track = fake_collection.LONG_TRACK.removesuffix('.flac')
  split = next(d for d in datasets.values() if track in d['track'])
  rows = split['track'] == track
  positions = feature_sets.spread(int(fake_collection.LONG_SECONDS // 2), 15)
  assert len(positions) == 15 and positions[-1] > 14  # past the first 28 s
  np.testing.assert_array_equal(split['segment'][rows], positions)
  y = audio.load_audio(collection / fake_collection.LONG_TRACK)
  expected = audio.segment_features(y, None)[positions]
  np.testing.assert_array_equal(split['mel'][rows], expected)
  short = split['track'] != track
  assert set(split['segment'][short]) <= {0, 1}  # 4.5 s: both whole segments
  metadata = manifest_build['builder'].info.metadata
  assert metadata['max_segments'] == 15 and 'spread' in metadata['placement']


def test_audio_copies_of_a_collection_copy_the_segments_it_keeps(collection, tmp_path):
  """A long track's copies are made from its 15 spread segments; validation and test stay the base's."""
  from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder  # pylint: disable=g-import-not-at-top
  manual_dir = tmp_path / 'manual'  # the long track's artist (artist0) in train, by the split column
  manual_dir.mkdir()
  for label in fake_collection.LABELS:
    os.symlink(collection / label, manual_dir / label)
  fake_collection.write_manifest(manual_dir, [['path', 'label', 'group', 'split']] + [
      [file, label, group, SPLITS[int(group[-1])]] for file, label, group in fake_collection.files()])
  config = gtzan_mel_dataset_builder.augmented_config('manifest', copies=1, noise_prob=1.0, pitch_prob=0.0)
  assert config.name.startswith('manifest_aug1_')
  _build('manifest', tmp_path / 'data', manual_dir)
  _build(config.name, tmp_path / 'data', manual_dir)
  built, base = _read(config.name, tmp_path / 'data'), _read('manifest', tmp_path / 'data')
  for split in ('validation', 'test'):
    assert all(np.array_equal(built[split][k], base[split][k]) for k in base[split])
  train = built['train']
  long_track = train['track'] == fake_collection.LONG_TRACK.removesuffix('.flac')
  original, copied = (train['segment'][long_track & (train['copy'] == copy)] for copy in (0, 1))
  assert len(original) == 15 and original[-1] > 14 and np.array_equal(copied, original)  # noise only: none lost
  copy_rows = long_track & (train['copy'] == 1)
  assert not np.array_equal(train['mel'][copy_rows], train['mel'][long_track & (train['copy'] == 0)])
  copies = train['copy'] == 1
  assert set(train['track'][copies]) == set(base['train']['track'])
  assert set(train['group'][copies]) == set(base['train']['group'])


@pytest.mark.parametrize('count, expected', [(0, []), (3, [0, 1, 2]), (16, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]),
                                             (120, [4, 12, 20, 28, 36, 44, 52, 60, 68, 76, 84, 92, 100, 108, 116])])
def test_spread_positions(count, expected):
  assert feature_sets.spread(count, 15).tolist() == expected


def test_the_manifests_split_column_is_kept(collection, tmp_path):
  rows = [['label', 'path', 'split', 'group']]  # any column order
  chosen = {}
  for i, (file, label, group) in enumerate(fake_collection.files()):
    chosen[file.removesuffix('.flac')] = ('train', 'validation', 'test')[int(group[-1])]  # by artist
    rows.append([label, file, ('training', 'valid', 'test')[int(group[-1])], group])
  manual_dir = tmp_path / 'manual'
  os.symlink(collection, manual_dir)
  fake_collection.write_manifest(collection, rows)
  try:
    _build('manifest', tmp_path / 'data', manual_dir)
  finally:
    fake_collection.write_manifest(collection, [['path', 'label', 'group']] + [list(f) for f in fake_collection.files()])
  datasets = _read('manifest', tmp_path / 'data')
  assert {t: next(iter(s)) for t, s in _split_of(datasets, 'track').items()} == chosen


def test_fma_small_builds_fmas_split_and_genres(tmp_path):
  """Split and genre_top counts as tracks.csv says, less what cannot be read (each named with its reason)."""
  expected = fake_fma.write_fake_fma(tmp_path / 'fma', sizes=('small',))['small']
  builder = _build('fma_small', tmp_path / 'data', tmp_path / 'fma')
  datasets = _read('fma_small', tmp_path / 'data')
  names = builder.info.features['label'].names
  tracks = {str(t): (split, names[label]) for split, d in datasets.items() for t, label in zip(d['track'], d['label'])}
  corrupt = fake_fma.tid(fake_fma.CORRUPT)
  listed = {fake_fma.tid(t[0]): (fake_fma.SPLITS[t[4]], t[5]) for t in fake_fma.TRACKS if t[3] == 'small'}
  assert sorted(listed) != sorted(expected['tracks'])  # the missing clip and the track without genre_top
  want = {t: listed[t] for t in expected['tracks'] if t != corrupt}
  assert tracks == want
  assert collections.Counter(s for s, _ in tracks.values()) + collections.Counter({listed[corrupt][0]: 1}) == (
      collections.Counter(expected['splits']))
  assert collections.Counter(g for _, g in tracks.values()) + collections.Counter({listed[corrupt][1]: 1}) == (
      collections.Counter(expected['genres']))
  assert names == sorted(expected['genres'])
  summary = builder.info.metadata['summary']
  skipped = {item['file']: item['reason'] for item in summary['clips_skipped']}
  assert set(skipped) == {f'fma_small/{corrupt[:3]}/{corrupt}.mp3', *expected['skipped']}
  assert summary['groups'] == {split: len({str(g) for g in d['group']}) for split, d in datasets.items()}
  assert all(len(s) == 1 for s in _split_of(datasets, 'group').values())  # FMA's split keeps artists whole


def test_stale_data_is_refused_both_ways_and_rebuilt_on_request(collection, tmp_path):
  """Built from a subset, asked for with the whole collection (and back): one line naming both; rebuild replaces."""
  subset = tmp_path / 'subset'
  for label in fake_collection.LABELS:
    (subset / label).mkdir(parents=True)
    for file in sorted((collection / label).rglob('*.flac'))[:3]:  # 3: one each for train, validation, test
      os.symlink(file, subset / label / f'{file.parent.name}_{file.name}')
  data_dir = tmp_path / 'data'
  small = _build('folders', data_dir, subset)
  assert small.info.metadata['source']['num_files'] == 12
  for asked, built, change in ((collection, subset, '24 files added, 12 removed'),
                               (subset, collection, '12 files added, 24 removed')):
    with pytest.raises(data.StaleDataError) as error:
      _build('folders', data_dir, asked)
    message = str(error.value)
    assert '\n' not in message and str(asked) in message and str(built.resolve()) in message, message
    assert change in message and '--config.rebuild_data=true' in message and '--rebuild' in message, message
    rebuilt = _build('folders', data_dir, asked, rebuild=True)
    assert rebuilt.info.metadata['source']['manual_dir'] == str(asked.resolve())
    assert _build('folders', data_dir, asked).info.metadata['source'] == rebuilt.info.metadata['source']
  # Without a manual_dir (evaluate), a prepared dataset is read as it is.
  assert _build('folders', data_dir, None).info.metadata['source']['num_files'] == 12
  # The trainer's path: the same one line, naming its flag.
  config = _tiny_config('gtzan_mel/folders', data_dir, collection)
  with pytest.raises(data.StaleDataError, match='rebuild_data'):
    input_pipeline.load_datasets(config)


def test_a_failed_rebuild_keeps_the_old_dataset(collection, tmp_path, monkeypatch):
  data_dir = tmp_path / 'data'
  old = _build('folders', data_dir, collection)
  subset = tmp_path / 'subset'
  for label in fake_collection.LABELS[:2]:
    os.symlink(collection / label, subset / label if subset.exists() else (subset.mkdir() or subset / label))

  def fail(*args, **kwargs):
    raise RuntimeError('disk full')

  monkeypatch.setattr(featurize, 'featurize', fail)
  with pytest.raises(RuntimeError, match='disk full'):
    _build('folders', data_dir, subset, rebuild=True)
  again = _build('folders', data_dir, None)
  assert again.info.metadata['source'] == old.info.metadata['source']
  assert len(data.read_split('gtzan_mel/folders', 'train', str(data_dir))['label'])
  assert not [p for p in (data_dir / 'gtzan_mel' / 'folders').iterdir() if p.name != old.info.version.__str__()]


def _tiny_config(dataset: str, data_dir: pathlib.Path, manual_dir: pathlib.Path):
  from configs import paper  # pylint: disable=g-import-not-at-top
  config = paper.get_config()
  config.dataset, config.data_dir, config.manual_dir = dataset, str(data_dir), str(manual_dir)
  config.vgg.widths, config.batch_size, config.num_epochs, config.log_every_steps = (4, 8), 8, 1, 5
  return config


# --- Bad input: each a one-line error or a named skip, and the rest builds.

def test_a_label_folder_without_a_readable_file_is_left_out_and_named(collection, tmp_path):
  manual_dir = tmp_path / 'manual'
  for label in fake_collection.LABELS:
    os.symlink(collection / label, manual_dir / label if manual_dir.exists() else (manual_dir.mkdir() or manual_dir / label))
  (manual_dir / 'polka').mkdir()
  (manual_dir / 'polka' / 'not_audio.wav').write_text('This is not audio.\n')
  builder = _build('folders', tmp_path / 'data', manual_dir)
  summary = builder.info.metadata['summary']
  assert builder.info.features['label'].names == list(fake_collection.LABELS)
  assert summary['labels_without_segments'] == ['polka']
  assert [item['file'] for item in summary['clips_skipped']] == ['polka/not_audio.wav']


def test_one_class_is_a_one_line_error(collection, tmp_path):
  (tmp_path / 'manual').mkdir()
  os.symlink(collection / 'fado', tmp_path / 'manual' / 'fado')
  with pytest.raises(catalog.CollectionError) as error:
    _build('folders', tmp_path / 'data', tmp_path / 'manual')
  assert '\n' not in str(error.value) and '1 class (fado' in str(error.value) and 'at least two' in str(error.value)
  assert not (tmp_path / 'data' / 'gtzan_mel' / 'folders').exists() or not any(
      p.name[0].isdigit() for p in (tmp_path / 'data' / 'gtzan_mel' / 'folders').iterdir())


def test_bad_manifest_rows_are_skipped_with_their_reason(collection, tmp_path):
  rows = [['path', 'label', 'group']] + [list(f) for f in fake_collection.files()]
  rows += [['fado/nowhere.flac', 'fado', 'x'],  # missing file
           ['fado/fado-artist1/track1.flac', 'fado', 'fado-artist1'],  # repeats a path
           ['drill/drill-artist0/track0.flac', '', 'x'],  # empty label (and a repeat: the repeat is named first)
           ['/etc/passwd', 'drill', 'x'], ['../outside.flac', 'drill', 'x'], ['', 'drill', 'x']]
  root = tmp_path / 'manual'
  root.mkdir()
  for label in fake_collection.LABELS:
    os.symlink(collection / label, root / label)
  fake_collection.write_manifest(root, rows)
  listing = catalog.manifest(root)
  assert len(listing.entries) == len(fake_collection.files())
  reasons = {(item['file'], item['reason'].split(': ', 1)[-1]) for item in listing.skipped}
  n = len(fake_collection.files()) + 1  # the header is line 1
  line = {file: i + 2 for i, (file, _, _) in enumerate(fake_collection.files())}
  assert reasons == {
      ('fado/nowhere.flac', 'no such file'),
      ('fado/fado-artist1/track1.flac',
       f'manifest.csv line {n + 2} repeats the path of line {line["fado/fado-artist1/track1.flac"]}'),
      ('drill/drill-artist0/track0.flac',
       f'manifest.csv line {n + 3} repeats the path of line {line["drill/drill-artist0/track0.flac"]}'),
      ('/etc/passwd', 'absolute path (paths are relative to manual_dir)'),
      ('../outside.flac', 'path leaves manual_dir'),
      (f'manifest.csv line {n + 6}', 'empty path')}, reasons
  fake_collection.write_manifest(root, [['path', 'label'], ['fado/fado-artist0/track0.flac', '']])
  assert catalog.manifest(root).skipped[0]['reason'].endswith('empty label')


@pytest.mark.parametrize('rows, problem', [
    ([['path', 'label', 'group', 'split'], ['a.flac', 'x', 'artist', 'train'], ['b.flac', 'y', 'artist', 'test']],
     "group 'artist' is in the train and test splits"),
    ([['path', 'label', 'split'], ['a.flac', 'x', 'holdout']], "split 'holdout' is not one of train, validation, test"),
    ([['file', 'genre'], ['a.flac', 'x']], 'lacks the column(s) path, label'),
    ([], 'is empty'),
])
def test_a_manifest_no_split_could_honour_is_a_one_line_error(tmp_path, rows, problem):
  for name in ('a.flac', 'b.flac'):
    (tmp_path / name).write_bytes(b'x')
  fake_collection.write_manifest(tmp_path, rows)
  with pytest.raises(catalog.CollectionError) as error:
    catalog.manifest(tmp_path)
  assert problem in str(error.value) and str(tmp_path / 'manifest.csv') in str(error.value)
  assert '\n' not in str(error.value)


def test_missing_manifest_and_manual_dir_are_one_line_errors(tmp_path):
  for call, problem in ((lambda: catalog.manifest(tmp_path), 'manifest.csv does not exist'),
                        (lambda: catalog.folders(tmp_path / 'nowhere'), 'does not exist'),
                        (lambda: catalog.folders(None), 'no manual_dir given')):
    with pytest.raises(catalog.CollectionError, match=problem) as error:
      call()
    assert '\n' not in str(error.value)


def test_non_utf8_names_and_hidden_files_are_skipped_and_named(collection, tmp_path):
  root = tmp_path / 'manual'
  for label in fake_collection.LABELS:
    os.symlink(collection / label, root / label if root.exists() else (root.mkdir() or root / label))
  (root / 'extra').mkdir()
  bad = os.path.join(os.fsencode(root / 'extra'), b'caf\xe9.flac')
  os.symlink(collection / fake_collection.files()[1][0], bad)
  (root / 'extra' / '._track0.flac').write_bytes(b'\x00\x05\x16\x07')  # a macOS resource fork
  (root / 'loose.flac').write_bytes(b'x')
  listing = catalog.folders(root)
  assert {(item['file'], item['reason']) for item in listing.skipped} == {
      ('extra/caf\\xe9.flac', 'file name is not valid UTF-8'), ('loose.flac', 'not in a label folder')}
  assert listing.notes['hidden_files'] == 1
  assert listing.class_names == list(fake_collection.LABELS)  # 'extra' kept no file


def test_duplicate_track_ids_keep_the_first_file(tmp_path):
  (tmp_path / 'a').mkdir()
  (tmp_path / 'b').mkdir()
  for name in ('a/x.flac', 'a/x.mp3', 'b/y.wav'):
    (tmp_path / name).write_bytes(b'x')
  listing = catalog.folders(tmp_path)
  assert [e.file for e in listing.entries] == ['a/x.flac', 'b/y.wav']
  assert listing.skipped == [{'file': 'a/x.mp3', 'reason': 'same track as a/x.flac'}]


# --- Splits and folds that keep groups whole.

def _items(seed: int = 0, labels: int = 4, groups_per_label: int = 9):
  rng = np.random.default_rng(seed)
  return [(f'{label}/{g}/{t}', label, f'artist{label}_{g}') for label in range(labels)
          for g in range(groups_per_label) for t in range(rng.integers(1, 7))]


def test_group_split_is_stratified_deterministic_and_group_disjoint():
  items = _items()
  assignment = splits.group_split(items, seed=0, fractions={'validation': 0.1, 'test': 0.1})
  assert assignment == splits.group_split(items[::-1], seed=0, fractions={'validation': 0.1, 'test': 0.1})
  assert assignment != splits.group_split(items, seed=1, fractions={'validation': 0.1, 'test': 0.1})
  group_splits = collections.defaultdict(set)
  for item, _, group in items:
    group_splits[group].add(assignment[item])
  assert all(len(s) == 1 for s in group_splits.values())
  for label in range(4):  # every label in every split, near its share
    counts = collections.Counter(assignment[i] for i, l, _ in items if l == label)
    total = sum(counts.values())
    assert set(counts) == set(SPLITS) and counts['train'] >= 0.65 * total, counts


def test_group_split_gives_every_split_a_group_and_keeps_every_label_in_train():
  three = [('a', 0, 'x'), ('b', 0, 'x'), ('c', 0, 'y'), ('d', 0, 'w'), ('e', 1, 'z')]  # label 0: three artists
  assignment = splits.group_split(three, seed=0, fractions={'validation': 0.1, 'test': 0.1})
  assert sorted(assignment[i] for i in 'bcd') == ['test', 'train', 'validation'] and assignment['e'] == 'train'
  two = [('a', 0, 'x'), ('b', 0, 'x'), ('c', 0, 'y'), ('d', 1, 'z'), ('e', 1, 'w')]  # two artists a label
  assignment = splits.group_split(two, seed=0, fractions={'validation': 0.1, 'test': 0.1})
  assert set(assignment.values()) == set(SPLITS)
  assert {label for item, label, _ in two if assignment[item] == 'train'} == {0, 1}


def test_crossval_folds_keep_groups_whole():
  items = _items(labels=3, groups_per_label=6)
  tracks = np.array([i for i, _, _ in items])
  labels = np.array([l for _, l, _ in items])
  groups = np.array([g for _, _, g in items])
  fold_of = folds.assign_folds(tracks, labels, 5, seed=0, groups=groups)
  assert set(fold_of.values()) == set(range(5))
  fold_groups = collections.defaultdict(set)
  for t, g in zip(tracks, groups):
    fold_groups[g].add(fold_of[t])
  assert all(len(f) == 1 for f in fold_groups.values())
  data = {'mel': np.zeros((len(tracks), 1, 1), np.float16), 'label': labels, 'track': tracks, 'group': groups,
          'copy': np.zeros(len(tracks), np.int32)}
  for fold in range(5):
    parts = folds.fold_splits(data, fold_of, fold, validation_fraction=0.2)
    train, validation = set(parts['train']['group']), set(parts['validation']['group'])
    assert validation and not train & validation and not (train | validation) & set(parts['test']['group'])
  with pytest.raises(ValueError, match='fewer groups'):
    folds.assign_folds(tracks[:3], labels[:3], 5, groups=np.array(['a', 'a', 'b']))


# --- The whole path: train through gtzan_jax.main, evaluate and predict with the collection's names.

@pytest.mark.slow
def test_a_made_up_collection_trains_evaluates_and_predicts_with_its_names(collection, manifest_build, tmp_path):
  workdir, data_dir = tmp_path / 'run', manifest_build['data_dir']
  env = dict(os.environ, PYTHONPATH=REPO)
  result = subprocess.run(
      [sys.executable, '-m', 'gtzan_jax.main', '--config=configs/synthetic.py', f'--workdir={workdir}',
       '--config.dataset=gtzan_mel/manifest', f'--config.manual_dir={collection}', f'--config.data_dir={data_dir}',
       '--config.num_epochs=2', '--config.batch_size=8', "--config.vgg.widths=(4, 8)", '--config.log_every_steps=5'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((workdir / 'results.json').read_text())
  assert results['test']['num_tracks'] == len(set(manifest_build['splits']['test']['track']))
  report = evaluate.evaluate_workdir(str(workdir), 'validation')
  assert list(report['track']['per_class']) == list(fake_collection.LABELS)
  assert 'drill' in (workdir / 'report_validation.md').read_text()
  tags = tmp_path / 'tags.csv'
  files = [str(collection / fake_collection.LONG_TRACK), str(collection / 'gqom')]
  assert predict.run(str(workdir), files, output=str(tags), top_k=2, pool='thread', progress=False) == 0
  rows = tags.read_text().splitlines()
  assert rows[0].startswith('path,') and len(rows) == 1 + 1 + fake_collection.ARTISTS_PER_LABEL * 2
  labels = {line.split(',')[rows[0].split(',').index('label')] for line in rows[1:]}
  assert labels <= set(fake_collection.LABELS) and labels
  # predict takes a whole-track checkpoint's segments as its build took them: spread over the whole file.
  trained = evaluate.load_trained(str(workdir))
  prediction = predict.predict_file(trained, str(collection / fake_collection.LONG_TRACK))
  track = fake_collection.LONG_TRACK.removesuffix('.flac')
  split = next(d for d in manifest_build['splits'].values() if track in d['track'])
  stored = split['mel'][split['track'] == track]
  assert prediction.positions == tuple(split['segment'][split['track'] == track]) and len(stored) == 15
  np.testing.assert_allclose(prediction.segment_probabilities, np.exp(trained.log_probs(stored)), rtol=1e-5)
  assert predict.predict_file(trained, str(collection / fake_collection.LONG_TRACK), max_segments=3).positions is None
