"""What a collection of labelled audio holds, before any file is decoded: `Listing`s of `Entry`s.

  listing = folders(manual_dir)      # <manual_dir>/<label>/**/<file>, any label names
  listing = manifest(manual_dir)     # <manual_dir>/manifest.csv: path,label[,group][,split]
  listing = fma.listing(manual_dir, 'small')   # tfds_gtzan.gtzan_mel.fma

An entry is one audio file with its class name (`label`), its `track` id (unique in the
listing: the file's path relative to manual_dir without its extension, or FMA's track id),
its `group` (artist or album: no group is ever in two splits; '' when the source has none)
and, when the source fixes it, its `split`. Rows or files left out before decoding (an empty
label, a missing file, a repeated path, a name that is not UTF-8...) are `skipped`, each with
the reason, so a build's summary names every one. A problem with the collection as a whole
(no manifest, a header without `path` or `label`, a group in two splits of the manifest's own
split column) is a `CollectionError`, one line naming the file.

This module reads names, sizes and CSV text only; it imports neither librosa nor TFDS.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import os
import pathlib
import stat as stat_module
from collections.abc import Iterable, Sequence
from typing import Any

from tfds_gtzan import library

SPLITS = ('train', 'validation', 'test')
# Split names a manifest (or FMA) may use, by the split they mean.
SPLIT_ALIASES = {'train': 'train', 'training': 'train', 'validation': 'validation', 'valid': 'validation',
                 'val': 'validation', 'dev': 'validation', 'test': 'test', 'testing': 'test'}
MANIFEST = 'manifest.csv'
MANIFEST_COLUMNS = ('path', 'label', 'group', 'split')


class CollectionError(FileNotFoundError):
  """The collection cannot be listed: no such folder, no manifest, a malformed header... One line."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One audio file of a collection, with what the collection says of it."""

  file: str  # Its path relative to manual_dir (POSIX separators), as summaries name it.
  path: str  # The path to open.
  track: str  # Unique within a listing: `file` without its extension, or the collection's own id (FMA).
  label: str  # The class name.
  group: str = ''  # Artist, album...: the unit that splits keep whole. '' when none.
  split: str | None = None  # 'train', 'validation' or 'test' when the collection fixes it.
  size: int = 0  # Bytes, for the build's provenance record.


@dataclasses.dataclass
class Listing:
  """The entries of a collection (sorted by track) and what was left out of it, with reasons."""

  entries: list[Entry]
  skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)  # {'file': ..., 'reason': ...}
  index: str | None = None  # The file the labels came from, relative to manual_dir, if not folder names.
  notes: dict[str, Any] = dataclasses.field(default_factory=dict)  # Further counts for the summary.

  @property
  def class_names(self) -> list[str]:
    """The labels of the entries, sorted: label i of a build is class_names[i]."""
    return sorted({entry.label for entry in self.entries})

  @property
  def has_groups(self) -> bool:
    return any(entry.group for entry in self.entries)

  @property
  def has_splits(self) -> bool:
    return any(entry.split for entry in self.entries)


def provenance(manual_dir: str | os.PathLike[str], kind: str, entries: Sequence[Entry],
               index: str | None = None) -> dict[str, Any]:
  """The record of where a build's audio came from, kept in its metadata (`metadata['source']`).

  The digest covers every entry's file, size, label, group and split: the same files with
  the same sizes and labels give the same digest wherever they lie; another file, another
  size (a re-encoded or truncated file) or another label gives another. A file rewritten
  with the same size is not noticed.
  """
  rows = sorted((e.file, e.size, e.label, e.group, e.split or '') for e in entries)
  digest = hashlib.sha256()
  for row in rows:
    digest.update(('\t'.join(map(str, row)) + '\n').encode('utf-8', 'surrogateescape'))
  return {'kind': kind, 'manual_dir': os.path.abspath(os.fspath(manual_dir)), 'index': index,
          'num_files': len(rows), 'bytes': sum(row[1] for row in rows), 'digest': digest.hexdigest(),
          'files': [[row[0], row[1]] for row in rows]}


def describe(source: dict[str, Any]) -> str:
  """'/data/gtzan_mini (100 files, 132.4 MB)': a provenance record in a few words."""
  where = source.get('manual_dir') or source.get('kind', '?')
  if source.get('index'):
    where = f'{where}/{source["index"]}'
  return f'{where} ({source.get("num_files", "?")} files, {source.get("bytes", 0) / 1e6:.1f} MB)'


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
  """'900 files added, 3 removed, 2 changed in size' between two provenance records ('' if the same)."""
  before, after = dict(map(tuple, old.get('files') or [])), dict(map(tuple, new.get('files') or []))
  added = len(after.keys() - before.keys())
  removed = len(before.keys() - after.keys())
  resized = sum(before[f] != after[f] for f in before.keys() & after.keys())
  parts = [f'{n} {what}' for n, what in ((added, 'added'), (removed, 'removed'), (resized, 'changed in size')) if n]
  if parts:
    parts[0] = parts[0].replace(' ', ' files ', 1)
  elif old.get('digest') != new.get('digest'):
    parts = ['the same files with other labels, groups or splits']
  return ', '.join(parts)


def _utf8(name: str) -> bool:
  try:
    name.encode('utf-8')
  except UnicodeEncodeError:  # os.listdir gives undecodable bytes as lone surrogates
    return False
  return True


def _shown(name: str) -> str:
  """A name that may hold undecodable bytes, printable (its bad bytes as \\xNN)."""
  return name.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


def checked_root(manual_dir: str | os.PathLike[str] | None, layout: str) -> pathlib.Path:
  """manual_dir as a Path, or a CollectionError naming it and the `layout` expected if it is no folder."""
  if manual_dir is None:
    raise CollectionError(f'no manual_dir given: expected {layout}.')
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise CollectionError(f'manual_dir {root} {"is not a directory" if root.exists() else "does not exist"}: '
                          f'expected {layout}.')
  return root


def _stem(file: str) -> str:
  """A file's path without its extension: its track id."""
  return file[:-len(pathlib.PurePosixPath(file).suffix)] if pathlib.PurePosixPath(file).suffix else file


def deduplicated(entries: Iterable[Entry], skipped: list[dict[str, str]]) -> list[Entry]:
  """The entries sorted by track, the first of each track id kept, the rest skipped with a reason."""
  kept: dict[str, Entry] = {}
  for entry in entries:
    if entry.track in kept:
      skipped.append({'file': entry.file, 'reason': f'same track as {kept[entry.track].file}'})
    else:
      kept[entry.track] = entry
  return [kept[track] for track in sorted(kept)]


FOLDERS_LAYOUT = '<manual_dir>/<label>/**/<audio file>'


def folders(manual_dir: str | os.PathLike[str] | None, extensions: Iterable[str] | None = None) -> Listing:
  """Every audio file under `<manual_dir>/<label>/`, at any depth, labelled by its top folder's name.

  Hidden files and folders (a name starting with '.', such as macOS's `._song.mp3`) are
  ignored and counted; files directly in manual_dir have no label and are skipped; so are
  files whose path is not valid UTF-8 (TFDS stores text as UTF-8). Of two files that differ
  only in extension (`a.flac`, `a.mp3`: one track id) the first by name is kept and the other
  skipped, named. Symlinks are followed; loops and unreadable folders are skipped, named.
  """
  root = checked_root(manual_dir, FOLDERS_LAYOUT)
  extensions = frozenset(library.audio_extensions() if extensions is None else extensions)
  skipped: list[dict[str, str]] = []
  entries, hidden, other = [], 0, 0
  for child in sorted(os.scandir(root), key=lambda e: e.name):
    if child.name.startswith('.'):
      hidden += 1
      continue
    if not child.is_dir():
      if os.path.splitext(child.name)[1].lower().lstrip('.') in extensions:
        skipped.append({'file': _shown(child.name), 'reason': 'not in a label folder'})
      continue
    walk = library.walk([child.path], extensions=extensions, skip_hidden=True)
    hidden += walk.hidden
    other += walk.skipped
    skipped += [{'file': _shown(os.path.relpath(note.path, root)), 'reason': note.reason} for note in walk.notes]
    for found in walk.entries:
      file = pathlib.Path(os.path.relpath(found.path, root)).as_posix()
      if not _utf8(file):
        skipped.append({'file': _shown(file), 'reason': 'file name is not valid UTF-8'})
      elif found.error:
        skipped.append({'file': file, 'reason': found.error})
      else:
        entries.append(Entry(file, found.path, _stem(file), child.name, size=found.size))
  listing = Listing(deduplicated(entries, skipped), skipped)
  listing.notes = {'hidden_files': hidden, 'other_files': other}
  return listing


MANIFEST_LAYOUT = f'<manual_dir>/{MANIFEST} with a header row: {",".join(MANIFEST_COLUMNS[:2])}[,group][,split]'


def manifest(manual_dir: str | os.PathLike[str] | None, name: str = MANIFEST) -> Listing:
  """The rows of `<manual_dir>/manifest.csv`: `path,label[,group][,split]`, paths relative to manual_dir.

  Column order is free and extra columns are ignored; values are stripped of surrounding
  spaces. A row is skipped, with the reason, when its path is empty, absolute or leaves
  manual_dir, names no file, repeats an earlier row's path, or its label is empty. `split`,
  when the column exists, must be given on every row (train/validation/test, or
  training/valid/val/dev/testing) and keep each group in one split: otherwise the whole
  manifest is refused, since no split could honour it.
  """
  root = checked_root(manual_dir, MANIFEST_LAYOUT)
  path = root / name
  try:
    with open(path, newline='', encoding='utf-8-sig') as f:
      rows = list(csv.reader(f))
  except FileNotFoundError:
    raise CollectionError(f'{path} does not exist: expected {MANIFEST_LAYOUT}.') from None
  except UnicodeDecodeError as e:
    raise CollectionError(f'{path} is not UTF-8 text (byte {e.start}): save it as UTF-8.') from None
  except csv.Error as e:
    raise CollectionError(f'{path}: not a CSV file ({e}).') from None
  if not rows:
    raise CollectionError(f'{path} is empty: expected {MANIFEST_LAYOUT}.')
  header = [column.strip().lower() for column in rows[0]]
  missing = [column for column in MANIFEST_COLUMNS[:2] if column not in header]
  if missing:
    raise CollectionError(f'{path}: the header row {",".join(rows[0])!r} lacks the column(s) '
                          f'{", ".join(missing)}: expected {MANIFEST_LAYOUT}.')
  column = {name: header.index(name) for name in MANIFEST_COLUMNS if name in header}
  skipped: list[dict[str, str]] = []
  entries: list[Entry] = []
  first_row_of: dict[str, int] = {}
  for number, row in enumerate(rows[1:], start=2):
    if not any(cell.strip() for cell in row):
      continue  # blank line
    value = {name: (row[i].strip() if i < len(row) else '') for name, i in column.items()}
    file = value['path'].replace('\\', '/')
    where = f'{name} line {number}'
    if not file:
      skipped.append({'file': where, 'reason': 'empty path'})
      continue
    if pathlib.PurePosixPath(file).is_absolute():
      skipped.append({'file': file, 'reason': f'{where}: absolute path (paths are relative to manual_dir)'})
      continue
    normal = os.path.normpath(file)
    if normal == '..' or normal.startswith('../'):  # by name: a symlink inside manual_dir may point anywhere
      skipped.append({'file': file, 'reason': f'{where}: path leaves manual_dir'})
      continue
    file, full = pathlib.PurePosixPath(normal).as_posix(), root / normal
    if file in first_row_of:
      skipped.append({'file': file, 'reason': f'{where} repeats the path of line {first_row_of[file]}'})
      continue
    first_row_of[file] = number
    if not value['label']:
      skipped.append({'file': file, 'reason': f'{where}: empty label'})
      continue
    split = value.get('split', '')
    if 'split' in column:
      if split.lower() not in SPLIT_ALIASES:
        raise CollectionError(f'{path} line {number}: split {split!r} is not one of train, validation, test '
                              '(every row needs one when the column exists).')
      split = SPLIT_ALIASES[split.lower()]
    try:
      st = os.stat(full)
    except OSError as e:
      skipped.append({'file': file, 'reason': f'{where}: ' + ('no such file' if isinstance(e, FileNotFoundError)
                                                              else f'unreadable ({e.strerror})')})
      continue
    if not stat_module.S_ISREG(st.st_mode):
      skipped.append({'file': file, 'reason': f'{where}: not a file'})
      continue
    entries.append(Entry(file, os.fspath(full), _stem(file), value['label'], value.get('group', ''),
                         split or None, st.st_size))
  if 'split' in column:
    check_groups_in_one_split(entries, f'{path}')
  return Listing(deduplicated(entries, skipped), skipped, index=name)


def groups_in_several_splits(entries: Sequence[Entry]) -> dict[str, list[str]]:
  """{group: its splits} for every group whose entries lie in more than one split."""
  splits_of = collections.defaultdict(set)
  for entry in entries:
    if entry.group and entry.split:
      splits_of[entry.group].add(entry.split)
  return {group: sorted(s, key=SPLITS.index) for group, s in sorted(splits_of.items()) if len(s) > 1}


def check_groups_in_one_split(entries: Sequence[Entry], where: str) -> None:
  """CollectionError naming the first group (and how many) that the split column puts in two splits."""
  crossing = groups_in_several_splits(entries)
  if crossing:
    group, splits = next(iter(crossing.items()))
    more = f' (and {len(crossing) - 1} more groups)' if len(crossing) > 1 else ''
    raise CollectionError(f'{where}: group {group!r} is in the {" and ".join(splits)} splits{more}; a group '
                          'must sit in one split, or tracks of one artist or album leak between them.')
