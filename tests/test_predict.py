"""predict: files of any rate, channel count, format and length; unreadable files; the CLI."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, fake_split
from configs import paper
from gtzan_jax import input_pipeline, predict, train
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
  train.train_and_evaluate(config, path, datasets, jax.devices()[:1],
                           data_source=input_pipeline.arrays_source('fake GTZAN-like splits', GENRES))
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


class _Stub:
  """Stands in for a model restored from a workdir trained with config.features=`features`: records its input."""

  class_names = tuple(f'class{i}' for i in range(10))

  def __init__(self, features=None):
    self.config = ml_collections.ConfigDict({} if features is None else {'features': features})
    self.seen = []

  def log_probs(self, mel, batch_size):
    self.seen.append(mel)
    energy = mel.astype(np.float32).mean(axis=2)[:, :90].reshape(len(mel), 10, 9).mean(axis=2)
    return energy - np.log(np.exp(energy).sum(axis=1, keepdims=True))


@pytest.fixture(scope='module')
def gtzan_like_file(tmp_path_factory):
  """A 30 s synthetic jazz clip as GTZAN stores it (22050 Hz, 16 bit)."""
  from tfds_gtzan import synthetic
  path = tmp_path_factory.mktemp('gtzan') / 'jazz.00000.wav'
  sf.write(path, synthetic.generate_clip(5, 0), synthetic.SAMPLE_RATE, subtype='PCM_16')
  return path


def test_a_musicnn_checkpoint_gets_the_musicnn_patches_the_builder_makes(gtzan_like_file, capsys, monkeypatch):
  from tfds_gtzan.gtzan_mel import featurize, sources
  path = gtzan_like_file
  built = featurize.featurize_clip(sources.AudioFileClip('jazz.00000', 5, str(path), path.name), 'musicnn').mel
  assert built.shape == (10, 96, 187)
  trained = _Stub('musicnn')
  prediction = predict.predict_file(trained, str(path))
  np.testing.assert_array_equal(np.concatenate(trained.seen), built)  # decoded at 16 kHz, bit for bit
  assert len(prediction.segment_probabilities) == prediction.whole_segments == 10
  assert predict.as_text(prediction, False).startswith(f'{path} (30.0 s, 10 segments): ')
  lines = predict.as_text(prediction, True).splitlines()
  assert len(lines) == 11 and lines[1].startswith('  0:00-0:03  ') and lines[10].startswith('  0:27-0:30  ')
  timeline = predict.as_json(prediction, True)['timeline']
  assert [(t['start'], t['end']) for t in timeline[:2]] == [(0, 2.992), (2.992, 5.984)]
  assert timeline[-1]['end'] == 29.92
  assert predict.as_json(prediction, False).keys() == {
      'file', 'seconds', 'segments', 'whole_segments', 'padded', 'top', 'probabilities'}
  # The workdir's checkpoint decides: run() goes through evaluate.load_trained.
  from gtzan_jax import evaluate
  monkeypatch.setattr(evaluate, 'load_trained', lambda workdir, checkpoint: _Stub('musicnn'))
  assert predict.run('unused', [str(path)], json_output=True) == 0
  result = json.loads(capsys.readouterr().out)
  assert (result['segments'], result['whole_segments'], result['padded']) == (10, 10, False)


def test_musicnn_long_and_short_files(tmp_path):
  rng = np.random.default_rng(0)
  long_file, short_file = str(tmp_path / 'long.wav'), str(tmp_path / 'short.flac')
  sf.write(long_file, 0.1 * rng.standard_normal(40 * 16000), 16000)
  sf.write(short_file, 0.1 * rng.standard_normal(16000), 44100)
  capped = predict.predict_file(_Stub('musicnn'), long_file)
  assert (len(capped.segment_probabilities), capped.whole_segments) == (10, 13)
  assert predict.as_text(capped, False).startswith(f'{long_file} (40.0 s, first 10 of 13 segments): ')
  every = predict.predict_file(_Stub('musicnn'), long_file, max_segments=0)  # streamed patch by patch
  assert len(every.segment_probabilities) == 13
  np.testing.assert_allclose(every.segment_probabilities[:10], capped.segment_probabilities, atol=1e-3)
  trained = _Stub('musicnn')
  short = predict.predict_file(trained, short_file)
  assert short.padded and [m.shape for m in trained.seen] == [(1, 96, 187)]
  assert predict.as_text(short, False).startswith(
      f'{short_file} (0.4 s, shorter than 3 s: zero-padded to one segment): ')


def test_a_checkpoint_without_features_is_mel(gtzan_like_file):
  trained = _Stub()
  assert predict.feature_set_of(trained).name == 'mel'
  prediction = predict.predict_file(trained, str(gtzan_like_file))
  assert np.concatenate(trained.seen).shape == (14, 128, 173) and prediction.whole_segments == 15
  assert [(t['start'], t['end']) for t in predict.as_json(prediction, True)['timeline'][:2]] == [(0, 2), (2, 4)]
  with pytest.raises(ValueError, match="Unknown feature set 'mfcc'"):
    predict.predict_file(_Stub('mfcc'), str(gtzan_like_file))


# The library path (gtzan_jax.tagging, tag_output): a 1,000-file folder with 5 % bad files, killed and
# resumed; a 2-hour file and a 5,000-file folder in bounded memory. Speed is only in the benchmark.

def _library(root, count, bad_every=20):
  """`count` files in 30 folders: 22050 Hz clips of 1-3 s (those under 2 s zero-padded), every `bad_every`-th
  one broken in turn: empty, text named .mp3, a WAV cut inside its header. Returns {bad file: its error}."""
  rng = np.random.default_rng(0)
  templates = []  # eight clips, copied byte for byte (sf.write per file takes ~4 ms on a loaded machine)
  for k in range(8):
    sf.write(root / 'template.wav', 0.2 * rng.standard_normal(int(22050 * (1 + 2 * k / 7))), 22050,
             subtype='PCM_16')
    templates.append((root / 'template.wav').read_bytes())
  (root / 'template.wav').unlink()
  bad = {}
  for i in range(count):
    folder = root / f'artist{i % 10}' / f'album{i % 3}'
    folder.mkdir(parents=True, exist_ok=True)
    if i % bad_every == bad_every - 1:
      kind = (i // bad_every) % 3
      path = folder / f'{i:04d}.{"mp3" if kind == 1 else "wav"}'
      path.write_bytes((b'', b'This is not audio.\n', templates[0][:30])[kind])
      bad[str(path)] = ('empty file', 'not a known audio file', 'truncated WAV file')[kind]
    else:
      (folder / f'{i:04d}.wav').write_bytes(templates[i % 8])
  return bad


def _env():
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''}


@pytest.mark.slow
def test_a_killed_library_run_resumes_to_the_uninterrupted_csv(workdir, tmp_path):
  from gtzan_jax import tag_output
  (tmp_path / 'lib').mkdir()
  bad = _library(tmp_path / 'lib', 1000)
  assert len(bad) == 50
  whole, cut = str(tmp_path / 'whole.csv'), str(tmp_path / 'cut.csv')
  assert predict.run(workdir, [str(tmp_path / 'lib')], output=whole, chunk_size=50, pool='thread',
                     progress=False) == 1  # some failed
  expected = open(whole, 'rb').read()
  rows = tag_output.read_rows(whole, tag_output.RowFormat('csv'))
  assert len(rows) == 1000 and [r['path'] for r in rows] == sorted(r['path'] for r in rows)
  failed = {r['path']: r['error'] for r in rows if r['error']}
  assert sorted(failed) == sorted(bad) and all(failed[p].startswith(bad[p]) for p in bad)
  assert all(r['label'] in GENRES and 0 < r['probability'] <= 1 for r in rows if not r['error'])
  assert sum(bool(r['padded']) for r in rows) > 50  # the clips under 2 s
  # The same from the command line, killed with SIGKILL once two chunks are in.
  process = subprocess.Popen([sys.executable, '-m', 'gtzan_jax.predict', f'--workdir={workdir}', f'--output={cut}',
                              '--chunk_size=50', '--noprogress', str(tmp_path / 'lib')],
                             cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if os.path.exists(cut) and open(cut, 'rb').read().count(b'\n') > 100:
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.02)
  _, stderr = process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL, stderr[-2000:]
  left = open(cut, 'rb').read()
  kept = tag_output.read_rows(cut, tag_output.RowFormat('csv'))  # complete rows only, or it raises
  assert 100 <= len(kept) < 1000 and len(kept) % 50 == 0 and expected.startswith(left)
  report = tmp_path / 'report'
  assert predict.run(workdir, [str(tmp_path / 'lib')], output=cut, chunk_size=50, resume=True, pool='thread',
                     report_dir=str(report), progress=False) == 1
  assert open(cut, 'rb').read() == expected
  page = (report / 'report.md').read_text()
  assert '## Failed files (50)' in page and all(os.path.exists(report / f) for f in ('labels.png', 'folders.png'))


def test_rows_do_not_depend_on_the_batch_they_are_in(workdir):
  """What makes a resumed run equal an uninterrupted one: a segment's log-probabilities, bit for bit."""
  from gtzan_jax import evaluate, tagging
  forward = tagging.Forward(evaluate.load_trained(workdir), 16)
  mel = np.random.default_rng(0).normal(-40, 10, (16, 128, 173)).astype(np.float16)
  alone = np.concatenate([forward(mel[i:i + 1]) for i in range(3)])
  together = forward(mel)
  shifted = forward(np.concatenate([mel[5:], mel[:5]]))
  np.testing.assert_array_equal(together[:3], alone)
  np.testing.assert_array_equal(shifted[11:14], alone)


_MEMORY_RUN = """
import sys
import numpy as np
from gtzan_jax import predict

class Stub:  # the model: a numpy function of the segments (the model's own memory is a fixed batch)
  config = {}
  class_names = tuple(f'class{i}' for i in range(10))
  def log_probs(self, mel, batch_size):
    energy = mel.astype(np.float32).mean(axis=2)[:, :90].reshape(len(mel), 10, 9).mean(axis=2)
    return energy - np.log(np.exp(energy).sum(axis=1, keepdims=True))

sys.exit(predict.run(None, [sys.argv[1]], trained=Stub(), output=sys.argv[2], max_segments=0, pool='thread',
                     progress=False))
"""


@pytest.mark.slow
def test_memory_stays_bounded_for_a_two_hour_file_and_5000_clips(tmp_path):
  """A 2-hour file (every segment: --max_segments=0) and 5,000 short clips in one run; peak RSS reported.

  The model is a numpy stand-in, so that the time goes into what could hold memory: decoding,
  features, batching and the rows (the model's own memory is that of one fixed batch). The
  workers are threads, so the process's peak RSS counts theirs too.
  """
  from gtzan_jax import tag_output
  rate, hours = 22050, 2
  long_file = tmp_path / 'lib' / 'long' / 'two_hours.wav'
  long_file.parent.mkdir(parents=True)
  rng = np.random.default_rng(1)
  block = (0.1 * rng.standard_normal(60 * rate)).astype(np.float32)
  with sf.SoundFile(long_file, 'w', rate, 1, 'PCM_16') as f:  # a minute of noise at a time, never all of it
    for _ in range(60 * hours):
      f.write(block)
  clips = tmp_path / 'lib' / 'clips'
  clips.mkdir()
  sf.write(clips / 'template.wav', 0.1 * rng.standard_normal(rate // 2), rate, subtype='PCM_16')
  clip = (clips / 'template.wav').read_bytes()  # copied: sf.write per file takes ~4 ms on a loaded machine
  (clips / 'template.wav').unlink()
  for i in range(5000):
    folder = clips / f'{i // 500:02d}'
    folder.mkdir(exist_ok=True)
    (folder / f'{i:04d}.wav').write_bytes(clip)
  out = str(tmp_path / 'tags.jsonl')
  result = subprocess.run([sys.executable, '-c', _MEMORY_RUN, str(tmp_path / 'lib'), out], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = result.stderr.strip().splitlines()[-1]
  print(summary)  # the peak RSS, for the record (pytest -s)
  rows = tag_output.read_rows(out, tag_output.RowFormat('jsonl'))
  assert len(rows) == 5001 and rows[-1]['path'] == str(long_file)
  assert (rows[-1]['segments'], rows[-1]['seconds']) == (3600, 7200.0)
  assert all(r['padded'] for r in rows[:-1])
  peak, before = (float(x) for x in re.search(r'peak memory (\d+) MB \((\d+) MB before tagging\)',
                                               summary).groups())
  # Decoded whole, the long file would be 635 MB of float32 at 22050 Hz; its features 159 MB of float16.
  assert peak - before < 100, summary
