"""predict: files of any rate, channel count, format and length; unreadable files; the CLI."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, fake_split
from configs import paper
from gtzan_jax import predict, train
from tfds_gtzan.synthetic import GENRES


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A workdir with one epoch of a tiny VGG trained on fake data."""
  config = paper.get_config()
  config.vgg.widths = (4,)
  config.batch_size = 16
  config.num_epochs = 1
  datasets = {'train': fake_split(64, 0), 'validation': fake_split(24, 1), 'test': fake_split(24, 2)}
  path = str(tmp_path_factory.mktemp('workdir'))
  train.train_and_evaluate(config, path, datasets, jax.devices()[:1])
  return path


@pytest.fixture(scope='module')
def audio_files(tmp_path_factory):
  """A 5 s 44.1 kHz stereo wav, a 1 s 16 kHz flac and a text file named like a wav."""
  folder = tmp_path_factory.mktemp('audio')
  rng = np.random.default_rng(0)
  wav, flac, broken = str(folder / 'stereo.wav'), str(folder / 'short.flac'), str(folder / 'broken.wav')
  t = np.arange(5 * 44100) / 44100
  sf.write(wav, np.stack([np.sin(2 * np.pi * 440 * t), 0.1 * rng.standard_normal(len(t))], axis=1) * 0.3, 44100)
  sf.write(flac, 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000), 16000)
  with open(broken, 'w') as f:
    f.write('This is not audio.\n')
  return wav, flac, broken


def test_text_output_with_timeline_and_a_corrupt_file(workdir, audio_files, capsys):
  wav, flac, broken = audio_files
  assert predict.run(workdir, [wav, broken, flac], with_segments=True) == 1
  out, err = capsys.readouterr()
  assert err.count('\n') == 1 and err.startswith(f'error: {broken}:')
  lines = out.splitlines()
  assert lines[0].startswith(f'{wav} (5.0 s, 2 segments): ') and lines[0].count(',') == 3  # top 3
  assert lines[1].startswith('  0:00-0:02  ') and lines[2].startswith('  0:02-0:04  ')
  assert lines[3].startswith(f'{flac} (1.0 s, shorter than 2 s: zero-padded to one segment): ')
  assert lines[4].startswith('  0:00-0:02  ') and len(lines) == 5


def test_json_output_has_all_probabilities(workdir, audio_files, capsys):
  wav, flac, _ = audio_files
  assert predict.run(workdir, [wav, flac], json_output=True) == 0
  results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r['file'] for r in results] == [wav, flac]
  assert [(r['segments'], r['padded']) for r in results] == [(2, False), (1, True)]
  for r in results:
    p = r['probabilities']
    assert list(p) == list(GENRES) and sum(p.values()) == pytest.approx(1.0, abs=1e-5)
    assert [genre for genre, _ in r['top']] == sorted(p, key=p.get, reverse=True)[:3]
    assert 'timeline' not in r


def test_file_probabilities_are_the_softmax_of_mean_segment_log_probs(workdir, audio_files):
  from gtzan_jax import evaluate
  trained = evaluate.load_trained(workdir)
  prediction = predict.predict_file(trained, audio_files[0])
  mean = np.log(prediction.segment_probabilities).mean(axis=0)
  np.testing.assert_allclose(prediction.probabilities, np.exp(mean) / np.exp(mean).sum(), rtol=1e-5)


def test_a_dataset_clip_gets_the_segments_the_builder_makes(workdir, tmp_path):
  """A 30 s GTZAN-like clip: predict's result is evaluate's track result, from the dataset's 14 segments."""
  from gtzan_jax import evaluate
  from tfds_gtzan import audio, synthetic
  from tfds_gtzan.gtzan_mel import featurize, sources
  path = tmp_path / 'jazz.00000.wav'
  sf.write(path, synthetic.generate_clip(5, 0), audio.SAMPLE_RATE, subtype='PCM_16')  # as GTZAN's files
  trained = evaluate.load_trained(workdir)
  built = featurize.featurize_clip(sources.AudioFileClip('jazz.00000', 5, str(path), path.name)).mel
  assert len(built) == audio.MAX_SEGMENTS and built.dtype == audio.MEL_DTYPE  # the first 28 s
  log_probs = trained.log_probs(built, predict.BATCH_SIZE)
  mean = log_probs.mean(axis=0)
  prediction = predict.predict_file(trained, str(path))
  assert len(prediction.segment_probabilities) == audio.MAX_SEGMENTS  # not all 15 whole segments
  np.testing.assert_allclose(prediction.segment_probabilities, np.exp(log_probs), rtol=1e-6)
  np.testing.assert_allclose(prediction.probabilities, np.exp(mean) / np.exp(mean).sum(), rtol=1e-6)
  assert prediction.whole_segments == 15
  assert predict.as_text(prediction, False).startswith(f'{path} (30.0 s, first 14 of 15 segments): ')
  every = predict.predict_file(trained, str(path), max_segments=0)  # --max_segments=0: all 15
  assert len(every.segment_probabilities) == 15 and predict.as_json(every, False)['segments'] == 15
  np.testing.assert_allclose(every.segment_probabilities[:14], prediction.segment_probabilities, rtol=1e-6)
  with pytest.raises(ValueError, match='max_segments must be >= 0'):
    predict.predict_file(trained, str(path), max_segments=-1)


def test_cli_classifies_the_readable_files_and_exits_non_zero(workdir, audio_files):
  wav, _, broken = audio_files
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''}
  result = subprocess.run([sys.executable, '-m', 'gtzan_jax.predict', f'--workdir={workdir}', broken, wav],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1, result.stderr
  assert result.stdout.startswith(f'{wav} (5.0 s, 2 segments): ')
  assert [line for line in result.stderr.splitlines() if line.startswith('error:')] == [
      f'error: {broken}: not a RIFF/WAV file (starts with {b"This"!r})']
