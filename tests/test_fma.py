"""`tfds_gtzan.gtzan_mel.fma.listing` of a small fake FMA: counts, skips, fields and collection errors."""

from __future__ import annotations

import collections
import os
import pathlib

import pytest

import fake_fma
from tfds_gtzan.gtzan_mel import catalog
from tfds_gtzan.gtzan_mel import fma


@pytest.fixture(scope='module')
def fake(tmp_path_factory):
  root = tmp_path_factory.mktemp('fma')
  return root, fake_fma.write_fake_fma(root)


@pytest.mark.parametrize('size', fma.SIZES)
def test_counts_per_split_and_genre(fake, size):
  root, expected = fake
  listing = fma.listing(root, size)
  assert dict(collections.Counter(e.split for e in listing.entries)) == expected[size]['splits']
  assert dict(collections.Counter(e.label for e in listing.entries)) == expected[size]['genres']
  assert [e.track for e in listing.entries] == expected[size]['tracks']
  assert listing.class_names == sorted(expected[size]['genres'])
  assert listing.index == 'fma_metadata/tracks.csv'


def test_small_and_medium_exactly(fake):
  """The fake's own numbers, so a mistake in fake_fma's bookkeeping cannot hide one in fma."""
  root, _ = fake
  small, medium = fma.listing(root, 'small'), fma.listing(root, 'medium')
  assert collections.Counter(e.split for e in small.entries) == {'train': 4, 'validation': 2, 'test': 1}
  assert collections.Counter(e.label for e in small.entries) == {'Hip-Hop': 3, 'Pop': 4}
  assert collections.Counter(e.split for e in medium.entries) == {'train': 5, 'validation': 2, 'test': 4}
  assert collections.Counter(e.label for e in medium.entries) == {'Hip-Hop': 4, 'Pop': 5,
                                                                   'Old-Time / Historic': 2}


@pytest.mark.parametrize('size', fma.SIZES)
def test_skips_and_notes(fake, size):
  root, expected = fake
  listing = fma.listing(root, size)
  reasons = {s['file']: s['reason'] for s in listing.skipped}
  assert len(reasons) == len(listing.skipped)
  assert reasons.keys() == expected[size]['skipped'].keys()
  for file, word in expected[size]['skipped'].items():
    assert word in reasons[file], (file, reasons[file])
  assert reasons[f'fma_{size}/001/001075.mp3'] == 'audio file missing'
  no_genre = 2 if size == 'large' else 0
  assert listing.notes == {
      'tracks_csv_rows': 15, 'rows_in_other_subsets': expected[size]['other_subsets'],
      'rows_without_subset': 0, 'without_genre_top': no_genre, 'unknown_split': 0, 'missing_audio': 1,
      'unlisted_audio_files': expected[size]['unlisted'], 'other_files': 2, 'unreadable_folders': 0,
      'artists_in_several_splits': 0}


def test_large_skips_tracks_without_genre_top(fake):
  root, _ = fake
  reasons = {s['file']: s['reason'] for s in fma.listing(root, 'large').skipped}
  assert reasons == {'fma_large/000/000141.mp3': 'no genre_top in tracks.csv',
                     'fma_large/012/012000.mp3': 'no genre_top in tracks.csv',
                     'fma_large/001/001075.mp3': 'audio file missing'}


def test_entry_fields(fake):
  root, _ = fake
  by_track = {e.track: e for e in fma.listing(root, 'medium').entries}
  entry = by_track['000140']  # Artist 54, album 60: the group is the (artist, id) column, not (album, id).
  file = 'fma_medium/000/000140.mp3'
  assert entry == catalog.Entry(file=file, path=os.path.join(root, file), track='000140', label='Hip-Hop',
                                group='54', split='validation', size=os.path.getsize(root / file))
  assert by_track['001102'].file == 'fma_medium/001/001102.mp3'
  assert {e.track: e.group for e in by_track.values()} == {
      fake_fma.tid(t): str(artist) for t, artist, _, subset, _, _ in fake_fma.TRACKS
      if subset != 'large' and t != fake_fma.MISSING}
  # The text file named .mp3 stays: only the decoder can tell it is not audio.
  assert by_track['000020'].size == len('This is not audio.\n')
  assert not catalog.groups_in_several_splits(list(by_track.values()))


def test_quoted_comma_and_newline_and_column_order(tmp_path):
  """Columns found by (group, name) wherever they are; quoted commas, quotes and newlines inside fields."""
  (tmp_path / 'fma_metadata').mkdir()
  (tmp_path / 'fma_metadata' / 'tracks.csv').write_text(
      ',track,artist,track,set,album,set,artist\n'
      ',title,id,genre_top,subset,id,split,bio\n'
      'track_id,,,,,,,\n'
      '2,"Food, Pt. 2",7,Hip-Hop,small,9,training,"<p>Line one,\nline two</p>"\n'
      '3,"Electric ""Ave"",\n(remix)",8,Rock,small,9,test,\n'
      '\n'
      '4,Other,8,Rock,medium,9,test,\n'
      '5,Odd,8,Rock,small,9,holdout,"a,\n\nb"\n'
      'x7,Bad id,8,Rock,small,9,test,\n', encoding='utf-8')
  for track in ('000002', '000003', '000005'):
    (tmp_path / 'fma_small' / '000').mkdir(parents=True, exist_ok=True)
    (tmp_path / 'fma_small' / '000' / f'{track}.mp3').write_bytes(b'ID3')
  listing = fma.listing(tmp_path, 'small')
  assert [(e.track, e.label, e.group, e.split, e.size) for e in listing.entries] == [
      ('000002', 'Hip-Hop', '7', 'train', 3), ('000003', 'Rock', '8', 'test', 3)]
  assert listing.skipped == [
      {'file': 'fma_small/000/000005.mp3',
       'reason': "split 'holdout' in tracks.csv is not training, validation or test"},
      {'file': 'fma_metadata/tracks.csv line 13', 'reason': "track_id 'x7' is not a number"}]
  assert listing.notes['tracks_csv_rows'] == 5
  assert listing.notes['rows_in_other_subsets'] == 1


def _header_without_split(root: pathlib.Path) -> None:
  (root / 'fma_metadata').mkdir()
  (root / 'fma_metadata' / 'tracks.csv').write_text(',artist,set,track\n,id,subset,genre_top\ntrack_id,,,\n')
  (root / 'fma_small').mkdir()


@pytest.mark.parametrize('case, size, words', [
    ('no manual_dir', 'small', ['nope', 'does not exist']),
    ('no tracks.csv', 'small', ['fma_metadata/tracks.csv', 'does not exist']),
    ('header lacks a column', 'small', ['fma_metadata/tracks.csv', '(set, split)']),
    ('no tree', 'medium', ['fma_medium', 'does not exist', 'found fma_small']),
    ('no such size', 'full', ["'full'", 'small, medium, large']),
])
def test_collection_errors(tmp_path, case, size, words):
  manual_dir = tmp_path / 'nope' if case == 'no manual_dir' else tmp_path
  if case == 'no tracks.csv':
    (tmp_path / 'fma_small').mkdir()
  elif case == 'header lacks a column':
    _header_without_split(tmp_path)
  elif case == 'no tree':
    fake_fma.write_fake_fma(tmp_path, sizes=('small',))
  with pytest.raises(catalog.CollectionError) as error:
    fma.listing(manual_dir, size)
  message = str(error.value)
  assert '\n' not in message
  for word in words:
    assert word in message, (word, message)
  if case != 'no such size':
    assert str(tmp_path) in message
