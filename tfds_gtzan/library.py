"""A music library as predict walks it (and the dataset builder's `folders` layout): audio files under folders, in a fixed order, with their keys.

  found = walk(['Music', 'extra.mp3'])
  found.entries[0].key     # ('Music/a/01.flac', 5123456, '2026-11-30T12:34:56.123456Z'): path, size, mtime
  found.notes              # folders not entered: symlink loops, unreadable folders

Each PATH is a file (taken whatever its name, as predict always took them) or a folder,
walked recursively for the files whose extension is one the decoder reads
(`audio_extensions`). The order is fixed: PATHs as given, and inside a folder its entries
sorted by name (files and subfolders together, by Python's string order) depth first, so the
same library always gives the same list, and so the same output. Symlinks are followed; a
folder reached again through a symlink (a loop, or a second link to a folder already
walked) is skipped and reported, so is a folder that cannot be read: `WalkNote`s, never
an exception. A file named twice is listed once.

An entry's key is its path as walked (the PATH as typed joined with the names below it),
its size in bytes and its modification time (UTC, to the microsecond), as `predict --resume`
matches rows. This module imports neither JAX nor librosa.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import stat as stat_module
from collections.abc import Iterable, Sequence

# What libsndfile reads (every format of `soundfile.available_formats()`, by its usual
# extensions), plus what audioread's FFmpeg backend adds where ffmpeg is installed.
SNDFILE_EXTENSIONS = frozenset({
    'wav', 'wave', 'bwf', 'rf64', 'w64', 'flac', 'ogg', 'oga', 'opus', 'mp3', 'aif', 'aiff', 'aifc',
    'au', 'snd', 'caf', 'sd2', 'ircam', 'sf', 'nist', 'sph', 'voc', 'xi', 'htk', 'pvf', 'paf', 'svx',
    'mat', 'mpc', 'avr', 'wve'})
FFMPEG_EXTENSIONS = frozenset({'m4a', 'mp4', 'm4b', 'aac', 'wma', 'webm', 'mka', 'mkv', 'ape', 'wv',
                               'ac3', 'amr', 'mp2', 'alac', 'dsf', 'tta'})


def audio_extensions() -> frozenset[str]:
  """The file extensions (lower case, no dot) of the formats `tfds_gtzan.audio.load_audio` decodes here."""
  extensions = SNDFILE_EXTENSIONS
  try:
    import audioread  # pylint: disable=g-import-not-at-top  (librosa's fallback decoder)
    if any('ffdec' in backend.__module__ for backend in audioread.available_backends()):
      extensions |= FFMPEG_EXTENSIONS
  except ImportError:
    pass
  return extensions


def format_mtime(mtime_ns: int) -> str:
  """'2026-11-30T12:34:56.123456Z': a modification time in UTC, exact to the microsecond."""
  seconds, nanoseconds = divmod(mtime_ns, 10**9)
  when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
  return f'{when:%Y-%m-%dT%H:%M:%S}.{nanoseconds // 1000:06d}Z'


@dataclasses.dataclass(frozen=True)
class Entry:
  """One file to tag. `size` and `mtime` are None where it could not be stat'ed (`error` says why)."""

  path: str
  size: int | None = None
  mtime: str | None = None
  error: str | None = None

  @property
  def key(self) -> tuple[str, int | None, str | None]:
    return self.path, self.size, self.mtime


@dataclasses.dataclass(frozen=True)
class WalkNote:
  """A folder the walk did not enter: `failed` when its files are missing from the output (unreadable)."""

  path: str
  reason: str
  failed: bool

  def __str__(self) -> str:
    return f'{self.path}: {self.reason}'


def entry_of(path: str, st: os.stat_result | None = None) -> Entry:
  """The entry of one file, stat'ed (following symlinks) unless `st` is given."""
  try:
    st = os.stat(path) if st is None else st
  except FileNotFoundError:
    return Entry(path, error='broken symlink' if os.path.islink(path) else 'no such file')
  except OSError as e:
    return Entry(path, error=f'unreadable ({e.strerror})')
  return Entry(path, st.st_size, format_mtime(st.st_mtime_ns))


@dataclasses.dataclass(frozen=True)
class Walk:
  """What `walk` found: the files to tag in walk order, the folders not entered, the other files left out."""

  entries: list[Entry]
  notes: list[WalkNote]
  skipped: int  # files in the folders whose extension is not an audio format's
  hidden: int = 0  # files and folders left out by `skip_hidden`

  @property
  def failed(self) -> list[WalkNote]:
    return [note for note in self.notes if note.failed]


def walk(paths: Sequence[str], extensions: Iterable[str] | None = None, *, skip_hidden: bool = False) -> Walk:
  """The files to tag under `paths` in walk order (module docstring), and the folders not entered.

  `extensions`: the names to keep in folders (lower case, no dot); None: `audio_extensions()`.
  `skip_hidden`: inside folders, leave out (and count) files and folders whose name starts with
  '.', such as macOS's `._song.mp3` resource forks (the dataset builder does; predict tags all).
  """
  extensions = frozenset(e.lower().lstrip('.') for e in (audio_extensions() if extensions is None else extensions))
  entries: list[Entry] = []
  notes: list[WalkNote] = []
  seen_files: set[str] = set()
  walked: dict[tuple[int, int], str] = {}  # (device, inode) of each folder entered -> its path
  skipped = hidden = 0

  def add(entry: Entry) -> None:
    if entry.path not in seen_files:
      seen_files.add(entry.path)
      entries.append(entry)

  def visit(folder: str, ancestors: tuple[tuple[int, int], ...], st: os.stat_result) -> None:
    nonlocal skipped, hidden
    ident = (st.st_dev, st.st_ino)
    if ident in ancestors:
      notes.append(WalkNote(folder, f'symlink loop (back to {walked[ident]}): skipped', False))
      return
    if ident in walked:
      notes.append(WalkNote(folder, f'same folder as {walked[ident]}, already walked: skipped', False))
      return
    walked[ident] = folder
    try:
      with os.scandir(folder) as it:
        children = sorted(it, key=lambda e: e.name)
    except OSError as e:
      notes.append(WalkNote(folder, f'unreadable folder ({e.strerror})', True))
      return
    for child in children:
      if skip_hidden and child.name.startswith('.'):
        hidden += 1
        continue
      path = os.path.join(folder, child.name)
      try:
        child_st = child.stat()  # follows symlinks
      except OSError:
        child_st = None
      if child_st is not None and stat_module.S_ISDIR(child_st.st_mode):
        visit(path, ancestors + (ident,), child_st)
      elif os.path.splitext(child.name)[1].lower().lstrip('.') in extensions:
        add(entry_of(path, child_st))  # None: broken symlink or unreadable, says entry_of
      else:
        skipped += 1

  for path in paths:
    try:
      st = os.stat(path)
    except OSError:
      st = None
    if st is not None and stat_module.S_ISDIR(st.st_mode):
      visit(path, (), st)
    else:
      add(entry_of(path, st))
  return Walk(entries, notes, skipped, hidden)
