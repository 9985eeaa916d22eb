"""Classifies audio files, or whole music libraries, with a trained workdir.

  python -m gtzan_jax.predict --workdir=runs/synthetic song.mp3 clip.wav [--segments] [--json] [--max_segments=14]
  python -m gtzan_jax.predict --workdir=runs/default ~/Music --output=tags.csv [--top_k=3] [--report=report/]
      [--resume] [--batch_size=64] [--workers=2] [--pool=auto|process|thread] [--chunk_size=256]

Each PATH is a file or a folder, walked recursively in a fixed order for every audio format
the decoder reads (`gtzan_jax.library`: sorted by name, symlinks followed; symlink loops and
unreadable folders are reported on stderr, not fatal). Files of any length, sample rate,
channel count and format that `tfds_gtzan.audio.load_audio` decodes, at the rate of the
checkpoint's feature set (its `config.features`, `tfds_gtzan.feature_sets`: 'mel', 22050 Hz,
when absent; 'musicnn', 16 kHz). Each file is cut into whole segments (mel: 2 s; musicnn:
187-frame patches of 2.992 s, "3 s") from its start, and by default only the first
`max_segments` of the feature set (mel 14: 28 s; musicnn 10: 30 s) are classified, as the
dataset keeps them: the segments come from the feature set's `features_of_blocks`, which
gives what the builder stores (mel: `audio.segment_features`; musicnn: its whole-clip patches,
bit for bit), so a GTZAN file's prediction is evaluate's track result for that clip.
A checkpoint trained on a collection (`folders`, `manifest`, `fma_*`) takes what its build took
instead: at most its segments_per_track (15) spread evenly over the whole file (decoded whole, up
to 30 minutes), so a song is judged on all of it, as in training; the timeline gives each
segment's place. --max_segments=N overrides either with the first N segments;
--max_segments=0 classifies every whole segment (for long songs). A rest shorter than a
segment is dropped; a file shorter than one segment is zero-padded to one, and the output says
so. The file's probabilities are the softmax of the mean of its segments' log-probabilities,
as for tracks in evaluate. The class names are the checkpoint's own.

Files are tagged by `gtzan_jax.tagging`: decoded and featurised by parallel workers
(--workers, default the CPU count; --pool=auto: threads, faster than spawned processes on our 2
cores (BENCHMARKS.md); --pool=process: processes that never import JAX, where a decoder that
crashes fails only its file), their segments batched across files into forward passes of
--batch_size rows (0: 64 on CPU, 512 on an accelerator), one compiled model per batch shape,
on CPU each batch shared out over one XLA CPU device per core (the command line sets XLA's host
device count), and the results put back into input (walk) order. Memory stays bounded however long
the files and however many: a worker decodes `tag_workers.BLOCK_SECONDS` at a time and only
what the segments need (with a cap, a file's duration comes from its header), and a bounded
number of files is in flight.

Without --output it prints as it always did: per file 'path (30.0 s, 15 segments): jazz 0.81,
blues 0.12, rock 0.03'; --segments adds each segment's top 3; --json prints one JSON object per
file (all probabilities) instead. An unreadable file gets a one-line error on stderr, the other
files are still classified, and the exit status is 1.

With --output=tags.csv or tags.jsonl it writes one row per file (`gtzan_jax.tag_output`:
path, size, mtime, seconds, segments, whole_segments, padded, label, probability, the next
labels with --top_k, error; JSONL adds every class's probability and, with --segments, the
timeline), a chunk of --chunk_size rows at a time, atomically: a kill -9 leaves complete rows
and loses at most the chunk in flight, and --resume continues, keeping the rows of files whose
path, size and mtime are unchanged; the finished file equals an uninterrupted run's byte for
byte. Failed files get a row with the reason and are named on stderr. A progress bar (tqdm,
files/s and ETA) runs on stderr where it is a terminal; at the end a summary line, and with
--report=DIR a markdown page with figures (`gtzan_jax.tag_report`). Exit status 1 when any
file failed or a folder could not be read, else 0.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import app
from absl import flags
from absl import logging

from gtzan_jax import cli
from gtzan_jax import evaluate
from gtzan_jax import tag_output
from gtzan_jax import tag_report
from gtzan_jax import tag_workers
from gtzan_jax import tagging
from tfds_gtzan import audio
from tfds_gtzan import feature_sets
from tfds_gtzan import library

FLAGS = flags.FLAGS
BATCH_SIZE = 16  # segments per forward pass of predict_file (today's one-file path): a clip's 14 in one batch
BLOCK_SECONDS = tag_workers.BLOCK_SECONDS  # audio decoded and classified at a time
POOL = 'thread'  # what --pool=auto takes (BENCHMARKS.md: threads were faster than processes on 2 cores)
CHUNK_SIZE = 256

Prediction = tagging.Prediction
feature_set_of = tagging.feature_set_of
segment_times = tagging.segment_times
_seconds = tagging.json_seconds


def top_genres(probabilities: np.ndarray, k: int, class_names: Sequence[str]) -> list[tuple[str, float]]:
  """The k most probable (class, probability) pairs, most probable first."""
  return tagging.top_k(probabilities, class_names, k)


def predict_file(trained: evaluate.Trained, path: str, max_segments: int | None = None) -> Prediction:
  """Classifies the first `max_segments` whole segments of a file (0: all), BLOCK_SECONDS at a time.

  Today's one-file-at-a-time path (the benchmark's baseline): decoded in this thread, the
  rest of the file decoded for its duration, BATCH_SIZE segments per forward pass.
  The segments are those of the checkpoint's feature set (`feature_set_of(trained)`); None:
  its maximum per clip (mel 14, musicnn 10). Raises `audio.AudioError` if the file cannot be
  decoded, ValueError for a negative `max_segments`.
  """
  fs = feature_set_of(trained)
  spread = tagging.spread_of(trained) if max_segments is None else 0
  if spread:  # as the collection's build took them: spread over the whole file
    pieces = tag_workers.spread_file_features(path, fs, spread)
    mel = next(pieces, None)
    info = _finish(pieces)
    if info['error']:
      raise audio.AudioError(path, info['error'])
    log_probs = trained.log_probs(mel, BATCH_SIZE)
    return Prediction(path, info['seconds'], info['padded'], tagging.file_probabilities(log_probs),
                      np.exp(log_probs), info['whole_segments'], fs.name, tagging.class_names_of(trained),
                      tuple(info['positions']))
  max_segments = fs.max_segments if max_segments is None else max_segments
  if max_segments < 0:
    raise ValueError(f'max_segments must be >= 0 (0: every whole segment), got {max_segments}.')
  samples, short = 0, []

  def blocks():
    nonlocal samples
    for block in audio.load_audio_blocks(path, BLOCK_SECONDS, fs.sample_rate):
      samples += len(block)
      if samples < fs.segment_samples:  # all of the file so far: padded if it ends here
        short.append(block)
      yield block

  stream = blocks()
  log_probs = [trained.log_probs(mel, BATCH_SIZE)
               for mel in fs.features_of_blocks(stream, max_segments or None)]
  for _ in stream:  # past the cap: the rest is decoded for the file's duration only
    pass
  padded = not log_probs
  if padded:  # shorter than one segment
    y = np.concatenate([np.zeros(0, np.float32), *short])
    log_probs.append(trained.log_probs(tag_workers.padded_features(fs, y), BATCH_SIZE))
  log_probs = np.concatenate(log_probs)
  return Prediction(path, samples / fs.sample_rate, padded, tagging.file_probabilities(log_probs),
                    np.exp(log_probs), fs.segments_in(samples), fs.name, tagging.class_names_of(trained))


def _finish(pieces) -> dict[str, Any]:
  """The info a `tag_workers` feature generator returns once exhausted."""
  try:
    while True:
      next(pieces)
  except StopIteration as stop:
    return stop.value


def _clock(seconds: float) -> str:
  seconds = int(round(seconds))
  return f'{seconds // 60}:{seconds % 60:02d}'


def as_text(prediction: Prediction, with_segments: bool) -> str:
  """'path (30.0 s, first 14 of 15 segments): jazz 0.81, blues 0.12, rock 0.03', then the timeline if asked.

  'N segments' where all of the file's whole segments were used.
  """
  names = tagging.names_of(prediction)
  n, whole = len(prediction.segment_probabilities), prediction.whole_segments
  if prediction.padded:
    segment_seconds = feature_sets.get(prediction.features).segment_seconds
    length = f'{prediction.seconds:.1f} s, shorter than {segment_seconds:g} s: zero-padded to one segment'
  elif whole > n:
    length = f'{prediction.seconds:.1f} s, first {n} of {whole} segments'
  else:
    length = f'{prediction.seconds:.1f} s, {n} segment{"s" * (n != 1)}'
  top = ', '.join(f'{genre} {p:.2f}' for genre, p in top_genres(prediction.probabilities, 3, names))
  lines = [f'{prediction.path} ({length}): {top}']
  if with_segments:
    for (start, end), p in zip(segment_times(prediction), prediction.segment_probabilities):
      top = ', '.join(f'{genre} {q:.2f}' for genre, q in top_genres(p, 3, names))
      lines.append(f'  {_clock(start)}-{_clock(end)}  {top}')
  return '\n'.join(lines)


def as_json(prediction: Prediction, with_segments: bool) -> dict[str, Any]:
  """The prediction with all probabilities, ready for `json.dumps`."""
  names = tagging.names_of(prediction)
  result = {'file': prediction.path, 'seconds': round(prediction.seconds, 3),
            'segments': len(prediction.segment_probabilities), 'whole_segments': prediction.whole_segments,
            'padded': prediction.padded,
            'top': top_genres(prediction.probabilities, 3, names),
            'probabilities': dict(zip(names, prediction.probabilities.tolist()))}
  if with_segments:
    result['timeline'] = [
        {'start': start, 'end': end, 'probabilities': dict(zip(names, p.tolist()))}
        for (start, end), p in zip(segment_times(prediction), prediction.segment_probabilities)]
  return result


def _peak_memory_mb() -> float:
  """Peak resident memory of this process so far, in MB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pool_for(pool: str) -> str:
  return POOL if pool == 'auto' else pool


def run(workdir: str | None, paths: Sequence[str], *, with_segments: bool = False, json_output: bool = False,
        checkpoint: str = 'latest', max_segments: int | None = None, output: str | None = None,
        resume: bool = False, overwrite: bool = False, top_k: int = 1, report_dir: str | None = None,
        batch_size: int = 0, workers: int = 0, pool: str = 'auto', chunk_size: int = CHUNK_SIZE,
        extensions: Sequence[str] | None = None, progress: bool = True, trained: Any = None) -> int:
  """Classifies the files under `paths` with `workdir`'s model (or `trained`); returns the exit status.

  Without `output`: prints as it goes (the module docstring). With one: writes it (resumably)
  and prints a summary line on stderr. `max_segments` None: the maximum of the checkpoint's
  feature set (mel 14, musicnn 10).
  """
  if max_segments is not None and max_segments < 0:
    raise ValueError(f'--max_segments must be >= 0 (0: every whole segment), got {max_segments}.')
  row_format = None
  if output:
    if json_output:
      raise ValueError('--json prints to stdout; with --output the format is its extension (.csv or .jsonl).')
    row_format = tag_output.RowFormat(tag_output.format_of(output), top_k, with_segments)
  elif resume or overwrite:
    raise ValueError(f'--{"resume" if resume else "overwrite"} is about an --output file; name one.')
  tag_output.columns(top_k)  # checks it
  if pool not in ('auto', *tag_workers.POOLS):
    raise ValueError(f'--pool must be auto, process or thread, got {pool!r}.')
  found = library.walk(paths, extensions)
  for note in found.notes:
    print(f'{"error" if note.failed else "note"}: {note}', file=sys.stderr, flush=True)
  if trained is None:
    trained = evaluate.load_trained(workdir, checkpoint)
  settings = dict(max_segments=max_segments, batch_size=batch_size, workers=workers)
  if output is None:
    return _print_run(trained, found, settings, _pool_for(pool), with_segments, json_output,
                      report_dir)
  fs = feature_set_of(trained)
  meta = {'format': row_format.fmt, 'columns': row_format.columns,
          'workdir': os.path.realpath(workdir) if workdir else None, 'checkpoint': checkpoint,
          'step': int(getattr(trained, 'step', 0)), 'features': fs.name,
          'max_segments': fs.max_segments if max_segments is None else max_segments,
          'timeline': with_segments, 'class_names': list(tagging.class_names_of(trained))}
  if max_segments is None and tagging.spread_of(trained):  # (only then: older outputs' settings stay equal)
    meta['segments_per_track'] = tagging.spread_of(trained)
  out = tag_output.OutputFile(output, row_format, found.entries, meta, resume=resume, overwrite=overwrite,
                              chunk_size=chunk_size)
  todo = [entry for i, entry in enumerate(found.entries) if not out.reused(i)]
  stats = tag_report.LibraryStats(tagging.class_names_of(trained))
  import tqdm  # pylint: disable=g-import-not-at-top
  bar = tqdm.tqdm(total=len(found.entries), initial=out.kept, unit='file', file=sys.stderr, dynamic_ncols=True,
                  disable=None if progress else True, smoothing=0.05)
  start, before_mb = time.perf_counter(), _peak_memory_mb()
  tagger = tagging.Tagger(trained, pool=_pool_for(pool), **settings)
  try:
    with tagger:
      write_rows(tagger, found.entries, out, row_format, stats, bar)
  finally:
    bar.close()
  seconds = time.perf_counter() - start
  new, main_mb, worker_mb = len(todo), _peak_memory_mb(), tagger.counters.worker_rss_mb
  rates = (f'{new / seconds:.1f} files/s, {tagger.counters.segments / seconds:.0f} segments/s' if seconds > 0
           else '')
  kept = f'; {out.kept} kept from before (--resume)' if out.kept else ''
  workers_mb = f', largest worker {worker_mb:.0f} MB' if worker_mb else ''
  print(f'{output}: {stats.summary()}. {new} tagged in {seconds:.1f} s ({rates}){kept}; peak memory '
        f'{main_mb:.0f} MB ({before_mb:.0f} MB before tagging){workers_mb}.', file=sys.stderr, flush=True)
  if report_dir:
    page = tag_report.write_report(stats, report_dir, output, [str(note) for note in found.notes])
    print(f'Report: {page}', file=sys.stderr, flush=True)
  return int(bool(stats.failed or found.failed))


def write_rows(tagger: tagging.Tagger, entries: Sequence[library.Entry], out: tag_output.OutputFile,
               row_format: tag_output.RowFormat, stats: tag_report.LibraryStats, bar: Any = None) -> None:
  """Tags the entries `out` does not keep and writes every row in walk order; names failures on stderr.

  `out` is closed (its rows so far written out) whatever happens, Ctrl-C included.
  """
  try:
    results = tagger.tag([entry for i, entry in enumerate(entries) if not out.reused(i)])
    for i, entry in enumerate(entries):
      if out.reused(i):
        stats.add(row_format.parse_row(out.emit_kept(i)))
        continue
      tagged = next(results)
      assert tagged.entry is entry, (tagged.entry, entry)
      row, values = row_format.row(tagged)
      out.emit(i, row)
      stats.add(values)
      if bar is not None:
        if tagged.error:
          bar.write(f'error: {entry.path}: {tagged.error}', file=sys.stderr)
        bar.update(1)
  finally:
    out.close()


def _print_run(trained: Any, found: library.Walk, settings: dict[str, Any], pool: str, with_segments: bool,
               json_output: bool, report_dir: str | None) -> int:
  """Prints each file's result in input order, errors on stderr; returns the exit status."""
  status = int(bool(found.failed))
  stats = tag_report.LibraryStats(tagging.class_names_of(trained))
  with tagging.Tagger(trained, pool=pool, **settings) as tagger:
    for tagged in tagger.tag(found.entries):
      if report_dir:
        stats.add(tag_output.row_values(tagged, 2))
      if tagged.error:
        print(f'error: {tagged.entry.path}: {tagged.error}', file=sys.stderr, flush=True)
        status = 1
        continue
      prediction = tagged.prediction
      print(json.dumps(as_json(prediction, with_segments)) if json_output else as_text(prediction, with_segments),
            flush=True)
  if report_dir:
    page = tag_report.write_report(stats, report_dir, notes=[str(note) for note in found.notes])
    print(f'Report: {page}', file=sys.stderr, flush=True)
  return status


def _stop(signum, frame) -> None:
  del signum, frame
  raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
  if len(argv) < 2:
    raise app.UsageError('Name at least one audio file or folder.')
  logging.set_verbosity(logging.WARNING)  # stderr is for errors only
  signal.signal(signal.SIGTERM, _stop)  # as Ctrl-C: the rows so far are written out
  # Before JAX starts its backend: one CPU device per core for tagging.Forward, and XLA:CPU's inference flags.
  tagging.set_inference_flags()
  try:
    return run(FLAGS.workdir, argv[1:], with_segments=FLAGS.segments, json_output=FLAGS.json,
               checkpoint=FLAGS.checkpoint, max_segments=FLAGS.max_segments, output=FLAGS.output,
               resume=FLAGS.resume, overwrite=FLAGS.overwrite, top_k=FLAGS.top_k, report_dir=FLAGS.report,
               batch_size=FLAGS.batch_size, workers=FLAGS.workers, pool=FLAGS.pool, chunk_size=FLAGS.chunk_size,
               extensions=FLAGS.extensions, progress=FLAGS.progress)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f'error: {e}') from None
  except KeyboardInterrupt:
    where = f'; the rows so far are in {FLAGS.output}, --resume continues' if FLAGS.output else ''
    print(f'interrupted{where}.', file=sys.stderr, flush=True)
    return 130


if __name__ == '__main__':
  # Defined here rather than at import: see gtzan_jax/evaluate.py.
  flags.DEFINE_string('workdir', None, 'Training workdir (holds checkpoints/).', required=True)
  flags.DEFINE_enum('checkpoint', 'latest', ['latest', 'best'],
                    'The latest checkpoint, or the best by validation accuracy.')
  flags.DEFINE_bool('segments', False, 'Also print the top-3 classes of every segment (2 s; musicnn: 3 s); '
                    'with a .jsonl --output, write each segment\'s probabilities (the timeline).')
  flags.DEFINE_bool('json', False, 'Print one JSON object per file, with all the probabilities.')
  flags.DEFINE_integer('max_segments', None,
                       'Classify the first N whole segments of each file; default: as the dataset keeps them '
                       f'({audio.MAX_SEGMENTS} of 2 s for mel: 28 s; {feature_sets.get("musicnn").max_segments} '
                       'of 3 s for musicnn: 30 s); 0: every whole segment (long songs).', lower_bound=0)
  flags.DEFINE_string('output', None, 'Write one row per file to this .csv or .jsonl file (gtzan_jax/tag_output.py) '
                      'instead of printing.')
  flags.DEFINE_bool('resume', False, 'Continue --output: keep the rows of files whose path, size and mtime match.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output (else it is refused).')
  flags.DEFINE_integer('top_k', 1, 'Label and probability columns per file in --output.', lower_bound=1)
  flags.DEFINE_string('report', None, 'Write report.md with figures of the library here.')
  flags.DEFINE_integer('batch_size', 0, f'Segments per forward pass, across files; 0: {tagging.CPU_BATCH_SIZE} on '
                       f'CPU, {tagging.ACCELERATOR_BATCH_SIZE} on an accelerator.', lower_bound=0)
  flags.DEFINE_integer('workers', os.cpu_count() or 1, 'Decoding and feature workers.', lower_bound=1)
  flags.DEFINE_enum('pool', 'auto', ['auto', *tag_workers.POOLS],
                    f'Workers as threads or as spawned processes (a decoder that crashes then fails only its '
                    f'file); auto: {POOL}s, the faster here (BENCHMARKS.md).')
  flags.DEFINE_integer('chunk_size', CHUNK_SIZE, 'Rows per atomic extension of --output (a kill loses at most '
                       'one chunk).', lower_bound=1)
  flags.DEFINE_list('extensions', None, 'File extensions to take from folders; default: every format the '
                    'decoder reads (tfds_gtzan/library.py).')
  flags.DEFINE_bool('progress', True, 'Show a progress bar on stderr (where it is a terminal).')
  cli.run(main)
