"""evaluate: track aggregation, per-genre metrics and the report files of a trained workdir."""

import json
import math

import jax
import numpy as np
import pytest
import soundfile as sf

from gtzan_jax import evaluate, report, train


def test_a_track_is_the_argmax_of_its_mean_segment_log_probs():
  # Track 'a': two segments lean to genre 0, one is sure of genre 1. A majority vote says 0;
  # the mean log-probability says 1 (log 0.01 costs genre 0 more than log 0.4 costs genre 1).
  probs = np.array([[0.6, 0.4], [0.2, 0.8], [0.6, 0.4], [0.01, 0.99], [0.7, 0.3]])
  tracks = np.array(['a', 'b', 'a', 'a', 'b'])
  labels = np.array([1, 0, 1, 1, 0])
  names, mean_log_probs, track_labels = report.aggregate_tracks(np.log(probs), labels, tracks)
  assert names.tolist() == ['a', 'b'] and track_labels.tolist() == [1, 0]
  np.testing.assert_allclose(mean_log_probs[0], np.log(probs[[0, 2, 3]]).mean(axis=0))
  np.testing.assert_allclose(mean_log_probs[1], np.log(probs[[1, 4]]).mean(axis=0))
  assert mean_log_probs.argmax(-1).tolist() == [1, 1]


def test_a_track_with_two_labels_is_an_error():
  with pytest.raises(ValueError, match='different labels'):
    report.aggregate_tracks(np.zeros((2, 10)), np.array([0, 1]), np.array(['a', 'a']))


def test_per_genre_precision_recall_f1_and_confusion():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predictions = np.array([0, 0, 1, 1, 1, 0])
  metrics = report.classification_metrics(labels, predictions, ['x', 'y', 'z', 'absent'])
  assert metrics['confusion'] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
  assert metrics['count'] == 6 and metrics['accuracy'] == pytest.approx(4 / 6)
  x, y, z = (metrics['per_class'][c] for c in 'xyz')
  assert (x['precision'], x['recall'], x['support']) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
  assert (y['precision'], y['recall'], y['f1']) == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
  assert (z['precision'], z['recall'], z['f1']) == (0.0, 0.0, 0.0)  # never predicted: no division by zero
  assert metrics['macro_f1'] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)  # 'absent' is left out


def test_evaluate_writes_reports_that_agree_with_training(tiny_config, fake_datasets, tmp_path):
  tiny_config.vgg.widths = (4,)
  tiny_config.num_epochs = 1
  test = fake_datasets['test']
  test['track'] = np.array([f'{label}.{i % 2}' for i, label in enumerate(test['label'])])  # 2-3 segments a track
  workdir = str(tmp_path)
  results = train.train_and_evaluate(tiny_config, workdir, fake_datasets, jax.devices()[:1])

  result = evaluate.evaluate_workdir(workdir, 'test', datasets=fake_datasets)
  segment, track = result['segment'], result['track']
  assert result['step'] == results['step'] and result['model'] == 'vgg'
  assert segment['count'] == 24 and track['count'] == len(set(test['track']))
  assert segment['accuracy'] == pytest.approx(results['test']['accuracy'], abs=1e-6)
  assert segment['loss'] == pytest.approx(results['test']['loss'], rel=1e-4)
  assert sum(map(sum, track['confusion'])) == track['count'] and set(segment['per_class']) == {str(i) for i in range(10)}

  with open(tmp_path / 'report_test.json') as f:
    assert json.load(f) == json.loads(json.dumps(result))
  markdown = (tmp_path / 'report_test.md').read_text()
  assert '| segment | 24 |' in markdown and 'report_test_confusion_track.png' in markdown
  for png in ('report_test_confusion_segment.png', 'report_test_confusion_track.png', evaluate.CLIP_FIGURE):
    assert (tmp_path / png).read_bytes()[:4] == b'\x89PNG', png

  best = evaluate.evaluate_workdir(workdir, 'validation', 'best', datasets=fake_datasets)
  assert (tmp_path / 'report_validation_best.json').exists()
  assert math.isclose(best['segment']['accuracy'], results['validation']['accuracy'], abs_tol=1e-6)


def test_a_workdir_without_checkpoints_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoints'):
    evaluate.load_trained(str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_clip_figure_of_an_audio_file(tmp_path):
  rate = 8000
  tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate)
  sf.write(tmp_path / 'tone.wav', tone, rate)
  evaluate.save_clip_figure(str(tmp_path / 'figure.png'), str(tmp_path / 'tone.wav'))
  assert (tmp_path / 'figure.png').read_bytes()[:4] == b'\x89PNG'
  sf.write(tmp_path / 'short.wav', tone[:rate], rate)
  with pytest.raises(ValueError, match='shorter than 2 s'):
    evaluate.save_clip_figure(str(tmp_path / 'short.png'), str(tmp_path / 'short.wav'))
