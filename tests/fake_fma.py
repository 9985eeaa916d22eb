"""A small fake FMA for tests: tracks.csv in the real three-row-header format and short MP3 clips.

Fifteen tracks of 7 artists in the three nested subsets, their splits chosen per artist as
FMA's are. Columns are a few of the real 52, in the real (sorted) order: `album` and
`artist` both have an `id`, and titles, tags and a biography hold quoted commas, quotes and
a newline. Each tree fma_small/, fma_medium/, fma_large/ holds its subset's 3 s 22.05 kHz
mono clips, the archive's README.txt and checksums, one clip tracks.csv does not list
(UNLISTED), and lacks the clip of one listed track (MISSING). Track CORRUPT's clip is a text
file (the listing keeps it: only the decoder can tell). Two large-only tracks have no
genre_top (NO_GENRE).
"""

from __future__ import annotations

import csv
import pathlib
import shutil

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22050
SECONDS = 3.0
SIZES = ('small', 'medium', 'large')
SPLITS = {'training': 'train', 'validation': 'validation', 'test': 'test'}
# (track id, artist id, album id, subset, split, genre_top); an artist's tracks share a split.
TRACKS = (
    (2, 1, 1, 'small', 'training', 'Hip-Hop'),
    (3, 1, 1, 'medium', 'training', 'Hip-Hop'),
    (5, 1, 1, 'small', 'training', 'Hip-Hop'),
    (10, 6, 6, 'small', 'training', 'Pop'),
    (20, 6, 4, 'small', 'training', 'Pop'),
    (140, 54, 60, 'small', 'validation', 'Hip-Hop'),
    (141, 54, 60, 'large', 'validation', ''),
    (148, 61, 66, 'small', 'validation', 'Pop'),
    (1040, 300, 301, 'small', 'test', 'Pop'),
    (1069, 300, 301, 'medium', 'test', 'Pop'),
    (1075, 300, 302, 'small', 'test', 'Hip-Hop'),
    (1102, 320, 330, 'medium', 'test', 'Old-Time / Historic'),
    (1193, 320, 330, 'medium', 'test', 'Old-Time / Historic'),
    (12000, 321, 331, 'large', 'training', ''),
    (12001, 321, 331, 'large', 'training', 'Experimental'),
)
CORRUPT = 20  # Its .mp3 is text.
MISSING = 1075  # Listed, no clip in any tree.
NO_GENRE = (141, 12000)
UNLISTED = 155320  # A clip in every tree that tracks.csv does not list.
HEADER = (('',) + ('album',) * 3 + ('artist',) * 3 + ('set',) * 2 + ('track',) * 3,
          ('', 'comments', 'id', 'title', 'bio', 'id', 'name', 'split', 'subset', 'genre_top', 'tags',
           'title'),
          ('track_id',) + ('',) * 11)


def tid(track: int) -> str:
  return f'{track:06d}'


def write_fake_fma(root: pathlib.Path, sizes: tuple[str, ...] = SIZES) -> dict:
  """Writes the fake FMA under root (fma_metadata/, fma_<size>/ for each size); returns what listings give.

  {size: {'splits': {split: n}, 'genres': {genre_top: n}, 'tracks': [ids], 'skipped': {file: reason word},
  'unlisted': n, 'other_subsets': rows of larger subsets}}, counted from TRACKS and the special tracks above.
  """
  (root / 'fma_metadata').mkdir(parents=True, exist_ok=True)
  with open(root / 'fma_metadata' / 'tracks.csv', 'w', newline='', encoding='utf-8') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerows(HEADER)
    for track, artist, album, subset, split, genre in TRACKS:
      bio = f'<p>Artist {artist}, from "Somewhere",\nsince 2008</p>' if artist == 1 else ''
      writer.writerow([track, 0, album, f'Album {album}, vol. 1', bio, artist, f'Artist {artist}', split,
                       subset, genre, "['lo-fi', 'rap']", f'Track {track}, "live"'])
  clips = {track: _mp3(root / 'clips', track) for track in [t[0] for t in TRACKS] + [UNLISTED]
           if track not in (CORRUPT, MISSING)}
  expected = {}
  for size in sizes:
    tree = root / f'fma_{size}'
    tree.mkdir(exist_ok=True)
    (tree / 'README.txt').write_text('This .zip archive is part of the FMA, a dataset for music analysis.\n')
    (tree / 'checksums').write_text('')
    members = [t for t in TRACKS if SIZES.index(t[3]) <= SIZES.index(size)]
    for track in [t[0] for t in members if t[0] != MISSING] + [UNLISTED]:
      (tree / tid(track)[:3]).mkdir(exist_ok=True)
      if track == CORRUPT:
        (tree / tid(track)[:3] / f'{tid(track)}.mp3').write_text('This is not audio.\n')
      else:
        shutil.copyfile(clips[track], tree / tid(track)[:3] / f'{tid(track)}.mp3')
    kept = [t for t in members if t[0] != MISSING and t[0] not in NO_GENRE]
    skipped = {f'fma_{size}/{tid(t[0])[:3]}/{tid(t[0])}.mp3': 'genre_top' if t[0] in NO_GENRE else 'missing'
               for t in members if t[0] == MISSING or t[0] in NO_GENRE}
    expected[size] = {'splits': _count(SPLITS[t[4]] for t in kept), 'genres': _count(t[5] for t in kept),
                      'tracks': [tid(t[0]) for t in kept], 'skipped': skipped, 'unlisted': 1,
                      'other_subsets': len(TRACKS) - len(members)}
  shutil.rmtree(root / 'clips')
  return expected


def _count(values) -> dict[str, int]:
  counts: dict[str, int] = {}
  for value in values:
    counts[value] = counts.get(value, 0) + 1
  return counts


def _mp3(folder: pathlib.Path, track: int) -> pathlib.Path:
  """A 3 s tone whose pitch depends on the track id, as MP3."""
  folder.mkdir(parents=True, exist_ok=True)
  t = np.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
  y = 0.3 * np.sin(2 * np.pi * (110 + track % 400) * t)
  path = folder / f'{tid(track)}.mp3'
  sf.write(path, y.astype(np.float32), SAMPLE_RATE, format='MP3')
  return path
