"""predict's output file: one row per file, CSV or JSONL, written a chunk at a time, resumable.

Rows (`columns(top_k)`, in this order):

  path            the file as walked (`library`)
  size, mtime     its size in bytes and modification time (UTC, microseconds): with `path`,
                  the key that `--resume` matches
  seconds         its duration
  segments        segments classified (at most --max_segments from the start)
  whole_segments  whole segments in the file
  padded          true where the file is shorter than one segment, zero-padded to one
  label           the most probable class (the checkpoint's class names)
  probability     its probability
  label_2, probability_2, ... label_K, probability_K   the next ones, with --top_k=K
  error           empty, or why the file could not be tagged (the other fields but the key empty)

CSV: a header line, then one line per file (RFC 4180 quoting, '\\n' line ends, UTF-8),
probabilities to 4 decimals, seconds to the millisecond. JSONL: one JSON object per line with
the same fields in the same order (numbers, true/false, null), probabilities to 6 decimals,
then `probabilities` (every class, the checkpoint's order) and, with --segments, `timeline`
(each segment's start, end and probabilities). Nothing in a row depends on when or how the
run went (no timestamps, no batch composition: see `tagging`), so the same library tagged
twice, or in pieces with --resume, gives the same bytes.

Writing (`OutputFile`). The file always holds complete rows in walk order: it is extended a
chunk of `chunk_size` rows at a time by writing the whole new version to `<output>.tmp`
(the rows so far copied in the kernel with copy_file_range, then the chunk) and renaming it
over the output, so a kill -9 at any moment leaves either the old or the new version, and
loses at most the chunk being tagged. The copy makes each chunk cost the file's size; once a
rewrite takes over 50 ms (a file of a few hundred MB) and would be over 5 % of the time since
the last, chunks grow to keep it under (the content is the same). `<output>.meta.json` beside it records how the rows were made
(model, feature set, --max_segments, --top_k, --segments, class names); --resume refuses to
extend a file made otherwise. With --resume the rows of the existing file whose path, size and
mtime match a file of this walk are kept and the rest are tagged; rows of files that are gone
or have changed are dropped. The kept rows need not be a prefix: while the run goes on the file
is the rows emitted so far followed by the kept rows still ahead, all in walk order, so a second
kill loses nothing either. Without --resume an existing output is refused unless --overwrite.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import time
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from tfds_gtzan import library
from gtzan_jax import report
from gtzan_jax import tagging

FORMATS = ('csv', 'jsonl')
ENCODING, ERRORS = 'utf-8', 'surrogateescape'  # file names that are not UTF-8 keep their bytes
META_SUFFIX = '.meta.json'
REWRITE_SHARE = 0.05  # at most this share of the time goes into rewriting the file,
REWRITE_FREE_SECONDS = 0.05  # once a rewrite takes longer than this


def format_of(path: str) -> str:
  """'csv' or 'jsonl', from the output's extension; ValueError for another."""
  extension = os.path.splitext(path)[1].lower().lstrip('.')
  if extension not in FORMATS:
    raise ValueError(f'--output={path}: name a .csv or a .jsonl file.')
  return extension


def columns(k: int = 1) -> list[str]:
  """The fields of a row, in order (module docstring)."""
  if k < 1:
    raise ValueError(f'--top_k must be >= 1, got {k}.')
  extra = [name for i in range(2, k + 1) for name in (f'label_{i}', f'probability_{i}')]
  return ['path', 'size', 'mtime', 'seconds', 'segments', 'whole_segments', 'padded', 'label',
          'probability', *extra, 'error']


def row_values(tagged: tagging.Tagged, k: int = 1, digits: int = 4) -> dict[str, Any]:
  """The fields of `tagged`'s row as Python values (None for empty), in `columns(k)` order."""
  entry = tagged.entry
  values: dict[str, Any] = dict.fromkeys(columns(k))
  values.update(path=entry.path, size=entry.size, mtime=entry.mtime)
  prediction = tagged.prediction
  if prediction is None:
    values['error'] = tagged.error
    return values
  names = tagging.names_of(prediction)
  top = tagging.top_k(prediction.probabilities, names, k)
  values.update(seconds=round(float(prediction.seconds), 3), segments=len(prediction.segment_probabilities),
                whole_segments=int(prediction.whole_segments), padded=bool(prediction.padded))
  for i, (label, p) in enumerate(top, start=1):
    suffix = '' if i == 1 else f'_{i}'
    values[f'label{suffix}'], values[f'probability{suffix}'] = label, round(p, digits)
  return values


def _csv_field(name: str, value: Any) -> str:
  if value is None:
    return ''
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if name == 'seconds':
    return f'{value:.3f}'
  if name.startswith('probability'):
    return f'{value:.4f}'
  return str(value)


def _csv_line(fields: Sequence[str]) -> bytes:
  buffer = io.StringIO()
  csv.writer(buffer, lineterminator='\n').writerow(fields)
  return buffer.getvalue().encode(ENCODING, ERRORS)


class RowFormat:
  """How rows are written and read back: CSV or JSONL, with `top_k` labels and maybe the timeline."""

  def __init__(self, fmt: str, top_k: int = 1, timeline: bool = False):
    if fmt not in FORMATS:
      raise ValueError(f'Unknown output format {fmt!r}; one of {", ".join(FORMATS)}.')
    if timeline and fmt != 'jsonl':
      raise ValueError('--segments writes each segment\'s probabilities: only into a .jsonl --output.')
    self.fmt, self.top_k, self.timeline = fmt, top_k, timeline
    self.columns = columns(top_k)

  def header(self) -> bytes:
    return _csv_line(self.columns) if self.fmt == 'csv' else b''

  def row(self, tagged: tagging.Tagged) -> tuple[bytes, dict[str, Any]]:
    """(the row's bytes, its values)."""
    if self.fmt == 'csv':
      values = row_values(tagged, self.top_k, 4)
      return _csv_line([_csv_field(name, values[name]) for name in self.columns]), values
    values = row_values(tagged, self.top_k, 6)
    record = dict(values)
    prediction = tagged.prediction
    if prediction is not None:
      names = tagging.names_of(prediction)
      record['probabilities'] = {name: round(float(p), 6) for name, p in zip(names, prediction.probabilities)}
      if self.timeline:
        record['timeline'] = [
            {'start': start, 'end': end, 'probabilities': {name: round(float(q), 6) for name, q in zip(names, p)}}
            for (start, end), p in zip(tagging.segment_times(prediction), prediction.segment_probabilities)]
    return self._json_line(record), values

  @staticmethod
  def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + '\n').encode(ENCODING, ERRORS)

  def parse_file(self, path: str) -> Iterator[tuple[dict[str, Any], int]]:
    """The rows of an output file as (values, length in bytes), each checked to be as `row` writes it.

    A CSV file is read whole (a row is ~150 bytes: 15 MB for 100,000 files); a JSONL file, whose
    rows can be long (--segments), one line at a time.
    """
    if self.fmt == 'csv':
      with open(path, 'rb') as f:
        data = f.read()
      reader = csv.reader(io.StringIO(data.decode(ENCODING, ERRORS), newline=''))
      header = next(reader, None)
      if header != self.columns:
        raise ValueError(f'{path}: its columns are not those of this run ({",".join(header or [])} vs '
                         f'{",".join(self.columns)}); resume with the same --top_k, or --overwrite.')
      offset = len(self.header())
      if data[:offset] != self.header():
        raise ValueError(f'{path}: row 1 is not as predict writes it (edited?); --overwrite to start over.')
      for number, fields in enumerate(reader, start=2):
        line = _csv_line(fields)
        if data[offset:offset + len(line)] != line or len(fields) != len(self.columns):
          raise ValueError(f'{path}: row {number} is not as predict writes it (edited?); --overwrite to start '
                           'over.')
        yield self._typed(dict(zip(self.columns, fields))), len(line)
        offset += len(line)
      if offset != len(data):
        raise ValueError(f'{path}: ends inside a row; --overwrite to start over.')
      return
    with open(path, 'rb') as f:
      for number, line in enumerate(f, start=1):
        try:
          record = json.loads(line.decode(ENCODING, ERRORS))
        except ValueError:
          record = None
        if (not isinstance(record, dict) or self._json_line(record) != line
            or list(record)[:len(self.columns)] != self.columns):
          raise ValueError(f'{path}: line {number} is not a row as this run writes them; resume with the same '
                           '--top_k, or --overwrite.')
        yield {name: record[name] for name in self.columns}, len(line)

  def _typed(self, fields: dict[str, str]) -> dict[str, Any]:
    """A CSV row's strings as `row_values` gives them."""
    def number(text: str, kind=float):
      return kind(text) if text != '' else None
    values: dict[str, Any] = {}
    for name, text in fields.items():
      if name in ('size', 'segments', 'whole_segments'):
        values[name] = number(text, int)
      elif name == 'seconds' or name.startswith('probability'):
        values[name] = number(text)
      elif name == 'padded':
        values[name] = {'true': True, 'false': False}.get(text)
      else:
        values[name] = text if text != '' or name == 'path' else None
    return values

  def parse_row(self, data: bytes) -> dict[str, Any]:
    """The values of one row's bytes."""
    if self.fmt == 'csv':
      return self._typed(dict(zip(self.columns, next(csv.reader(io.StringIO(data.decode(ENCODING, ERRORS),
                                                                             newline=''))))))
    record = json.loads(data.decode(ENCODING, ERRORS))
    return {name: record[name] for name in self.columns}


def _write_all(fd: int, data: bytes) -> None:
  view = memoryview(data)
  while view:
    view = view[os.write(fd, view):]


def _copy(src: int, dst: int, offset: int, count: int) -> None:
  """Appends bytes [offset, offset + count) of file descriptor `src` to `dst` (in the kernel where it can)."""
  while count > 0:
    try:
      done = os.copy_file_range(src, dst, count, offset)
    except (AttributeError, OSError):
      done = 0
    if done <= 0:  # another filesystem or no copy_file_range: through user space
      chunk = os.pread(src, min(count, 1 << 22), offset)
      if not chunk:
        raise OSError(f'unexpected end of file copying {count} bytes')
      _write_all(dst, chunk)
      done = len(chunk)
    offset += done
    count -= done


class OutputFile:
  """The output, extended a chunk at a time in walk order (module docstring).

  entries: this run's files in walk order; `reused(i)` says whether entry i's row is kept from
  the existing file (with `resume`), `emit_kept(i)` / `emit(i, row)` give rows in walk order.
  """

  def __init__(self, path: str, row_format: RowFormat, entries: Sequence[library.Entry], meta: dict[str, Any], *,
               resume: bool = False, overwrite: bool = False, chunk_size: int = 256):
    if chunk_size < 1:
      raise ValueError(f'--chunk_size must be >= 1, got {chunk_size}.')
    self.path, self.format, self.chunk_size = path, row_format, chunk_size
    self.tmp = path + '.tmp'
    self.meta_path = path + META_SUFFIX
    self._kept: collections.deque[tuple[int, int]] = collections.deque()  # (entry index, bytes), walk order
    self._kept_set: set[int] = set()
    self._chunk: list[tuple[bytes | None, int]] = []  # (new row, or None for a kept row of that length)
    self._chunk_new = 0
    self._emitted_end = 0  # the file's bytes [0, this) are the rows emitted so far
    self._last_flush, self._flush_cost = time.perf_counter(), 0.0
    self.flushes = 0
    self._reader = None
    exists = os.path.exists(path)
    if exists and not (resume or overwrite):
      raise ValueError(f'{path} exists: --resume continues it, --overwrite replaces it.')
    if os.path.isdir(path):
      raise ValueError(f'--output={path} is a folder.')
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
      raise FileNotFoundError(f'--output={path}: no folder {directory}.')
    if exists and resume:
      self._load(entries, meta)
    else:
      self._write_whole([row_format.header()])
      self._emitted_end = len(row_format.header())
    report.write_json(self.meta_path, meta)

  @property
  def kept(self) -> int:
    return len(self._kept_set)

  def reused(self, index: int) -> bool:
    return index in self._kept_set

  def _load(self, entries: Sequence[library.Entry], meta: dict[str, Any]) -> None:
    if os.path.exists(self.meta_path):
      old = report.read_json(self.meta_path)
      differ = [key for key in sorted(set(old) | set(meta)) if old.get(key) != meta.get(key)]
      if differ:
        key = differ[0]
        raise ValueError(f'{self.path} was made with {key} {old.get(key)!r}, this run has {meta.get(key)!r} '
                         f'({self.meta_path}); resume with the same settings, or --overwrite.')
    where = {entry.path: i for i, entry in enumerate(entries)}
    keep, offset, rows = [], len(self.format.header()), 0
    for values, length in self.format.parse_file(self.path):
      index = where.get(values['path'])
      if (index is not None and index not in self._kept_set and not entries[index].error
          and entries[index].key == (values['path'], values['size'], values['mtime'])):
        keep.append((index, offset, length))
        self._kept_set.add(index)
      offset += length
      rows += 1
    in_place = len(keep) == rows and all(a[0] < b[0] for a, b in zip(keep, keep[1:]))
    if not in_place:  # rows dropped or out of walk order: write the kept ones in walk order, once
      keep.sort()
      src = os.open(self.path, os.O_RDONLY)
      try:
        dst = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
          _write_all(dst, self.format.header())
          for _, start, length in keep:
            _copy(src, dst, start, length)
        finally:
          os.close(dst)
      finally:
        os.close(src)
      os.replace(self.tmp, self.path)
    self._kept.extend((index, length) for index, _, length in keep)
    self._emitted_end = len(self.format.header())

  def _write_whole(self, parts: Sequence[bytes]) -> None:
    with open(self.tmp, 'wb') as f:
      for part in parts:
        f.write(part)
    os.replace(self.tmp, self.path)

  def emit_kept(self, index: int) -> bytes:
    """Emits the kept row of entry `index` (the next kept one in walk order); returns its bytes."""
    head, length = self._kept[0]
    if head != index:
      raise RuntimeError(f'rows out of order: kept row {head} before {index}')
    self._kept.popleft()
    offset = self._emitted_end + sum(n for row, n in self._chunk if row is None)  # kept rows ahead of it
    if self._reader is None:  # the file as it is now (a flush replaces it)
      self._reader = open(self.path, 'rb')
    self._reader.seek(offset)
    row = self._reader.read(length)
    self._chunk.append((None, length))
    return row

  def emit(self, index: int, row: bytes) -> None:
    """Emits a new row for entry `index`; writes the chunk out when it is full."""
    del index  # rows come in walk order; the index is the caller's check
    self._chunk.append((row, len(row)))
    self._chunk_new += 1
    if self._chunk_new >= self.chunk_size:
      since = time.perf_counter() - self._last_flush
      if self._flush_cost <= max(REWRITE_FREE_SECONDS, REWRITE_SHARE * since):
        self.flush()

  def flush(self) -> None:
    """Writes the rows emitted so far into the file (atomically); nothing to write: nothing done.

    SIGINT and SIGTERM wait until it is done (in the main thread), so that the file and what this
    object knows of it never disagree (a second flush would write a chunk twice).
    """
    if not self._chunk:
      return
    main = threading.current_thread() is threading.main_thread()
    if main:
      signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
      self._flush()
    finally:
      if main:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

  def _flush(self) -> None:
    size = sum(n for _, n in self._chunk)
    if self._chunk_new:
      start = time.perf_counter()
      src = os.open(self.path, os.O_RDONLY)
      try:
        dst = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
          _copy(src, dst, 0, self._emitted_end)
          position = self._emitted_end
          for row, length in self._chunk:
            if row is None:
              _copy(src, dst, position, length)
              position += length
            else:
              _write_all(dst, row)
          _copy(src, dst, position, os.fstat(src).st_size - position)
        finally:
          os.close(dst)
      finally:
        os.close(src)
      os.replace(self.tmp, self.path)
      if self._reader is not None:
        self._reader.close()
        self._reader = None
      self.flushes += 1
      self._flush_cost = time.perf_counter() - start
      self._last_flush = time.perf_counter()
    self._emitted_end += size
    self._chunk, self._chunk_new = [], 0

  def close(self) -> None:
    self.flush()
    if self._reader is not None:
      self._reader.close()
      self._reader = None


def iter_rows(path: str, row_format: RowFormat) -> Iterator[dict[str, Any]]:
  """The values of every row of an output file (checked as --resume checks them), one at a time."""
  return (values for values, _ in row_format.parse_file(path))


def read_rows(path: str, row_format: RowFormat) -> list[dict[str, Any]]:
  return list(iter_rows(path, row_format))


def format_of_file(path: str, top_k: int | None = None) -> RowFormat:
  """The RowFormat of an existing output: from its extension, its header (CSV) or first row (JSONL)."""
  fmt = format_of(path)
  if top_k is None:
    with open(path, 'rb') as f:
      first = f.readline().decode(ENCODING, ERRORS)
    if fmt == 'csv':
      names = next(csv.reader([first]), [])
    else:
      names = list(json.loads(first)) if first.strip() else []
    top_k = 1 + sum(1 for name in names if name.startswith('label_'))
  return RowFormat(fmt, top_k)
