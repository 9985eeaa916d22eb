"""Tests for the synthetic GTZAN stand-in (tfds_gtzan/synthetic.py)."""

import re

import librosa
import numpy as np
import pytest

from tfds_gtzan import synthetic

N_GENRES = len(synthetic.GENRES)
N_SAMPLES = int(synthetic.CLIP_SECONDS * synthetic.SAMPLE_RATE)
SEGMENT = 2 * synthetic.SAMPLE_RATE  # the builder's 2 s segments
HELD_OUT = ('validation', 'test')


@pytest.fixture(scope='module')
def clips():
  """All 200 clips at full length (~8 s on 2 cores), generated once."""
  return {(g, i): synthetic.generate_clip(g, i)
          for g in range(N_GENRES) for i in range(synthetic.CLIPS_PER_GENRE)}


def _labels_and_heldout(keys):
  labels = np.array([g for g, _ in keys])
  held_out = np.array([synthetic.split_of(i) in HELD_OUT for _, i in keys])
  return labels, held_out


# ----------------------------------------------------------------------------
# Constants, splits, names
# ----------------------------------------------------------------------------

def test_constants():
  assert synthetic.SAMPLE_RATE == 22050
  assert synthetic.CLIP_SECONDS == 30.0
  assert synthetic.GENRES == ('blues', 'classical', 'country', 'disco', 'hiphop',
                              'jazz', 'metal', 'pop', 'reggae', 'rock')
  assert list(synthetic.GENRES) == sorted(synthetic.GENRES)
  assert synthetic.CLIPS_PER_GENRE == 20
  assert synthetic.SPLIT_COUNTS == {'train': 14, 'validation': 3, 'test': 3}


def test_split_of_matches_split_counts():
  splits = [synthetic.split_of(i) for i in range(synthetic.CLIPS_PER_GENRE)]
  for name, count in synthetic.SPLIT_COUNTS.items():
    assert splits.count(name) == count
  assert sum(synthetic.SPLIT_COUNTS.values()) == synthetic.CLIPS_PER_GENRE
  # Contiguous blocks in the documented order.
  assert splits == ['train'] * 14 + ['validation'] * 3 + ['test'] * 3
  for bad in (-1, synthetic.CLIPS_PER_GENRE):
    with pytest.raises(ValueError):
      synthetic.split_of(bad)


def test_track_name():
  assert synthetic.track_name(0, 0) == 'blues.00000'
  assert synthetic.track_name(9, 19) == 'rock.00019'
  names = {synthetic.track_name(g, i) for g in range(N_GENRES)
           for i in range(synthetic.CLIPS_PER_GENRE)}
  assert len(names) == N_GENRES * synthetic.CLIPS_PER_GENRE
  for name in names:
    match = re.fullmatch(r'([a-z]+)\.(\d{5})', name)
    assert match and match.group(1) in synthetic.GENRES, name
  with pytest.raises(ValueError):
    synthetic.track_name(N_GENRES, 0)


# ----------------------------------------------------------------------------
# Waveforms
# ----------------------------------------------------------------------------

def test_waveform_format(clips):
  for (g, i), x in clips.items():
    assert x.dtype == np.float32, (g, i)
    assert x.shape == (N_SAMPLES,), (g, i)
    assert np.all(np.isfinite(x)), (g, i)
    assert np.max(np.abs(x)) <= 1.0, (g, i)
    assert np.max(np.abs(x)) > 0.01, (g, i)  # not (near) silent


def test_every_segment_has_content(clips):
  """Each 2 s segment the builder cuts carries signal, not just silence."""
  for (g, i), x in clips.items():
    segs = x[:14 * SEGMENT].reshape(14, SEGMENT).astype(np.float64)
    seg_rms = np.sqrt(np.mean(segs**2, axis=1))
    clip_rms = np.sqrt(np.mean(x.astype(np.float64)**2))
    assert np.all(seg_rms > 0.1 * clip_rms), (synthetic.track_name(g, i), seg_rms)


@pytest.mark.parametrize('genre', range(N_GENRES))
def test_deterministic(genre, clips):
  a = synthetic.generate_clip(genre, 5, seed=0)
  np.testing.assert_array_equal(a, clips[(genre, 5)])
  assert not np.array_equal(a, clips[(genre, 6)])
  assert not np.array_equal(a, synthetic.generate_clip(genre, 5, seed=1))


def test_other_rates_and_lengths():
  for g in range(N_GENRES):
    x = synthetic.generate_clip(g, 0, sample_rate=16000, seconds=1.5)
    assert x.dtype == np.float32 and x.shape == (24000,)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0


def test_invalid_arguments():
  with pytest.raises(ValueError):
    synthetic.generate_clip(N_GENRES, 0)
  with pytest.raises(ValueError):
    synthetic.generate_clip(-1, 0)
  with pytest.raises(ValueError):
    synthetic.generate_clip(0, -1)


# ----------------------------------------------------------------------------
# Learnability: not from loudness, yes from time-frequency structure
# ----------------------------------------------------------------------------

def test_loudness_does_not_identify_genre(clips):
  """Nearest class-mean of log RMS (fit on train clips) is near chance."""
  keys = sorted(clips)
  labels, held_out = _labels_and_heldout(keys)
  log_rms = np.array([np.log(np.sqrt(np.mean(clips[k].astype(np.float64)**2)))
                      for k in keys])
  means = np.array([log_rms[~held_out & (labels == g)].mean() for g in range(N_GENRES)])
  pred = np.argmin(np.abs(log_rms[held_out, None] - means[None]), axis=1)
  acc = np.mean(pred == labels[held_out])
  print(f'RMS-only nearest-class-mean accuracy: {acc:.3f}')
  assert acc < 0.4


@pytest.fixture(scope='module')
def segment_features(clips, segments=(1, 7, 12)):
  """Mean, std and mean |time-difference| of a log-mel per 2 s segment.

  The log-mel is centred per segment so the features ignore overall level.
  """
  sr = synthetic.SAMPLE_RATE
  keys = [key for key in sorted(clips) for _ in segments]
  audio = np.stack([clips[key][s * SEGMENT:(s + 1) * SEGMENT]
                    for key in sorted(clips) for s in segments])
  power = np.abs(librosa.stft(audio, n_fft=512, hop_length=256))**2  # (N, F, T)
  mel_basis = librosa.filters.mel(sr=sr, n_fft=512, n_mels=64)
  n, f, t = power.shape
  # One big matrix product (many tiny BLAS calls crawl on a busy 2-core box).
  mel = (mel_basis @ power.transpose(1, 0, 2).reshape(f, n * t)).reshape(-1, n, t)
  logmel = librosa.power_to_db(mel.transpose(1, 0, 2), ref=1.0, top_db=80)
  logmel -= logmel.mean(axis=(1, 2), keepdims=True)
  feats = np.concatenate([logmel.mean(2), logmel.std(2),
                          np.abs(np.diff(logmel, axis=2)).mean(2)], axis=1)
  return keys, feats


def _nearest_centroid(z, labels, train):
  centroids = np.stack([z[train & (labels == g)].mean(0) for g in range(N_GENRES)])
  return np.argmin(((z[:, None] - centroids[None])**2).sum(-1), axis=1)


def _logistic_regression(z, labels, train, steps=300, lr=0.5, l2=1e-3):
  """Softmax regression by full-batch gradient descent (einsum: no BLAS)."""
  z = np.c_[z, np.ones(len(z))]
  w = np.zeros((z.shape[1], N_GENRES))
  onehot = np.eye(N_GENRES)[labels[train]]
  zt = z[train]
  for _ in range(steps):
    logits = np.einsum('nd,dk->nk', zt, w)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    w -= lr * (np.einsum('nd,nk->dk', zt, p - onehot) / len(zt) + l2 * w)
  return np.argmax(np.einsum('nd,dk->nk', z, w), axis=1)


@pytest.mark.parametrize('classifier', [_nearest_centroid, _logistic_regression],
                         ids=['nearest_centroid', 'logistic_regression'])
def test_genre_learnable_from_time_frequency_structure(segment_features, classifier):
  keys, feats = segment_features
  labels, held_out = _labels_and_heldout(keys)
  train = ~held_out
  z = (feats - feats[train].mean(0)) / (feats[train].std(0) + 1e-6)
  pred = classifier(z, labels, train)
  acc = np.mean(pred[held_out] == labels[held_out])
  print(f'{classifier.__name__} segment accuracy on held-out clips: {acc:.3f}')
  assert acc >= 0.8
