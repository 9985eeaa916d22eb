"""Decoding and feature extraction for `gtzan_jax.tagging`, in worker processes or threads.

  with make_pool('process', workers=2, feature_set='mel', max_segments=14) as pool:   # spread=K: see file_features
    pool.submit(0, 'a.mp3')                  # while pool.can_submit()
    for message in pool.get(timeout=1.0):    # ('part', 0, segments) ... ('end', 0, segments, info)
      ...

A worker decodes one file at a time (`file_features`) and sends its feature segments back
in pieces of at most one decoded block (`BLOCK_SECONDS`), so memory stays bounded however
long the file. `file_features` decodes only the audio the segments need: with a cap
(`max_segments` > 0) it stops once the segments are out and takes the file's duration from
its header (libsndfile), where today's `predict_file` decodes the rest of the file for it.

'process' workers are started with the 'spawn' method and import only this module, numpy,
`tfds_gtzan.audio`/`feature_sets` (librosa, soundfile, soxr) and threadpoolctl, never JAX:
forking a process that runs JAX's threads can deadlock. Each talks to the parent over its
own pipe, so one that crashes in a decoder (a segfault on a malformed file) takes only its
pipe with it: the file it was decoding gets an error and a new worker takes its place.
When the parent dies (kill -9), the pipe closes and the workers exit. A worker process's
stderr goes to /dev/null: libsndfile's mpg123 prints notes for every broken MP3, and every
outcome, errors included, comes back to the parent as a message. 'thread' workers run
the same loop in the parent's threads (the decoders, soxr and the FFTs release the GIL, as
in `tfds_gtzan.gtzan_mel.featurize`). Either way BLAS is limited to one thread per worker:
OpenBLAS threads competing with the workers and the model for two cores made today's
one-file path up to 10x slower at the features (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import resource
import signal
import sys
import threading
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np

BLOCK_SECONDS = 60  # audio decoded at a time, as predict_file decodes it
TASKS_PER_WORKER = 4  # files handed to a worker ahead: one decoding, the others waiting
POOLS = ('process', 'thread')


def file_features(path: str, feature_set: Any, max_segments: int, block_seconds: float = BLOCK_SECONDS,
                  spread: int = 0) -> Generator[np.ndarray, None, dict[str, Any]]:
  """Yields the feature segments of a file's first `max_segments` (0: all) whole segments, in pieces.

  `feature_set`: a `tfds_gtzan.feature_sets.FeatureSet`. The segments are those of
  `predict.predict_file`: `feature_set.features_of_blocks` of the decoded blocks; a file
  shorter than one segment is zero-padded to one. Returns (as StopIteration's value) the
  file's info: 'seconds', 'segments' (yielded), 'whole_segments' (in the file), 'padded' and
  'error' (None, or why the file could not be read: the segments yielded before are void).
  `spread` K > 0 (a checkpoint trained on a collection): instead, at most K segments spread
  over the whole file, as the collection's build takes them (`spread_file_features`).
  """
  if spread:
    return (yield from spread_file_features(path, feature_set, spread))
  from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa: workers only)
  fs = feature_set
  samples, short, exhausted, count = 0, [], False, 0
  if max_segments:  # a block a bit longer than the capped audio: decode no more than that
    block_seconds = min(block_seconds, fs.decode_seconds(max_segments) + 1.0)

  def blocks() -> Iterator[np.ndarray]:
    nonlocal samples, exhausted
    for block in audio.load_audio_blocks(path, block_seconds, fs.sample_rate):
      samples += len(block)
      if samples < fs.segment_samples:  # all of the file so far: padded if it ends here
        short.append(block)
      yield block
    exhausted = True

  stream = blocks()
  try:
    for segments in fs.features_of_blocks(stream, max_segments or None):
      count += len(segments)
      yield segments
    padded = count == 0
    if padded:
      y = np.concatenate([np.zeros(0, np.float32), *short])
      yield padded_features(fs, y)
      count = 1
    if exhausted:
      seconds, total = samples / fs.sample_rate, samples
    else:
      seconds, total = _duration(path, fs.sample_rate, stream, samples)
  except audio.AudioError as e:
    return {'error': e.reason}
  except Exception as e:  # pylint: disable=broad-except  (a decoder's own failure: one file's row)
    return {'error': f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else "failed"}'}
  return {'seconds': seconds, 'segments': count, 'whole_segments': fs.segments_in(total),
          'padded': padded, 'error': None}


def padded_features(feature_set: Any, y: np.ndarray) -> np.ndarray:
  """The one segment of audio shorter than a segment: `y` zero-padded to one, featurised."""
  return feature_set.features(np.pad(y, (0, max(0, feature_set.segment_samples - len(y)))), 1)


def spread_file_features(path: str, feature_set: Any, count: int) -> Generator[np.ndarray, None, dict[str, Any]]:
  """`file_features` of at most `count` segments spread over the whole file (`FeatureSet.spread_features`).

  What a collection's build stores for the file: decoded whole (up to
  `feature_sets.MAX_TRACK_SECONDS`), so memory holds that much audio. The info adds
  'positions', each segment's place in the file (in segments from its start).
  """
  from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top  (librosa: workers only)
  from tfds_gtzan import feature_sets  # pylint: disable=g-import-not-at-top
  fs = feature_set
  try:
    y = audio.load_audio(path, fs.sample_rate, max_seconds=feature_sets.MAX_TRACK_SECONDS)
    segments, positions = fs.spread_features(y, count)
    padded = not len(segments)
    if padded:
      segments, positions = padded_features(fs, y), np.zeros(1, int)
    seconds, total = len(y) / fs.sample_rate, len(y)
    if len(y) >= feature_sets.MAX_TRACK_SECONDS * fs.sample_rate:  # cut: the header tells the rest
      seconds, total = _duration(path, fs.sample_rate, iter(()), len(y))
  except audio.AudioError as e:
    return {'error': e.reason}
  except Exception as e:  # pylint: disable=broad-except  (a decoder's own failure: one file's row)
    return {'error': f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else "failed"}'}
  yield segments
  return {'seconds': seconds, 'segments': len(segments), 'whole_segments': fs.segments_in(total),
          'padded': padded, 'error': None, 'positions': [int(p) for p in positions]}


def _duration(path: str, sample_rate: int, rest: Iterator[np.ndarray], samples: int) -> tuple[float, int]:
  """(seconds, samples at `sample_rate`) of a file read only in part: its header's, else the rest decoded."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  try:
    info = sf.info(path)
    if info.frames > 0 and info.samplerate > 0:
      return info.frames / info.samplerate, int(info.frames * sample_rate // info.samplerate)
  except (sf.LibsndfileError, RuntimeError):
    pass
  for block in rest:  # formats libsndfile lacks are decoded whole already: count the rest
    samples += len(block)
  return samples / sample_rate, samples


def worker_loop(receive, send, feature_set: str, max_segments: int, spread: int = 0) -> None:
  """Decodes the files `receive()` names ((index, path); None: stop) and `send`s their features.

  Messages: ('part', index, segments) for every piece but the last, then ('end', index,
  segments or None, info) (`file_features`).
  """
  from tfds_gtzan import feature_sets  # pylint: disable=g-import-not-at-top
  fs = feature_sets.get(feature_set)
  while True:
    task = receive()
    if task is None:
      return
    index, path = task
    pieces = file_features(path, fs, max_segments, spread=spread)
    held = None
    while True:
      try:
        segments = next(pieces)
      except StopIteration as stop:
        info = stop.value
        break
      if held is not None:
        send(('part', index, held))
      held = segments
    info['worker_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (threads: the process's)
    send(('end', index, None if info['error'] else held, info))


def _process_main(worker_id: int, conn: multiprocessing.connection.Connection, feature_set: str,
                  max_segments: int, spread: int = 0) -> None:
  """A worker process: `worker_loop` over its pipe, one BLAS thread; ends when the pipe closes."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
  devnull = os.open(os.devnull, os.O_WRONLY)  # decoders' own chatter (mpg123's "Note: ...") per bad file:
  os.dup2(devnull, 2)  # every outcome comes back as a message, errors included
  import threadpoolctl  # pylint: disable=g-import-not-at-top
  with threadpoolctl.threadpool_limits(limits=1, user_api='blas'):
    try:
      from tfds_gtzan import audio  # pylint: disable=g-import-not-at-top,unused-import  (import once, now)
      conn.send(('hello', worker_id, {'pid': os.getpid(), 'jax_imported': 'jax' in sys.modules}))
      worker_loop(conn.recv, conn.send, feature_set, max_segments, spread)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
      pass  # the parent is gone or closing


@contextlib.contextmanager
def _no_main_reimport():
  """Keeps a spawned child from re-importing the parent's __main__ (predict, which imports JAX).

  multiprocessing's spawn runs the main module again in the child, as '__mp_main__', when
  it has a module spec or a file; the workers need nothing from it.
  """
  main = sys.modules.get('__main__')
  saved = {name: getattr(main, name) for name in ('__spec__', '__file__') if hasattr(main, name)}
  try:
    if main is not None:
      main.__spec__ = None
      if hasattr(main, '__file__'):
        del main.__file__
    yield
  finally:
    for name, value in saved.items():
      setattr(main, name, value)


class _Stopped(Exception):
  """A thread worker's message after close(): it stops."""


class Pool:
  """`workers` decoders, each handed at most TASKS_PER_WORKER files ahead; see the module docstring."""

  kind = ''

  def __init__(self, workers: int, feature_set: str, max_segments: int, spread: int = 0):
    if workers < 1:
      raise ValueError(f'--workers must be >= 1, got {workers}.')
    self.workers, self.feature_set, self.max_segments, self.spread = workers, feature_set, max_segments, spread
    self.outstanding: list[list[tuple[int, str]]] = [[] for _ in range(workers)]
    self.worker_info: dict[int, dict[str, Any]] = {}
    self.crashes = 0
    self.peak_rss_mb = 0.0  # the largest peak resident memory a worker reported (process workers)

  def can_submit(self) -> bool:
    return any(len(tasks) < TASKS_PER_WORKER for tasks in self.outstanding)

  def busy(self) -> bool:
    return any(self.outstanding)

  def submit(self, index: int, path: str) -> None:
    worker = min(range(self.workers), key=lambda w: len(self.outstanding[w]))
    self.outstanding[worker].append((index, path))
    self._send(worker, (index, path))

  def get(self, timeout: float) -> list[tuple]:
    """The messages that arrive within `timeout` seconds (maybe none), 'hello's left out.

    A worker found dead is replaced after its messages are taken: the file it was decoding fails.
    """
    messages = []
    received, dead = self._receive(timeout)
    for worker, message in received:
      if message[0] == 'hello':
        self.worker_info[message[1]] = message[2]
        continue
      if message[0] == 'end':
        self.outstanding[worker] = [t for t in self.outstanding[worker] if t[0] != message[1]]
        self.peak_rss_mb = max(self.peak_rss_mb, message[3].get('worker_rss_mb', 0.0))
      messages.append(message)
    for worker in sorted(dead):
      messages += self._replace(worker)
    return messages

  def _replace(self, worker: int) -> list[tuple]:
    raise NotImplementedError

  def _send(self, worker: int, task) -> None:
    raise NotImplementedError

  def _receive(self, timeout: float) -> tuple[list[tuple[int, tuple]], set[int]]:
    """(worker, message) pairs that arrive within `timeout` seconds, and the workers found dead."""
    raise NotImplementedError

  def close(self) -> None:
    raise NotImplementedError

  def __enter__(self) -> Pool:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class ThreadPool(Pool):
  """The workers as threads of this process (BLAS limited to one thread meanwhile, process-wide)."""

  kind = 'thread'

  def __init__(self, workers: int, feature_set: str, max_segments: int, spread: int = 0):
    super().__init__(workers, feature_set, max_segments, spread)
    import threadpoolctl  # pylint: disable=g-import-not-at-top
    self._limits = threadpoolctl.threadpool_limits(limits=1, user_api='blas')
    self._results: queue.Queue = queue.Queue(maxsize=TASKS_PER_WORKER * workers)  # bounded: they wait
    self._tasks = [queue.Queue() for _ in range(workers)]
    self._stopping = False
    self._threads = []
    for w in range(workers):
      thread = threading.Thread(target=self._run, args=(w,), name=f'tag-worker-{w}', daemon=True)
      thread.start()
      self._threads.append(thread)

  def _run(self, worker: int) -> None:
    def send(message) -> None:
      if self._stopping:
        raise _Stopped
      self._results.put((worker, message))
    with contextlib.suppress(_Stopped):
      worker_loop(self._tasks[worker].get, send, self.feature_set, self.max_segments, self.spread)

  def _send(self, worker: int, task) -> None:
    self._tasks[worker].put(task)

  def _receive(self, timeout: float) -> tuple[list[tuple[int, tuple]], set[int]]:
    try:
      received = [self._results.get(timeout=timeout)]
    except queue.Empty:
      return [], set()
    while True:
      try:
        received.append(self._results.get_nowait())
      except queue.Empty:
        return received, set()

  def close(self) -> None:
    self._stopping = True  # a worker stops at its next message (its file in flight is dropped)
    for tasks in self._tasks:
      tasks.put(None)
    while any(thread.is_alive() for thread in self._threads):  # let any blocked put() finish
      try:
        self._results.get(timeout=0.05)
      except queue.Empty:
        pass
    self._limits.unregister()


class ProcessPool(Pool):
  """The workers as spawned processes, one pipe each (module docstring)."""

  kind = 'process'
  MAX_CRASHES = 100  # workers that died in a decoder, in one run, before giving up

  def __init__(self, workers: int, feature_set: str, max_segments: int, spread: int = 0):
    super().__init__(workers, feature_set, max_segments, spread)
    self._context = multiprocessing.get_context('spawn')
    self._processes: list[Any] = [None] * workers
    self._conns: list[Any] = [None] * workers
    self._started = 0
    with _no_main_reimport():
      for w in range(workers):
        self._start(w)

  def _start(self, worker: int) -> None:
    parent_end, child_end = self._context.Pipe(duplex=True)
    process = self._context.Process(target=_process_main, name=f'tag-worker-{self._started}',
                                    args=(self._started, child_end, self.feature_set, self.max_segments,
                                          self.spread),
                                    daemon=True)
    process.start()
    child_end.close()
    self._started += 1
    self._processes[worker], self._conns[worker] = process, parent_end

  def _send(self, worker: int, task) -> None:
    try:
      self._conns[worker].send(task)
    except (BrokenPipeError, ConnectionResetError, OSError):
      pass  # it died: _receive finds out and hands its files on

  def _receive(self, timeout: float) -> tuple[list[tuple[int, tuple]], set[int]]:
    by_object = {id(conn): w for w, conn in enumerate(self._conns)}
    by_sentinel = {process.sentinel: w for w, process in enumerate(self._processes)}
    ready = multiprocessing.connection.wait([*self._conns, *by_sentinel], timeout)
    received, dead = [], set()
    for obj in ready:
      if isinstance(obj, int):
        if not self._processes[by_sentinel[obj]].is_alive():
          dead.add(by_sentinel[obj])
        continue
      worker = by_object[id(obj)]
      try:
        while obj.poll():
          received.append((worker, obj.recv()))
      except (EOFError, OSError):
        dead.add(worker)
      except Exception:  # pylint: disable=broad-except  (a message cut off by a crash)
        dead.add(worker)
    for worker in dead:  # what a dead worker sent before it died (it may have finished a file)
      try:
        while self._conns[worker].poll():
          received.append((worker, self._conns[worker].recv()))
      except Exception:  # pylint: disable=broad-except
        pass
    return received, dead

  def _replace(self, worker: int) -> list[tuple]:
    """A dead worker's current file fails, a new worker takes the files it was handed after it."""
    process = self._processes[worker]
    process.join(timeout=5)
    self._conns[worker].close()
    tasks, self.outstanding[worker] = self.outstanding[worker], []
    self.crashes += 1
    if self.crashes > self.MAX_CRASHES:
      raise RuntimeError(f'{self.crashes} decoding workers died (the last with exit code {process.exitcode}); '
                         'giving up.')
    with _no_main_reimport():
      self._start(worker)
    messages = []
    if tasks:
      index, path = tasks[0]
      messages.append(('end', index, None, {
          'error': f'the decoder crashed on it (worker exit code {process.exitcode})'}))
      for index, path in tasks[1:]:
        self.outstanding[worker].append((index, path))
        self._send(worker, (index, path))
    return messages

  def close(self) -> None:
    for conn in self._conns:  # a worker stops at None, or when it finds its pipe closed
      with contextlib.suppress(OSError):
        conn.send(None)
      conn.close()
    for process in self._processes:
      process.join(timeout=2)
      if process.is_alive():
        process.terminate()
        process.join(timeout=5)


def make_pool(kind: str, workers: int, feature_set: str, max_segments: int, spread: int = 0) -> Pool:
  if kind not in POOLS:
    raise ValueError(f'--pool must be one of {", ".join(POOLS)}, got {kind!r}.')
  return (ProcessPool if kind == 'process' else ThreadPool)(workers, feature_set, max_segments, spread)
