"""Where the clips of a `gtzan_mel` build come from: a GTZAN folder, the synthetic set, or a collection.

A GTZAN manual_dir may hold the tarball's layout, `genres/<genre>/<genre>.NNNNN.wav`,
or the genre folders directly, `<genre>/<genre>.NNNNN.wav`; older copies use `.au`.
Any other labelled collection (label folders, a manifest, FMA) is listed by `catalog`
and `fma`; `collection_clips` turns its entries into clips.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from tfds_gtzan import audio
from tfds_gtzan import synthetic
from tfds_gtzan.gtzan_mel import catalog

# The ten GTZAN genres; a label is an index into this tuple.
GENRES = ('blues', 'classical', 'country', 'disco', 'hiphop', 'jazz', 'metal', 'pop', 'reggae',
          'rock')
AUDIO_EXTENSIONS = ('.wav', '.au', '.flac', '.mp3', '.ogg')  # In order of preference.
EXPECTED_LAYOUT = 'genres/<genre>/<genre>.NNNNN.wav'


# The manual_dir is missing, empty, has no genre folder or too few readable clips, or a
# collection cannot be listed (`catalog.CollectionError`: the same class). The message is one line.
ManualDirError = catalog.CollectionError


@dataclasses.dataclass(frozen=True)
class AudioFileClip:
  """A clip read from an audio file; `file` is its path relative to the manual_dir.

  GTZAN's clips (`spread` 0) give their first segments, from the start. A collection's
  tracks (`spread` K > 0) give at most K segments spread evenly over the whole track
  (`feature_sets.spread`), decoded up to `feature_sets.MAX_TRACK_SECONDS`.
  """
  track: str  # 'blues.00000', unique within a build.
  label: int
  path: str
  file: str
  group: str = ''  # Artist or album; '' when the collection has none.
  split: str | None = None  # The collection's own split of the track, if it has one.
  spread: int = 0  # 0: the first segments; K: at most K segments spread over the whole track.

  def waveform(self, sr: int = audio.SAMPLE_RATE,
               max_seconds: float | None = audio.MAX_SEGMENTS * audio.SEGMENT_SECONDS) -> np.ndarray:
    """The first `max_seconds` (default: the mel set's 28 s) of the file, mono at `sr` Hz."""
    return audio.load_audio(self.path, sr, max_seconds=max_seconds)


@dataclasses.dataclass(frozen=True)
class SyntheticClip:
  """A clip of `tfds_gtzan.synthetic`, generated on demand."""
  track: str
  label: int
  index: int
  group: str = ''
  split: str | None = None
  spread: int = 0

  @property
  def file(self) -> str:
    return self.track

  def waveform(self, sr: int = synthetic.SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """The whole clip (or its first `max_seconds`), generated at 22050 Hz, resampled to `sr` Hz
    as `audio.load_audio` resamples a file."""
    y = synthetic.generate_clip(self.label, self.index)
    if sr != synthetic.SAMPLE_RATE:
      y = audio.resample(y, synthetic.SAMPLE_RATE, sr).astype(np.float32, copy=False)
    return y if max_seconds is None else y[:math.ceil(max_seconds * sr)]


Clip = AudioFileClip | SyntheticClip


@dataclasses.dataclass(frozen=True)
class ManualDirContents:
  """The audio files found in a manual_dir."""
  clips: list[AudioFileClip]
  duplicates: list[AudioFileClip]  # Same track name as a clip in `clips`.
  unknown_genre_files: list[str]  # Relative paths of files in non-GTZAN folders.


def synthetic_clips() -> list[SyntheticClip]:
  """All clips of the synthetic set, in (genre, index) order."""
  return [SyntheticClip(synthetic.track_name(label, index), label, index)
          for label in range(len(GENRES)) for index in range(synthetic.CLIPS_PER_GENRE)]


def collection_clips(entries: Sequence[catalog.Entry], class_names: Sequence[str], spread: int
                     ) -> list[AudioFileClip]:
  """A collection's entries as clips labelled by index into `class_names`, segments spread over each track."""
  index = {name: i for i, name in enumerate(class_names)}
  return [AudioFileClip(e.track, index[e.label], e.path, e.file, e.group, e.split, spread) for e in entries]


def gtzan_entries(clips: Sequence[AudioFileClip]) -> list[catalog.Entry]:
  """GTZAN clips as catalog entries (with their sizes), for the build's provenance record."""
  return [catalog.Entry(c.file, c.path, c.track, GENRES[c.label], size=os.path.getsize(c.path)) for c in clips]


def find_clips(manual_dir: str | os.PathLike[str]) -> ManualDirContents:
  """Lists the GTZAN audio files under `manual_dir`, sorted by path.

  Raises:
    ManualDirError: `manual_dir` is missing or empty, or has no genre folder.
  """
  root = pathlib.Path(manual_dir)
  genre_root = root / 'genres' if (root / 'genres').is_dir() else root
  folders = sorted(p for p in genre_root.iterdir() if p.is_dir()) if root.is_dir() else []
  if not any(folder.name in GENRES for folder in folders):
    raise ManualDirError(f'manual_dir {root} {_layout_problem(root)}: expected GTZAN as '
                         f'{root / EXPECTED_LAYOUT} (or {root}/<genre>/...).')
  clips, duplicates, unknown = [], [], []
  tracks = set()
  for folder in folders:
    for path in _audio_files(folder):
      file = path.relative_to(root).as_posix()
      if folder.name not in GENRES:
        unknown.append(file)
        continue
      clip = AudioFileClip(path.stem, GENRES.index(folder.name), os.fspath(path), file)
      (duplicates if clip.track in tracks else clips).append(clip)
      tracks.add(clip.track)
  return ManualDirContents(clips, duplicates, unknown)


def _layout_problem(root: pathlib.Path) -> str:
  if not root.exists():
    return 'does not exist'
  if not root.is_dir():
    return 'is not a directory'
  if not any(root.iterdir()):
    return 'is empty'
  return 'has no GTZAN genre folder'


def _audio_files(folder: pathlib.Path) -> list[pathlib.Path]:
  """Audio files in `folder` (not hidden), the preferred extension first for equal names."""
  files = [p for p in folder.iterdir()
           if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith('.') and p.is_file()]
  return sorted(files, key=lambda p: (p.stem, AUDIO_EXTENSIONS.index(p.suffix.lower())))
