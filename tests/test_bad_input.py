"""The builder and predict on bad input: each awkward file gets its documented result, the rest work.

docs/reliability.md has the matrix (input -> result). The bad files go into `rock/` and `pop/`
beside fake_gtzan's tree, whose own awkward files (a text file named `.wav`, a 1 s clip,
44.1 kHz stereo, `.au`, an unknown genre folder) and a missing, empty or genre-less manual_dir
are checked by test_builder.py and not repeated here; the summary counts below include them.
predict gets the same files, with a stand-in for the model (the audio path is what is tested).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import wave

import fake_gtzan
import numpy as np
import pytest
import soundfile as sf
import tensorflow_datasets as tfds

from gtzan_jax import evaluate
from gtzan_jax import predict
from tfds_gtzan import audio
from tfds_gtzan import data
from tfds_gtzan.gtzan_mel import sources

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
RATE = fake_gtzan.SAMPLE_RATE
TONE_LABEL = 2  # fake_gtzan.clip's tone is 110 * 2**label + 20 * index Hz: 440-620 Hz here.
TWO_HOURS = 2 * 3600

# File under genres/ -> the reason it is skipped with (its start).
SKIPPED = {
    'rock/rock.00000.wav': 'corrupt WAV file (libsndfile: ',  # RIFF header, malformed 'fmt ' chunk.
    'rock/rock.00001.wav': "not a RIFF/WAV file (starts with b'",  # Binary junk, like the Kaggle jazz.00054.
    'rock/rock.00002.wav': 'truncated WAV file (30 of ',  # Cut inside the header.
    'rock/rock.00003.wav': 'empty file (0 bytes)',
    'rock/rock.00004.wav': 'contains NaN or infinite samples',  # A float WAV.
    'rock/rock.00005.au': 'another file has the same track name',  # rock.00005.wav is preferred.
}
# File -> decoded seconds: read, but shorter than one 2 s segment.
TOO_SHORT = {
    'pop/pop.00000.wav': 1.5,  # A 4.5 s WAV cut after 1.5 s of its data.
    'pop/pop.00001.wav': 1.99,
}
# File -> segments written.
READ = {
    'rock/rock.00005.wav': 2,
    'pop/pop.00002.wav': 1,  # Exactly 2 s.
    'pop/pop.00003.wav': 2,  # Silent.
    'pop/pop.00004.wav': 2,  # 48 kHz.
    'pop/pop.00005.wav': 2,  # 48 kHz stereo.
    'pop/pop.00006.wav': 2,  # 44.1 kHz.
    'pop/pop.00007.wav': 2,  # 8-bit unsigned PCM.
    'pop/pop.00008.flac': 2,
    'pop/pop.00009.wav': audio.MAX_SEGMENTS,  # Two hours: only the first 28 s are decoded.
}
SILENT_FILE = 'pop/pop.00003.wav'
TWO_HOUR_FILE = 'pop/pop.00009.wav'
IGNORED = ('pop/._pop.00003.wav',  # macOS AppleDouble file: hidden.
           'pop/pop.00010.mp4')  # Not an audio extension the builder reads.


def _tone(index: int, rate: int = RATE, channels: int = 1, seconds: float = fake_gtzan.SECONDS) -> np.ndarray:
  return fake_gtzan.clip(TONE_LABEL, index, rate, channels, seconds=seconds)


def _write(path: pathlib.Path, samples: np.ndarray, rate: int = RATE, subtype: str = 'PCM_16') -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(path, samples, rate, subtype=subtype)


def _data_offset(wav: bytes) -> int:
  """Where the samples of a canonical WAV file start."""
  return wav.index(b'data') + 8


def write_two_hour_wav(path: pathlib.Path, seconds: int = TWO_HOURS) -> None:
  """A 16-bit mono WAV declaring `seconds` of audio: a 30 s tone, then zeros left unwritten (sparse)."""
  t = np.arange(30 * RATE) / RATE
  with wave.open(str(path), 'wb') as f:
    f.setnchannels(1)
    f.setsampwidth(2)
    f.setframerate(RATE)
    f.writeframes((0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype('<i2').tobytes())
  data_bytes = seconds * RATE * 2
  with open(path, 'r+b') as f:
    offset = _data_offset(f.read(64))
    f.seek(4)
    f.write((offset + data_bytes - 8).to_bytes(4, 'little'))  # RIFF chunk size.
    f.seek(offset - 4)
    f.write(data_bytes.to_bytes(4, 'little'))  # data chunk size.
    f.truncate(offset + data_bytes)


def write_bad_inputs(genres: pathlib.Path) -> None:
  """Writes the files of SKIPPED, TOO_SHORT, READ and IGNORED under `genres`."""
  rock, pop = genres / 'rock', genres / 'pop'
  _write(rock / 'rock.00005.wav', _tone(5))
  _write(rock / 'rock.00005.au', _tone(5))
  good = (rock / 'rock.00005.wav').read_bytes()
  corrupt = bytearray(good)
  corrupt[20:36] = b'\xff' * 16  # The 'fmt ' chunk's fields.
  (rock / 'rock.00000.wav').write_bytes(bytes(corrupt))
  (rock / 'rock.00001.wav').write_bytes(np.random.default_rng(0).bytes(len(good)))
  (rock / 'rock.00002.wav').write_bytes(good[:30])
  (rock / 'rock.00003.wav').write_bytes(b'')
  nan = _tone(4)
  nan[RATE] = np.nan
  _write(rock / 'rock.00004.wav', nan, subtype='FLOAT')

  _write(pop / 'pop.00000.wav', _tone(0))
  cut = (pop / 'pop.00000.wav').read_bytes()
  (pop / 'pop.00000.wav').write_bytes(cut[:_data_offset(cut) + int(1.5 * RATE) * 2])
  _write(pop / 'pop.00001.wav', _tone(1, seconds=1.99))
  _write(pop / 'pop.00002.wav', _tone(2, seconds=2.0))
  _write(genres / SILENT_FILE, np.zeros(int(fake_gtzan.SECONDS * RATE), np.float32))
  _write(pop / 'pop.00004.wav', _tone(4, 48000), 48000)
  _write(pop / 'pop.00005.wav', _tone(5, 48000, channels=2), 48000)
  _write(pop / 'pop.00006.wav', _tone(6, 44100), 44100)
  _write(pop / 'pop.00007.wav', _tone(7), subtype='PCM_U8')
  _write(pop / 'pop.00008.flac', _tone(8))
  write_two_hour_wav(genres / TWO_HOUR_FILE)
  (pop / '._pop.00003.wav').write_bytes(b'\x00\x05\x16\x07' + bytes(78))
  (pop / 'pop.00010.mp4').write_bytes(bytes(100))


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """gtzan_mel/tracks over fake_gtzan's tree plus the bad inputs: (summary, all splits together)."""
  manual_dir = fake_gtzan.write_fake_gtzan(tmp_path_factory.mktemp('manual'))
  write_bad_inputs(manual_dir / 'genres')
  data_dir = tmp_path_factory.mktemp('data')
  builder = data.get_builder('gtzan_mel/tracks', data_dir, manual_dir)
  splits = [data.read_split('gtzan_mel/tracks', split, data_dir) for split in ('train', 'validation', 'test')]
  return builder.info.metadata['summary'], {k: np.concatenate([s[k] for s in splits]) for k in splits[0]}


def _track(file: str) -> str:
  return pathlib.PurePath(file).stem


def test_bad_files_are_skipped_with_their_reason(built):
  summary, _ = built
  reasons = {item['file']: item['reason'] for item in summary['clips_skipped']}
  for file, reason in SKIPPED.items():
    assert reasons[f'genres/{file}'].startswith(reason), (file, reasons[f'genres/{file}'])


def test_clips_under_two_seconds_are_listed_with_their_length(built):
  summary, _ = built
  too_short = {item['file']: item['seconds'] for item in summary['too_short']}
  assert too_short == {f'genres/{fake_gtzan.SHORT_FILE}': 1.0} | {f'genres/{f}': s for f, s in TOO_SHORT.items()}


def test_summary_counts_add_up(built):
  summary, examples = built
  base_clips = len(fake_gtzan.GENRES) * fake_gtzan.CLIPS_PER_GENRE
  assert summary['clips_read'] == base_clips + 1 + len(TOO_SHORT) + len(READ)  # + fake_gtzan's 1 s clip.
  assert len(summary['clips_skipped']) == 1 + len(SKIPPED)  # + fake_gtzan's text file.
  assert summary['unknown_genre_files'] == 1
  segments = base_clips * fake_gtzan.SEGMENTS_PER_CLIP + sum(READ.values())
  assert sum(summary['segments'].values()) == len(examples['label']) == segments
  skipped_tracks = {_track(f) for f in SKIPPED} - {_track(f) for f in READ}
  assert not skipped_tracks & set(examples['track'].tolist())


def test_readable_odd_formats_keep_their_pitch(built):
  """Other rates, channels, bit depths and formats: the loudest mel band is the 22050 Hz original's."""
  _, examples = built
  for file, count in READ.items():
    mel = examples['mel'][examples['track'] == _track(file)].astype(np.float32)
    assert len(mel) == count, file
    if file == SILENT_FILE:
      assert np.all(mel == -100.0)  # 10 log10(amin): finite, the floor of every band.
    elif file != TWO_HOUR_FILE:
      original = audio.log_mel(audio.segment(_tone(int(_track(file).split('.')[1]))[:, 0]))
      assert mel[0].mean(axis=1).argmax() == original[0].mean(axis=1).argmax(), file


def test_hidden_and_non_audio_files_are_ignored(built):
  summary, examples = built
  listed = {item['file'] for key in ('clips_skipped', 'too_short') for item in summary[key]}
  for file in IGNORED:
    assert f'genres/{file}' not in listed and _track(file) not in examples['track']


def test_no_readable_clip_is_a_one_line_error(tmp_path):
  """Genre folders whose files all fail leave every split empty: one line, not TFDS's AssertionError."""
  manual_dir = tmp_path / 'manual'
  (manual_dir / 'genres' / 'blues').mkdir(parents=True)
  (manual_dir / 'genres' / 'blues' / 'blues.00000.wav').write_bytes(b'')
  with pytest.raises(sources.ManualDirError) as error:
    data.get_builder('gtzan_mel/tracks', tmp_path / 'data', manual_dir)
  assert 'no examples' in str(error.value) and '\n' not in str(error.value)
  assert not tfds.builder('gtzan_mel/tracks', data_dir=tmp_path / 'data').is_prepared()


# predict: file -> the start of its one-line error.
PREDICT_ERRORS = {
    **{file: reason for file, reason in SKIPPED.items() if file != 'rock/rock.00005.au'},
    fake_gtzan.CORRUPT_FILE: "not a RIFF/WAV file (starts with b'This')",  # A text file named .wav.
    'pop/pop.00010.mp4': 'not a known audio file or unreadable (libsndfile: ',
}
# predict: file -> (seconds decoded, segments, zero-padded).
PREDICT_READ = {
    'rock/rock.00005.au': (fake_gtzan.SECONDS, 2, False),
    'pop/pop.00000.wav': (1.5, 1, True),
    'pop/pop.00001.wav': (1.99, 1, True),
    **{file: (fake_gtzan.SECONDS, count, False) for file, count in READ.items() if file != TWO_HOUR_FILE},
    'pop/pop.00002.wav': (2.0, 1, False),
}


class _LoudestBand:
  """Stands in for a trained model: 'classifies' a segment by its loudest of 10 mel-band groups."""

  class_names = tuple(f'band{i}' for i in range(10))

  def log_probs(self, mel: np.ndarray, batch_size: int) -> np.ndarray:
    assert mel.dtype == audio.MEL_DTYPE and mel.shape[1:] == (audio.N_MELS, audio.FRAMES)
    assert 0 < len(mel) <= max(batch_size, predict.BLOCK_SECONDS // audio.SEGMENT_SECONDS)  # bounded batches
    energy = mel.astype(np.float32).mean(axis=2)[:, :120].reshape(len(mel), 10, 12).mean(axis=2)
    return energy - np.log(np.exp(energy).sum(axis=1, keepdims=True))


def test_predict_reads_what_it_can_and_names_what_it_cannot(tmp_path, monkeypatch, capsys):
  genres = tmp_path / 'genres'
  write_bad_inputs(genres)
  (genres / fake_gtzan.CORRUPT_FILE).parent.mkdir(parents=True)
  (genres / fake_gtzan.CORRUPT_FILE).write_text('This is not audio.\n')
  monkeypatch.setattr(evaluate, 'load_trained', lambda workdir, checkpoint: _LoudestBand())
  files = sorted({**PREDICT_ERRORS, **PREDICT_READ})
  assert predict.run('unused', [str(genres / f) for f in files], json_output=True) == 1
  out, err = capsys.readouterr()
  errors = err.splitlines()
  assert len(errors) == len(PREDICT_ERRORS), err
  for file, reason in PREDICT_ERRORS.items():
    assert [line for line in errors if line.startswith(f'error: {genres / file}: {reason}')], (file, err)
  results = {pathlib.Path(r['file']).relative_to(genres).as_posix(): r for r in map(json.loads, out.splitlines())}
  assert sorted(results) == sorted(PREDICT_READ)
  for file, (seconds, segments, padded) in PREDICT_READ.items():
    r = results[file]
    assert (r['seconds'], r['segments'], r['padded']) == (pytest.approx(seconds, abs=1e-3), segments, padded), file
  silent = results[SILENT_FILE]['probabilities']
  assert all(p == pytest.approx(0.1) for p in silent.values())  # Every band at the -100 dB floor.
  # Other rates, channels, bit depths and formats: the same 'genre' (loudest bands) as the 22050 Hz original.
  original = _LoudestBand().log_probs(
      audio.log_mel(audio.segment(_tone(5)[:, 0], 1)).astype(audio.MEL_DTYPE), predict.BATCH_SIZE)[0]
  for file in ('rock/rock.00005.au', 'pop/pop.00004.wav', 'pop/pop.00005.wav', 'pop/pop.00006.wav',
               'pop/pop.00007.wav', 'pop/pop.00008.flac'):
    assert results[file]['top'][0][0] == results['rock/rock.00005.au']['top'][0][0], file
  assert results['rock/rock.00005.au']['top'][0][0] == predict.top_genres(np.exp(original), 1, _LoudestBand.class_names)[0][0]


def test_blocks_of_a_resampled_file_equal_the_whole_file(tmp_path):
  """predict decodes in blocks: together they equal load_audio's whole decode, resampling included."""
  for rate, channels in ((RATE, 1), (48000, 2), (44100, 1)):
    path = tmp_path / f'{rate}_{channels}.wav'
    _write(path, _tone(3, rate, channels), rate)
    blocks = list(audio.load_audio_blocks(path, block_seconds=0.7))
    assert len(blocks) > 5 and all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), audio.load_audio(path), err_msg=str(rate))


def test_long_files_are_read_in_bounded_memory(tmp_path):
  """The builder decodes 28 s of a 2-hour file; predict decodes a file a minute at a time.

  Peak RSS, measured in a fresh process after a warm-up on a short clip: the builder's grows by a
  few MB, not by the 635 MB that two hours of float32 samples take; predict's does not grow from
  a 1-minute to a 5-minute file (decoded whole, the 5-minute one would take over 100 MB more).
  """
  write_two_hour_wav(tmp_path / 'two_hours.wav')
  assert (tmp_path / 'two_hours.wav').stat().st_size > TWO_HOURS * RATE * 2
  for minutes in (1, 5):
    write_two_hour_wav(tmp_path / f'{minutes}min.wav', seconds=60 * minutes)
  _write(tmp_path / 'short.wav', _tone(0))
  program = (
      'import resource, sys, numpy as np\n'
      'from gtzan_jax import predict\n'
      'from tfds_gtzan import audio\n'
      'class Model:\n'
      '  class_names = tuple(str(i) for i in range(10))\n'
      '  def log_probs(self, mel, batch_size):\n'
      '    return np.full((len(mel), 10), -np.log(10.0), np.float32)\n'
      'def peak():\n'
      '  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
      'audio.log_mel_from_file(sys.argv[1]), predict.predict_file(Model(), sys.argv[1], max_segments=0)  # Warm-up.\n'
      'before = peak()\n'
      'print(len(audio.log_mel_from_file(sys.argv[2])), peak() - before)\n'
      'for path in sys.argv[3:]:\n'
      '  print(len(predict.predict_file(Model(), path, max_segments=0).segment_probabilities), peak())\n')
  paths = [str(tmp_path / f) for f in ('short.wav', 'two_hours.wav', '1min.wav', '5min.wav')]
  result = subprocess.run([sys.executable, '-c', program, *paths], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  (segments, growth), (segments_1, peak_1), (segments_5, peak_5) = (
      map(int, line.split()) for line in result.stdout.splitlines())
  assert segments == audio.MAX_SEGMENTS
  assert growth < 50 * 1024, f'builder: peak RSS grew by {growth / 1024:.0f} MB'
  assert (segments_1, segments_5) == (30, 150)
  assert peak_5 - peak_1 < 16 * 1024, f'predict: peak RSS grew by {(peak_5 - peak_1) / 1024:.0f} MB'
