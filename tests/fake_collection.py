"""A small fake labelled collection for tests: four made-up labels, three artists each, as folders and a manifest.

  <root>/<label>/<label>-artist<a>/track<t>.flac    4.5 s tones (2 segments), one 41 s track (LONG_TRACK)
  <root>/manifest.csv                               path,label,group (group: the artist folder)

Each label's tone has its own pitch, so a tiny model learns them in one epoch.
"""

from __future__ import annotations

import csv
import pathlib

import numpy as np
import soundfile as sf

import fake_gtzan

LABELS = ('ambient', 'drill', 'fado', 'gqom')  # sorted: label i is LABELS[i]
ARTISTS_PER_LABEL = 3
TRACKS_PER_ARTIST = 2
SAMPLE_RATE = 22050
SECONDS = 4.5  # 2 whole segments
LONG_TRACK = 'ambient/ambient-artist0/track0.flac'
LONG_SECONDS = 41.0  # 20 whole segments: a build keeps 15 of them, spread over the track


def files() -> list[tuple[str, str, str]]:
  """(path relative to the root, label, group) of every track, in path order."""
  return [(f'{label}/{label}-artist{a}/track{t}.flac', label, f'{label}-artist{a}')
          for label in LABELS for a in range(ARTISTS_PER_LABEL) for t in range(TRACKS_PER_ARTIST)]


def write_fake_collection(root: pathlib.Path, *, manifest_rows: list[list[str]] | None = None) -> pathlib.Path:
  """Writes the tracks and manifest.csv (`manifest_rows` instead of the default rows, header included); returns root."""
  for index, (file, label, _) in enumerate(files()):
    seconds = LONG_SECONDS if file == LONG_TRACK else SECONDS
    samples = fake_gtzan.clip(LABELS.index(label), index % 7, SAMPLE_RATE, 1, seconds=seconds)
    if file == LONG_TRACK:  # loud all through, so every 2 s window has its own content
      samples = samples + 0.2 * np.sin(np.linspace(0, 300, len(samples)))[:, None].astype(np.float32)
    path = root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, SAMPLE_RATE, subtype='PCM_16')
  rows = manifest_rows if manifest_rows is not None else [['path', 'label', 'group']] + [list(f) for f in files()]
  write_manifest(root, rows)
  return root


def write_manifest(root: pathlib.Path, rows: list[list[str]]) -> None:
  with open(root / 'manifest.csv', 'w', newline='', encoding='utf-8') as f:
    csv.writer(f).writerows(rows)
