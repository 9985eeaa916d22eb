"""Tests for tfds_gtzan.audio: decoding, segmenting and batched log-mel."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import soundfile as sf

from tfds_gtzan import audio


def _librosa_log_mel(segment: np.ndarray) -> np.ndarray:
  """The reference definition, one segment at a time."""
  power = librosa.feature.melspectrogram(y=segment, sr=22050, n_fft=512, hop_length=256,
                                         n_mels=128)
  return librosa.power_to_db(power, ref=1.0, top_db=80)


def _tone(seconds: float, rate: int = audio.SAMPLE_RATE, amplitude: float = 0.5) -> np.ndarray:
  t = np.arange(int(seconds * rate)) / rate
  return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_log_mel_matches_librosa_per_segment():
  rng = np.random.default_rng(0)
  loud = _tone(2.0)
  quiet = 1e-4 * rng.standard_normal(audio.SEGMENT_SAMPLES).astype(np.float32)
  silent = np.zeros(audio.SEGMENT_SAMPLES, np.float32)
  segments = np.stack([loud, quiet, silent, loud + quiet])
  mel = audio.log_mel(segments)
  assert mel.shape == (4, audio.N_MELS, audio.FRAMES) and mel.dtype == np.float32
  for got, segment in zip(mel, segments):
    np.testing.assert_allclose(got, _librosa_log_mel(segment), rtol=0, atol=0.01)  # dB; float32 FFT
  # Clipping the batch as a whole would differ: the quiet segment is > 80 dB below.
  assert mel[1].max() < mel[0].max() - audio.TOP_DB


def test_log_mel_of_a_segment_does_not_depend_on_the_others_computed_with_it():
  # melspec computes CHUNK_SEGMENTS segments at a time: 11 segments cross two chunk edges and end in
  # a partial chunk; each must be bitwise what it is alone, and each clipped to its own maximum.
  from tfds_gtzan import melspec  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  scales = 10.0 ** -rng.integers(0, 6, 11)
  segments = (scales[:, None] * rng.standard_normal((11, audio.SEGMENT_SAMPLES))).astype(np.float32)
  assert len(segments) > 2 * melspec.CHUNK_SEGMENTS
  together = audio.log_mel(segments)
  for i, segment in enumerate(segments):
    np.testing.assert_array_equal(together[i], audio.log_mel(segment[None])[0])


def test_log_mel_of_no_segments():
  assert audio.log_mel(np.zeros((0, audio.SEGMENT_SAMPLES), np.float32)).shape == (
      0, audio.N_MELS, audio.FRAMES)


def test_log_mel_rejects_wrong_shape():
  with pytest.raises(ValueError, match='segments'):
    audio.log_mel(np.zeros((2, 1000), np.float32))


@pytest.mark.parametrize('seconds, expected', [(1.0, 0), (2.0, 1), (4.5, 2), (60.0, 14)])
def test_segment_counts(seconds, expected):
  y = np.arange(int(seconds * audio.SAMPLE_RATE), dtype=np.float32)
  segments = audio.segment(y)
  assert segments.shape == (expected, audio.SEGMENT_SAMPLES)
  np.testing.assert_array_equal(segments.reshape(-1), y[:expected * audio.SEGMENT_SAMPLES])


def test_segment_max_segments():
  assert audio.segment(np.zeros(10 * audio.SEGMENT_SAMPLES), max_segments=3).shape[0] == 3


@pytest.mark.parametrize('max_segments, expected', [(None, 15), (audio.MAX_SEGMENTS, 14), (3, 3), (0, 0)])
def test_segment_features_of_blocks_equal_those_of_the_whole(max_segments, expected):
  """Blocks of 0.7 s (segments straddle them) give the whole clip's features, up to the cap, then stop reading."""
  rng = np.random.default_rng(0)
  y = (_tone(30.5) + 0.01 * rng.standard_normal(int(30.5 * audio.SAMPLE_RATE))).astype(np.float32)
  whole = audio.segment_features(y, max_segments)
  assert whole.shape == (expected, audio.N_MELS, audio.FRAMES) and whole.dtype == audio.MEL_DTYPE
  size = int(0.7 * audio.SAMPLE_RATE)
  read = []

  def blocks():
    for start in range(0, len(y), size):
      read.append(start)
      yield y[start:start + size]

  parts = list(audio.segment_features_of_blocks(blocks(), max_segments))
  assert all(len(part) for part in parts)
  # Within one float16 step: BLAS may round a segment's last bit apart in a batch of another size.
  np.testing.assert_allclose(np.concatenate([whole[:0], *parts]).astype(np.float32), whole, atol=2**-4)
  needed = -(-expected * audio.SEGMENT_SAMPLES // size)  # blocks that hold the first `expected` segments
  assert len(read) == (math.ceil(len(y) / size) if max_segments is None else needed)


def test_load_audio_mono_wav_is_unchanged(tmp_path):
  y = _tone(3.0)
  sf.write(tmp_path / 'a.wav', y, audio.SAMPLE_RATE, subtype='FLOAT')
  loaded = audio.load_audio(tmp_path / 'a.wav')
  assert loaded.dtype == np.float32
  np.testing.assert_array_equal(loaded, y)


@pytest.mark.parametrize('name, subtype', [('a.au', 'PCM_16'), ('a.flac', 'PCM_16'),
                                           ('a.ogg', 'VORBIS')])
def test_load_audio_other_formats(tmp_path, name, subtype):
  y = _tone(3.0)
  sf.write(tmp_path / name, y, audio.SAMPLE_RATE, subtype=subtype)
  loaded = audio.load_audio(tmp_path / name)
  assert abs(len(loaded) - len(y)) < 2048  # Vorbis may pad the end.
  assert np.corrcoef(loaded[:len(y) - 2048], y[:len(y) - 2048])[0, 1] > 0.99


def test_load_audio_mixes_stereo_and_resamples(tmp_path):
  left, right = _tone(3.0, rate=44100), np.zeros(3 * 44100, np.float32)
  sf.write(tmp_path / 'stereo.wav', np.stack([left, right], axis=1), 44100)
  loaded = audio.load_audio(tmp_path / 'stereo.wav')
  assert loaded.shape == (3 * audio.SAMPLE_RATE,)
  expected = _tone(3.0) / 2  # Mono is the mean of the channels.
  np.testing.assert_allclose(loaded[1000:-1000], expected[1000:-1000], atol=2e-3)


def test_load_audio_reads_only_max_seconds(tmp_path, monkeypatch):
  sf.write(tmp_path / 'long.wav', _tone(40.0, rate=44100), 44100)
  requested = []
  read = sf.SoundFile.read

  def spy(self, frames=-1, *args, **kwargs):
    requested.append(frames)
    return read(self, frames, *args, **kwargs)

  monkeypatch.setattr(sf.SoundFile, 'read', spy)
  loaded = audio.load_audio(tmp_path / 'long.wav', max_seconds=28)
  assert requested == [28 * 44100]  # Not the whole file.
  assert len(loaded) == 28 * audio.SAMPLE_RATE


def test_log_mel_from_file(tmp_path):
  y = _tone(31.0)
  sf.write(tmp_path / 'a.wav', y, audio.SAMPLE_RATE, subtype='FLOAT')
  mel = audio.log_mel_from_file(tmp_path / 'a.wav')
  assert mel.shape == (audio.MAX_SEGMENTS, audio.N_MELS, audio.FRAMES)
  np.testing.assert_allclose(mel, audio.log_mel(audio.segment(y)), atol=1e-4)


@pytest.mark.parametrize('content, reason', [
    (b'', 'empty file'),
    (b'This is not audio.\n', 'not a RIFF/WAV file'),
    (b'RIFF\x24\x00\x01\x00WAVEfmt ', 'truncated WAV file'),
])
def test_load_audio_errors_name_file_and_problem(tmp_path, content, reason):
  path = tmp_path / 'jazz.00054.wav'
  path.write_bytes(content)
  with pytest.raises(audio.AudioError, match=reason) as error:
    audio.load_audio(path)
  assert isinstance(error.value, ValueError)
  assert str(path) in str(error.value) and '\n' not in str(error.value)
  assert error.value.path == str(path)


def test_load_audio_missing_file(tmp_path):
  with pytest.raises(audio.AudioError, match='no such file'):
    audio.load_audio(tmp_path / 'missing.wav')


def test_feature_params_are_consistent():
  params = audio.FEATURE_PARAMS
  assert params['frames'] == 1 + math.floor(
      params['segment_seconds'] * params['sample_rate'] / params['hop_length']) == 173
  assert params['dtype'] == 'float16'
