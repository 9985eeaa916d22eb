"""Cross-validation: stratified track-disjoint folds, and the reports it writes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gtzan_jax import arrays_io, crossval, evaluate, folds, tables
from tests.conftest import REPO, SHARED_MINI

NAMES = [f'genre{i}' for i in range(10)]


def _tracked_data(tracks_per_genre=4, segments=3, seed=0):
  """Fake segments of 10 genres x `tracks_per_genre` tracks; the label is a band of extra energy."""
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(10), tracks_per_genre * segments).astype(np.int32)
  tracks = np.array([f'g{l}.{(i // segments) % tracks_per_genre:05d}' for i, l in enumerate(labels)])
  mel = rng.normal(-40.0, 10.0, size=(len(labels), 128, 173))
  for i, y in enumerate(labels):
    mel[i, 12 * y:12 * y + 12] += 20.0
  return {'mel': mel.astype(np.float16), 'label': labels, 'track': tracks}


def test_folds_are_stratified_balanced_and_track_disjoint():
  data = _tracked_data(tracks_per_genre=7)
  fold_of = folds.assign_folds(data['track'], data['label'], folds=5, seed=3)
  assert len(fold_of) == 70
  sizes = np.bincount(list(fold_of.values()), minlength=5)
  assert sizes.max() - sizes.min() <= 1
  for genre in range(10):  # each genre spread over the folds as evenly as possible
    per_fold = np.bincount([f for t, f in fold_of.items() if t.startswith(f'g{genre}.')], minlength=5)
    assert per_fold.max() - per_fold.min() <= 1
  assert folds.assign_folds(data['track'], data['label'], folds=5, seed=3) == fold_of
  tested = []
  for fold in range(5):
    splits = folds.fold_splits(data, fold_of, fold, validation_fraction=0.1)
    names = {s: set(splits[s]['track']) for s in splits}
    assert not (names['train'] & names['validation'] or names['train'] & names['test']
                or names['validation'] & names['test'])
    assert sum(len(splits[s]['label']) for s in splits) == len(data['label'])
    assert set(splits['validation']['label']) == set(range(10))  # one validation track per genre
    tested += names['test']
  assert sorted(tested) == sorted(fold_of)  # every track is tested exactly once


def _with_copies(data, copies):
  """`data` plus `copies` shifted copies of every segment (copy 1..K), as audio augmentation adds."""
  parts = [dict(data, copy=np.zeros(len(data['label']), np.int32))]
  for k in range(1, copies + 1):
    parts.append({'mel': (data['mel'] + k).astype(np.float16), 'label': data['label'], 'track': data['track'],
                  'copy': np.full(len(data['label']), k, np.int32)})
  return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def test_augmented_copies_are_trained_on_but_never_validated_or_tested():
  data = _with_copies(_tracked_data(tracks_per_genre=5), copies=2)
  originals = data['copy'] == 0
  fold_of = folds.assign_folds(data['track'][originals], data['label'][originals], folds=5)
  for fold in range(5):
    splits = folds.fold_splits(folds.select_copies(data, 1), fold_of, fold, validation_fraction=0.1)
    assert set(splits['train']['copy']) == {0, 1}  # copy 2 was not selected
    assert not splits['validation']['copy'].any() and not splits['test']['copy'].any()
    train_tracks = set(splits['train']['track'])
    assert set(splits['train']['track'][splits['train']['copy'] == 1]) == train_tracks
    assert not train_tracks & set(splits['test']['track'])
  assert len(folds.select_copies(data, 0)['label']) == originals.sum()
  with pytest.raises(ValueError, match='holds 2 augmented copies'):
    folds.select_copies(data, 3)


def test_arrays_round_trip_quantized(tmp_path):
  data = _with_copies(_tracked_data(tracks_per_genre=2), copies=1)
  arrays_io.save_pooled(str(tmp_path / 'exact.npz'), data, NAMES)
  exact = arrays_io.load_pooled(str(tmp_path / 'exact.npz'))
  assert all(np.array_equal(exact[k], data[k]) for k in data)
  arrays_io.save_pooled(str(tmp_path / 'q.npz'), data, NAMES, quantize=True)
  assert os.path.getsize(tmp_path / 'q.npz') < 0.6 * os.path.getsize(tmp_path / 'exact.npz')
  quantized = arrays_io.load_pooled(str(tmp_path / 'q.npz'))
  assert quantized['mel'].dtype == np.float16
  step = (data['mel'].astype(np.float32).max() - data['mel'].astype(np.float32).min()) / 255
  np.testing.assert_allclose(quantized['mel'].astype(np.float32), data['mel'].astype(np.float32),
                             atol=step / 2 + 0.06)  # half a quantization step, plus float16 rounding
  assert np.array_equal(quantized['track'], data['track']) and np.array_equal(quantized['copy'], data['copy'])


def test_too_few_tracks_for_the_folds_is_an_error():
  data = _tracked_data(tracks_per_genre=2)
  with pytest.raises(ValueError, match='fewer than --folds=5'):
    folds.assign_folds(data['track'], data['label'], folds=5)


def test_crossvalidate_writes_reports_and_resumes(tiny_config, tmp_path):
  data = _tracked_data(tracks_per_genre=3, segments=4)
  tiny_config.num_epochs = 1
  tiny_config.batch_size = 8
  result = crossval.crossvalidate(tiny_config, str(tmp_path), folds=3, data=data)
  assert len(result['per_fold']) == 3
  for name in ('crossval.json', 'crossval.md', 'crossval_confusion_segment.png', 'crossval_confusion_track.png'):
    assert os.path.getsize(tmp_path / name) > 0, name
  summary = json.loads((tmp_path / 'crossval.json').read_text())['summary']
  track = summary['last']['track']
  assert np.sum(track['confusion']) == 30  # every track tested once
  per_fold = [f['last']['track']['accuracy'] for f in result['per_fold']]  # 10 tracks per fold
  np.testing.assert_allclose(track['accuracy']['mean'], np.trace(track['confusion']) / 30)
  np.testing.assert_allclose(track['accuracy']['std'], np.std(per_fold))
  assert tables.percent_mean_std(track['accuracy']) in (tmp_path / 'crossval.md').read_text()
  again = crossval.crossvalidate(tiny_config, str(tmp_path), folds=3, data=data)  # folds read from fold.json
  assert again['summary'] == result['summary']
  os.remove(tmp_path / 'fold_0' / 'fold.json')  # a fold cut off after training: resumes, trains nothing
  resumed = crossval.crossvalidate(tiny_config, str(tmp_path), folds=3, data=data)
  assert resumed['per_fold'][0]['train_seconds_this_run'] < 1.0
  assert resumed['summary'] == result['summary']


def test_a_fold_made_by_another_config_is_not_reused(tiny_config, tmp_path):
  data = _tracked_data(tracks_per_genre=4, segments=2)
  tiny_config.num_epochs, tiny_config.batch_size = 1, 8
  crossval.crossvalidate(tiny_config, str(tmp_path), folds=2, data=data)
  tiny_config.log_every_steps = 1  # changes no step: the folds are reused
  crossval.crossvalidate(tiny_config, str(tmp_path), folds=2, data=data)
  tiny_config.learning_rate = 3e-3
  with pytest.raises(ValueError, match=r"fold_0/fold.json was made by another cross-validation "
                                       r"\(learning_rate 0.001 -> 0.003\)"):
    crossval.crossvalidate(tiny_config, str(tmp_path), folds=2, data=data)
  tiny_config.learning_rate = 1e-3
  with pytest.raises(ValueError, match=r"fold_seed 0 -> 1"):
    crossval.crossvalidate(tiny_config, str(tmp_path), folds=2, fold_seed=1, data=data)


@pytest.mark.parametrize('fraction', [0.0, 1.0, -0.1])
def test_validation_fraction_that_leaves_no_validation_or_training_is_refused(tiny_config, tmp_path, fraction):
  with pytest.raises(ValueError, match=r'--validation_fraction must be in \(0, 1\)'):
    crossval.crossvalidate(tiny_config, str(tmp_path), folds=2, validation_fraction=fraction,
                           data=_tracked_data(tracks_per_genre=2, segments=2))


def test_evaluate_on_a_fold_scores_that_folds_own_test_tracks(tiny_config, tmp_path):
  """The fold's checkpoint records its fold: evaluate rebuilds exactly its test split (no leaked tracks)."""
  data = _tracked_data(tracks_per_genre=3, segments=2)
  arrays = str(tmp_path / 'pooled.npz')
  arrays_io.save_pooled(arrays, data, NAMES)
  tiny_config.num_epochs, tiny_config.batch_size = 1, 8
  result = crossval.crossvalidate(tiny_config, str(tmp_path / 'cv'), folds=3, arrays=arrays)
  fold_dir = str(tmp_path / 'cv' / 'fold_1')
  scores = evaluate.evaluate_workdir(fold_dir, 'test')
  fold_of = folds.assign_folds(data['track'], data['label'], 3)
  assert scores['track']['count'] == sum(f == 1 for f in fold_of.values()) == 10
  assert scores['track'] == result['per_fold'][1]['last']['track']
  # Segments a script passed in are recorded as such: evaluate refuses rather than guess.
  source = folds.fold_source(tiny_config, fold=0, folds=3, fold_seed=0, validation_fraction=0.1,
                             arrays=None, class_names=NAMES, pooled_by_caller=True)
  with pytest.raises(ValueError, match='segments a script passed in'):
    folds.fold_data(tiny_config, source)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_MINI), reason='needs ../shared/gtzan_mini (absent here)')
def test_crossval_cli_on_real_clips(tmp_path):
  """The command line on the 100 real clips: 2 folds, 1 epoch of a tiny VGG (a smoke test, not accuracy)."""
  out = subprocess.run(
      [sys.executable, '-m', 'gtzan_jax.crossval', '--config=configs/synthetic.py', f'--workdir={tmp_path}/cv',
       '--config.dataset=gtzan_mel/tracks', f'--config.manual_dir={SHARED_MINI}',
       f'--config.data_dir={tmp_path}/data', '--config.num_epochs=1', '--config.vgg.widths=(4,8)',
       '--config.batch_size=64', '--folds=2'],
      cwd=REPO, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'track accuracy' in out.stdout
  result = json.loads((tmp_path / 'cv' / 'crossval.json').read_text())
  assert result['num_tracks'] == 100 and result['num_segments'] == 1400


def test_shipped_arms_file_names_existing_configs():
  sys.path.insert(0, os.path.join(REPO, 'scripts'))
  try:
    import crossval_arms  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  arms = crossval_arms.read_arms(os.path.join(REPO, 'scripts', 'cv_arms.txt'))
  names = [a['name'] for a in arms]
  assert len(names) == len(set(names)) and 'plain' in names
  for arm in arms:
    assert os.path.isfile(os.path.join(REPO, arm['config'])), arm
    assert all(o.startswith('--config.') and '=' in o for o in arm['overrides']), arm
