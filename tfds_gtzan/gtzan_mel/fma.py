"""The Free Music Archive (FMA; Defferrard et al., ISMIR 2017, github.com/mdeff/fma) as a `catalog.Listing`.

  listing = fma.listing(manual_dir, 'small')   # or 'medium', 'large'

manual_dir holds what the FMA's zip archives unpack to:

  <manual_dir>/fma_metadata/tracks.csv       # from fma_metadata.zip
  <manual_dir>/fma_<size>/000/000002.mp3     # from fma_<size>.zip: <first 3 digits>/<6-digit track id>.mp3

tracks.csv is pandas' CSV of a table with two-level columns: row 1 names the column group
(`album`, `artist`, `set`, `track`; empty above the index), row 2 the column within it
(`id`, `split`, `subset`, `genre_top`...), row 3 is `track_id` followed by empty cells, then
one row per track (106,574), its id in the first column. Fields hold quoted commas and
newlines (biographies, titles). Four columns are read, found by their (group, name) pair
since `album` and `artist` both have an `id`: (set, subset), (set, split), (track, genre_top)
and (artist, id).

Subsets nest: (set, subset) gives a track's smallest subset, so fma_small holds the tracks
whose subset is small, fma_medium those whose subset is small or medium, fma_large all.
An entry's `label` is its (track, genre_top) (8 genres in small, 16 in medium and large),
its `group` the artist id (FMA's split keeps each artist in one split), its `split` FMA's
own (training, validation, test: 'train', 'validation', 'test'), its `track` the 6-digit
id and its `file` `fma_<size>/<id[:3]>/<id>.mp3`.

Skipped, with the reason: a track of the subset without genre_top (many large-only tracks
have none), with a split that is not one of the three, or whose audio file is not in the
tree. Audio is not decoded here: an empty or unreadable clip is rejected later by the
decoder, like any bad file. Counted in `notes`: rows of larger subsets left out, audio files
in the tree that tracks.csv does not list for the subset, other files (each archive's
README.txt and checksums). fma_full (untrimmed audio) is not supported.

This module reads names, sizes and CSV text only; it imports neither pandas, librosa nor TFDS.
"""

from __future__ import annotations

import contextlib
import csv
import os
import pathlib
import stat as stat_module
from collections.abc import Iterator
from typing import Any

from tfds_gtzan.gtzan_mel import catalog

SIZES = ('small', 'medium', 'large')  # Each holds the one before it.
TRACKS_CSV = 'fma_metadata/tracks.csv'
# The columns read, by the (group, name) pair of tracks.csv's two header rows.
SUBSET, SPLIT = ('set', 'subset'), ('set', 'split')
GENRE_TOP, ARTIST_ID = ('track', 'genre_top'), ('artist', 'id')
COLUMNS = (SUBSET, SPLIT, GENRE_TOP, ARTIST_ID)
LAYOUT = (f'<manual_dir>/{TRACKS_CSV} (from fma_metadata.zip) and <manual_dir>/fma_<size>/000/000002.mp3 '
          f'(from fma_<size>.zip; size one of {", ".join(SIZES)})')

# Clips of fma_small that hold no audio at all (wrong durations in the FMA's metadata cut them past the
# end of the song): the maintainer's word in https://github.com/mdeff/fma/issues/44 (2020-07-20),
# which points to the errata at https://github.com/mdeff/fma/wiki and https://github.com/mdeff/fma/issues/41.
# For reference only: they are listed like any other track; the builder skips them when they fail to decode.
NO_AUDIO_IN_SMALL = ('099134', '108925', '133297')

_FIELD_SIZE_LIMIT = 1 << 24  # Room for long free-form fields (biographies) past csv's default of 128 KiB.


def file_of(track: str, size: str) -> str:
  """'fma_small/000/000002.mp3': where a track's clip lies in the fma_<size> tree, relative to manual_dir."""
  return f'fma_{size}/{track[:3]}/{track}.mp3'


def listing(manual_dir: str | os.PathLike[str] | None, size: str) -> catalog.Listing:
  """The tracks of FMA's `size` subset (those of the smaller subsets included), one entry per clip found.

  Reads tracks.csv in one streaming pass, keeping four columns, and lists the fma_<size>
  tree once (names and sizes). Raises `catalog.CollectionError` when size is not one of
  small, medium, large, or manual_dir, tracks.csv (or one of its four columns) or the
  fma_<size> folder is missing.
  """
  if size not in SIZES:
    raise catalog.CollectionError(f'FMA size {size!r} is not one of {", ".join(SIZES)} (fma_full is not '
                                  'supported): expected ' + LAYOUT + '.')
  root = catalog.checked_root(manual_dir, LAYOUT)
  csv_path = root / TRACKS_CSV
  if not csv_path.is_file():
    raise catalog.CollectionError(f'{csv_path} does not exist: expected {LAYOUT}.')
  tree = root / f'fma_{size}'
  if not tree.is_dir():
    others = [f'fma_{s}' for s in SIZES if s != size and (root / f'fma_{s}').is_dir()]
    hint = f' (found {", ".join(others)}: pick that size)' if others else ''
    raise catalog.CollectionError(f'{tree} does not exist{hint}: expected {LAYOUT}.')
  audio, notes = _tree(tree)
  subsets = SIZES[:SIZES.index(size) + 1]
  skipped: list[dict[str, str]] = []
  entries: list[catalog.Entry] = []
  listed: set[str] = set()
  counts = dict.fromkeys(('tracks_csv_rows', 'rows_in_other_subsets', 'rows_without_subset',
                           'without_genre_top', 'unknown_split', 'missing_audio'), 0)
  for line, track_id, value in _rows(csv_path):
    counts['tracks_csv_rows'] += 1
    if not (track_id.isascii() and track_id.isdigit()):
      skipped.append({'file': f'{TRACKS_CSV} line {line}',
                      'reason': f'track_id {track_id!r} is not a number'})
      continue
    track = f'{int(track_id):06d}'
    if value[SUBSET] not in subsets:
      counts['rows_in_other_subsets' if value[SUBSET] in SIZES else 'rows_without_subset'] += 1
      continue
    file = file_of(track, size)
    listed.add(file)
    if not value[GENRE_TOP]:
      counts['without_genre_top'] += 1
      skipped.append({'file': file, 'reason': 'no genre_top in tracks.csv'})
      continue
    split = catalog.SPLIT_ALIASES.get(value[SPLIT].lower())
    if split is None:
      counts['unknown_split'] += 1
      skipped.append({'file': file,
                      'reason': f'split {value[SPLIT]!r} in tracks.csv is not training, validation or test'})
      continue
    found = audio.get(file)
    if not isinstance(found, int):
      counts['missing_audio'] += 1
      skipped.append({'file': file, 'reason': found or 'audio file missing'})
      continue
    entries.append(catalog.Entry(file, os.fspath(root / file), track, value[GENRE_TOP], value[ARTIST_ID],
                                 split, found))
  entries = catalog.deduplicated(entries, skipped)
  notes.update(counts)
  notes['unlisted_audio_files'] = len(audio.keys() - listed)
  notes['artists_in_several_splits'] = len(catalog.groups_in_several_splits(entries))
  return catalog.Listing(entries, skipped, index=TRACKS_CSV, notes=notes)


@contextlib.contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
  old = csv.field_size_limit()
  csv.field_size_limit(max(old, limit))
  try:
    yield
  finally:
    csv.field_size_limit(old)


def _rows(path: pathlib.Path) -> Iterator[tuple[int, str, dict[tuple[str, str], str]]]:
  """(line number, track_id cell, {column: value}) for each data row of tracks.csv, values stripped.

  The header's first two rows give each column's (group, name); the third row (`track_id`
  and empty cells, the index's name) is passed over. Blank lines are ignored; a short row
  reads '' for its missing cells. The line number is the row's last line (fields may hold newlines).
  """
  try:
    with open(path, newline='', encoding='utf-8-sig') as f, _field_size_limit(_FIELD_SIZE_LIMIT):
      reader = csv.reader(f)
      header = [next(reader, None), next(reader, None)]
      if header[1] is None:
        raise catalog.CollectionError(f'{path} has fewer than 2 header rows: expected the (group, name) '
                                      f'header rows of {LAYOUT}.')
      pairs = [(g.strip(), n.strip()) for g, n in zip(*header)]
      missing = [f'({g}, {n})' for g, n in COLUMNS if (g, n) not in pairs]
      if missing:
        raise catalog.CollectionError(f'{path}: the header lacks the column(s) {", ".join(missing)} (found '
                                      f'{len(pairs)} columns): expected the two-row header of {LAYOUT}.')
      column = {pair: pairs.index(pair) for pair in COLUMNS}
      third = True
      for row in reader:
        if not any(cell.strip() for cell in row):
          continue
        first = row[0].strip()
        if third and first == 'track_id' and not any(cell.strip() for cell in row[1:]):
          third = False
          continue
        third = False
        value = {pair: (row[i].strip() if i < len(row) else '') for pair, i in column.items()}
        yield reader.line_num, first, value
  except UnicodeDecodeError as e:
    raise catalog.CollectionError(f'{path} is not UTF-8 text (byte {e.start}).') from None
  except csv.Error as e:
    raise catalog.CollectionError(f'{path}: not a CSV file ({e}).') from None


def _tree(tree: pathlib.Path) -> tuple[dict[str, int | str], dict[str, Any]]:
  """{file relative to manual_dir: its size, or why it cannot be read} for every .mp3 in `<tree>/<folder>/`.

  With the counts of what else the tree holds: other files (each archive's README.txt and
  checksums, hidden files such as macOS's `._000002.mp3`) and folders that cannot be read
  (their tracks are then skipped as having no audio file).
  """
  audio: dict[str, int | str] = {}
  notes = {'other_files': 0, 'unreadable_folders': 0}
  try:
    with os.scandir(tree) as it:
      top = sorted(it, key=lambda e: e.name)
  except OSError as e:
    raise catalog.CollectionError(f'{tree} cannot be read ({e.strerror}): expected {LAYOUT}.') from None
  for folder in top:
    if folder.name.startswith('.') or not folder.is_dir():
      notes['other_files'] += 1
      continue
    try:
      with os.scandir(folder.path) as it:
        files = list(it)
    except OSError:
      notes['unreadable_folders'] += 1
      continue
    for entry in files:
      if entry.name.startswith('.') or not entry.name.lower().endswith('.mp3'):
        notes['other_files'] += 1
        continue
      file = f'{tree.name}/{folder.name}/{entry.name}'
      try:
        st = entry.stat()
      except OSError as e:
        audio[file] = f'audio file unreadable ({e.strerror})'
        continue
      audio[file] = st.st_size if stat_module.S_ISREG(st.st_mode) else 'audio path is not a file'
  return audio, notes
