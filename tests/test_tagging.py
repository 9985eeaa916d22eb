"""Library tagging without a trained model: the walk, the rows, the resumable output, the report, the workers.

The model is a stand-in (`_Stub`: a fixed function of the segments), so these run in seconds; the
tests with a trained checkpoint, the kill -9 and the memory bound are in test_predict.py.
"""

import json
import multiprocessing
import os
import signal
import time

import ml_collections
import numpy as np
import pytest
import soundfile as sf

from gtzan_jax import predict, tag_output, tag_report, tag_workers, tagging
from tfds_gtzan import library

NAMES = tuple(f'class{i}' for i in range(10))


class _Stub:
  """A checkpoint stand-in: class scores from the mean energy of ten mel bands; its own class names."""

  def __init__(self, features=None, class_names=NAMES):
    self.config = ml_collections.ConfigDict({} if features is None else {'features': features})
    self.class_names = class_names
    self.step = 7

  def log_probs(self, mel, batch_size):
    energy = mel.astype(np.float32).mean(axis=2)[:, :90].reshape(len(mel), 10, 9).mean(axis=2) / 10
    return energy - np.log(np.exp(energy).sum(axis=1, keepdims=True))


def _write(path, seconds, rate=8000, channels=1, seed=0):
  rng = np.random.default_rng(seed)
  y = 0.2 * rng.standard_normal((int(seconds * rate), channels)) * np.linspace(0.2, 1, channels)
  sf.write(str(path), y if channels > 1 else y[:, 0], rate)
  return str(path)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  """A small library: nested folders, several formats and rates, a padded clip, broken files, a loop."""
  root = tmp_path_factory.mktemp('library')
  (root / 'b' / 'deep').mkdir(parents=True)
  (root / 'a').mkdir()
  _write(root / 'a' / 'stereo.WAV', 5, 44100, 2, 1)
  _write(root / 'a' / 'short.flac', 1, 16000, 1, 2)
  _write(root / 'b' / 'deep' / 'long.ogg', 40, 22050, 1, 3)
  _write(root / 'b' / 'z.wav', 3, 8000, 1, 4)
  (root / 'b' / 'text.mp3').write_text('This is not audio.\n')
  (root / 'b' / 'empty.wav').write_bytes(b'')
  (root / 'b' / 'notes.txt').write_text('skipped: not an audio extension')
  os.symlink('..', root / 'b' / 'deep' / 'loop')  # back to b: a loop
  os.symlink(root / 'a', root / 'link_to_a')  # a second way into a
  return root


def test_walk_is_sorted_follows_links_and_reports_loops(folder, monkeypatch):
  found = library.walk([str(folder)])
  names = [os.path.relpath(e.path, folder) for e in found.entries]
  assert names == ['a/short.flac', 'a/stereo.WAV', 'b/deep/long.ogg', 'b/empty.wav', 'b/text.mp3', 'b/z.wav']
  assert found.skipped == 1 and not found.failed
  reasons = sorted(note.reason.split(' (')[0].split(',')[0] for note in found.notes)
  assert reasons == ['same folder as ' + str(folder / 'a'), 'symlink loop'], found.notes
  entry = found.entries[1]
  assert entry.size == os.path.getsize(entry.path) and entry.mtime.endswith('Z') and entry.error is None
  # A file named twice is listed once; a missing one is an entry that says so; an unreadable folder a note.
  real_scandir = os.scandir

  def scandir(path):
    if str(path).endswith('deep'):
      raise PermissionError(13, 'Permission denied')
    return real_scandir(path)

  monkeypatch.setattr(os, 'scandir', scandir)
  again = library.walk([str(folder / 'b'), str(folder / 'b' / 'z.wav'), str(folder / 'gone.wav')])
  assert [os.path.basename(e.path) for e in again.entries] == ['empty.wav', 'text.mp3', 'z.wav', 'gone.wav']
  assert again.entries[-1].error == 'no such file'
  assert [str(note) for note in again.failed] == [f'{folder / "b" / "deep"}: unreadable folder (Permission denied)']


def test_tagger_matches_todays_path_file_by_file(folder):
  """Same segments, probabilities and durations as predict_file, in input order, across batches and workers."""
  stub = _Stub()
  entries = library.walk([str(folder)]).entries
  with tagging.Tagger(stub, batch_size=4, workers=2, pool='thread', window=3) as tagger:
    pool = tagger.pool
    calls = tagger.tag(entries)
    results = [next(calls) for _ in entries]  # as predict.write_rows takes them: never to StopIteration
    del calls
    assert tagger.pool is pool  # the call was complete: its workers stay for the next
  assert [t.entry for t in results] == entries
  errors = {os.path.basename(t.entry.path): t.error for t in results if t.error}
  assert errors == {'empty.wav': 'empty file (0 bytes)',
                    'text.mp3': errors['text.mp3']} and errors['text.mp3'].startswith('not a known audio file')
  for tagged in results:
    if tagged.error:
      continue
    expected = predict.predict_file(stub, tagged.entry.path)
    got = tagged.prediction
    np.testing.assert_allclose(got.segment_probabilities, expected.segment_probabilities, rtol=1e-6)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, rtol=1e-6)
    assert (got.padded, got.whole_segments) == (expected.padded, expected.whole_segments), tagged.entry.path
    assert got.seconds == pytest.approx(expected.seconds, abs=1e-3) and got.class_names == NAMES
  long = next(t.prediction for t in results if t.entry.path.endswith('long.ogg'))
  assert (len(long.segment_probabilities), long.whole_segments) == (14, 20)  # capped, duration from the header
  assert tagger.counters.files == len(entries) and tagger.counters.failed == 2
  with tagging.Tagger(stub, max_segments=0, batch_size=8, workers=1, pool='thread') as tagger:
    every = [t.prediction for t in tagger.tag([e for e in entries if e.path.endswith('long.ogg')])]
  assert len(every[0].segment_probabilities) == 20
  np.testing.assert_allclose(every[0].segment_probabilities[:14], long.segment_probabilities, rtol=1e-6)


def test_a_musicnn_checkpoint_gets_its_patches(folder):
  stub = _Stub('musicnn')
  entry = library.entry_of(str(folder / 'b' / 'deep' / 'long.ogg'))
  with tagging.Tagger(stub, workers=1, pool='thread') as tagger:
    (tagged,) = tagger.tag([entry])
  expected = predict.predict_file(stub, entry.path)
  assert len(tagged.prediction.segment_probabilities) == 10 and tagged.prediction.features == 'musicnn'
  np.testing.assert_allclose(tagged.prediction.probabilities, expected.probabilities, rtol=1e-6)


def _tagged(path='x/a.wav', probabilities=(0.7, 0.2, 0.1), error=None, segments=2):
  entry = library.Entry(path, 123, '2026-01-01T00:00:00.000000Z')
  if error:
    return tagging.Tagged(entry, error=error)
  p = np.zeros(10)
  p[:len(probabilities)] = probabilities
  prediction = tagging.Prediction(path, 4.0, False, p, np.tile(p, (segments, 1)), segments, 'mel', NAMES)
  return tagging.Tagged(entry, prediction)


def test_csv_and_jsonl_rows():
  csv_format = tag_output.RowFormat('csv', top_k=2)
  row, values = csv_format.row(_tagged('x/a, "b".wav'))
  assert row.decode() == ('"x/a, ""b"".wav",123,2026-01-01T00:00:00.000000Z,4.000,2,2,false,class0,0.7000,'
                          'class1,0.2000,\n')
  assert csv_format.columns == ['path', 'size', 'mtime', 'seconds', 'segments', 'whole_segments', 'padded', 'label',
                                'probability', 'label_2', 'probability_2', 'error']
  assert csv_format.parse_row(row) == values
  failed, _ = csv_format.row(_tagged(error='empty file (0 bytes)'))
  assert failed.decode() == 'x/a.wav,123,2026-01-01T00:00:00.000000Z,,,,,,,,,empty file (0 bytes)\n'
  jsonl = tag_output.RowFormat('jsonl', top_k=1, timeline=True)
  record = json.loads(jsonl.row(_tagged())[0])
  assert list(record) == [*jsonl.columns, 'probabilities', 'timeline']
  assert record['label'] == 'class0' and list(record['probabilities']) == list(NAMES)
  assert [(t['start'], t['end']) for t in record['timeline']] == [(0, 2), (2, 4)]
  with pytest.raises(ValueError, match='only into a .jsonl'):
    tag_output.RowFormat('csv', timeline=True)
  with pytest.raises(ValueError, match='name a .csv or a .jsonl'):
    tag_output.format_of('tags.txt')


def _entries(tmp_path, count):
  entries = []
  for i in range(count):
    path = tmp_path / 'lib' / f'{i:03d}.wav'
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b'x' * (i + 1))
    entries.append(library.entry_of(str(path)))
  return entries


def _row(entry, fmt, error=None):
  return fmt.row(tagging.Tagged(entry, error=error or f'reason {os.path.basename(entry.path)}'))[0]


@pytest.mark.parametrize('kind', ['csv', 'jsonl'])
def test_output_is_complete_rows_after_every_chunk_and_resumes_to_the_same_bytes(tmp_path, kind):
  fmt = tag_output.RowFormat(kind)
  entries = _entries(tmp_path, 25)
  whole = str(tmp_path / f'whole.{kind}')
  out = tag_output.OutputFile(whole, fmt, entries, {'m': 1}, chunk_size=4)
  for i, entry in enumerate(entries):
    out.emit(i, _row(entry, fmt))
  out.close()
  expected = open(whole, 'rb').read()
  assert len(tag_output.read_rows(whole, fmt)) == 25
  # A run that stops after 10 rows (chunks of 4: 8 are in the file), as after a kill -9.
  cut = str(tmp_path / f'cut.{kind}')
  out = tag_output.OutputFile(cut, fmt, entries, {'m': 1}, chunk_size=4)
  for i, entry in enumerate(entries[:10]):
    out.emit(i, _row(entry, fmt))
    data = open(cut, 'rb').read()
    assert expected.startswith(data) and len(tag_output.read_rows(cut, fmt)) == 4 * ((i + 1) // 4)
  with pytest.raises(ValueError, match='exists: --resume continues it'):
    tag_output.OutputFile(cut, fmt, entries, {'m': 1})
  with pytest.raises(ValueError, match="made with m 1, this run has 2"):
    tag_output.OutputFile(cut, fmt, entries, {'m': 2}, resume=True)
  out = tag_output.OutputFile(cut, fmt, entries, {'m': 1}, resume=True, chunk_size=4)
  assert out.kept == 8 and [out.reused(i) for i in (7, 8)] == [True, False]
  for i, entry in enumerate(entries):
    if out.reused(i):
      assert fmt.parse_row(out.emit_kept(i))['path'] == entry.path
    else:
      out.emit(i, _row(entry, fmt))
  out.close()
  assert open(cut, 'rb').read() == expected


def test_resume_drops_changed_and_gone_files_and_keeps_the_rest_in_walk_order(tmp_path):
  fmt = tag_output.RowFormat('csv')
  entries = _entries(tmp_path, 12)
  path = str(tmp_path / 'tags.csv')
  out = tag_output.OutputFile(path, fmt, entries, {}, chunk_size=100)
  for i, entry in enumerate(entries):
    out.emit(i, _row(entry, fmt, 'old'))
  out.close()
  # Now file 3 has changed, file 5 is gone, and a new file 011b sorts between 011 and the end.
  with open(entries[3].path, 'ab') as f:
    f.write(b'more')
  os.remove(entries[5].path)
  (tmp_path / 'lib' / '011b.wav').write_bytes(b'new')
  now = library.walk([str(tmp_path / 'lib')], ['wav']).entries
  out = tag_output.OutputFile(path, fmt, now, {}, resume=True, chunk_size=2)
  assert [out.reused(i) for i in range(len(now))] == [True] * 3 + [False] + [True] * 7 + [False]
  data = open(path, 'rb').read()
  assert b'003.wav' not in data and b'005.wav' not in data  # dropped at once: the file stays true
  for i, entry in enumerate(now):
    if out.reused(i):
      out.emit_kept(i)
    else:
      out.emit(i, _row(entry, fmt, 'new'))
      assert [r['path'] for r in tag_output.read_rows(path, fmt)] == sorted(r['path'] for r in
                                                                               tag_output.read_rows(path, fmt))
  out.close()
  rows = tag_output.read_rows(path, fmt)
  assert [os.path.basename(r['path']) for r in rows] == [os.path.basename(e.path) for e in now]
  assert [r['error'] for r in rows] == ['old'] * 3 + ['new'] + ['old'] * 7 + ['new']
  (tmp_path / 'edited.csv').write_bytes(open(path, 'rb').read().replace(b'\n', b'\r\n'))  # saved by a spreadsheet
  with pytest.raises(ValueError, match='row 1 is not as predict writes it'):
    tag_output.OutputFile(str(tmp_path / 'edited.csv'), fmt, now, {}, resume=True)


def test_the_report_names_the_least_certain_and_failed_files(tmp_path):
  stats = tag_report.LibraryStats(NAMES)
  fmt = tag_output.RowFormat('csv', top_k=2)
  for i in range(30):  # rock: class0 at 0.60..0.79; jazz: class1 at 0.55..0.64
    p = 0.6 + 0.01 * i if i < 20 else 0.45 - 0.01 * (i - 20)
    stats.add(fmt.row(_tagged(f'music/{"rock" if i < 20 else "jazz"}/{i:02d}.wav', (p, 1 - p)))[1])
  stats.add(fmt.row(_tagged('music/bad.mp3', error='not a known audio file or unreadable (libsndfile: x)'))[1])
  assert stats.summary() == '31 files: 30 classified, 1 failed; most often class0 20, class1 10'
  least = stats.least_certain()
  assert [row['path'] for row in least[:3]] == ['music/jazz/20.wav', 'music/jazz/21.wav', 'music/jazz/22.wav']
  assert (least[0]['label'], least[0]['probability'], least[0]['label_2']) == ('class1', 0.55, 'class0')
  page = tag_report.write_report(stats, str(tmp_path / 'report'), 'tags.csv', ['x: symlink loop'])
  text = open(page).read()
  for heading in ('## Labels', '## Confidence', 'least certain files', '## Per folder', '## Failed files (1)'):
    assert heading in text, heading
  assert '| music/rock | 20 | class0 | 100% |' in text and '| music/jazz | 10 | class1 | 100% |' in text
  assert 'music/bad.mp3' in text
  for png in ('labels.png', 'confidence.png', 'folders.png'):
    assert open(tmp_path / 'report' / png, 'rb').read(4) == b'\x89PNG'


def test_worker_processes_never_import_jax_and_a_crash_fails_only_its_file(folder):
  long_file = _write(folder / 'b' / 'crash_me.wav', 60, 44100, 2, 9)
  try:
    with tag_workers.make_pool('process', 1, 'mel', 0) as pool:
      deadline = time.time() + 120
      while not pool.worker_info and time.time() < deadline:
        assert pool.get(timeout=0.5) == []
      assert [info['jax_imported'] for info in pool.worker_info.values()] == [False]
      pool.submit(0, long_file)
      pool.submit(1, str(folder / 'a' / 'short.flac'))
      os.kill(pool.worker_info[0]['pid'], signal.SIGKILL)  # while it decodes the long file
      ends = {}
      while len(ends) < 2 and time.time() < deadline:
        ends.update({m[1]: m[3] for m in pool.get(timeout=0.5) if m[0] == 'end'})
      assert ends[0]['error'] == 'the decoder crashed on it (worker exit code -9)'
      assert ends[1]['error'] is None and ends[1]['padded'] and pool.crashes == 1
      # A worker whose parent is gone (its pipe closed, as when the parent is killed) exits by itself.
      process = pool._processes[0]
      pool._conns[0].close()
      process.join(timeout=30)
      assert process.exitcode == 0
      pool._conns[0] = multiprocessing.Pipe()[0]  # something for close() to close
  finally:
    os.remove(long_file)


def test_print_mode_and_output_mode_with_the_checkpoints_class_names(folder, tmp_path, capsys):
  stub = _Stub()
  assert predict.run(None, [str(folder / 'a')], trained=stub) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].startswith(f'{folder / "a" / "short.flac"} (1.0 s, shorter than 2 s: zero-padded to one segment): ')
  assert all(name.startswith('class') for line in out for name in line.split('): ')[1].split(', '))
  tags = str(tmp_path / 'tags.csv')
  assert predict.run(None, [str(folder)], trained=stub, output=tags, top_k=3, report_dir=str(tmp_path / 'r'),
                     progress=False) == 1
  err = capsys.readouterr().err
  assert f'error: {folder / "b" / "empty.wav"}: empty file (0 bytes)' in err
  assert f'{tags}: 6 files: 4 classified (1 zero-padded to one segment), 2 failed' in err
  rows = tag_output.read_rows(tags, tag_output.RowFormat('csv', 3))
  assert [r['label'] in NAMES for r in rows if not r['error']] == [True] * 4
  assert json.load(open(tags + '.meta.json'))['class_names'] == list(NAMES)
  assert os.path.exists(tmp_path / 'r' / 'report.md')
  with pytest.raises(ValueError, match='--segments writes'):
    predict.run(None, [str(folder)], trained=stub, output=tags, with_segments=True, overwrite=True)
  with pytest.raises(ValueError, match='--resume is about an --output file'):
    predict.run(None, [str(folder)], trained=stub, resume=True)
