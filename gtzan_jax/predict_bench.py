"""`python -m gtzan_jax.benchmark --predict`: tagging speed, the library path beside today's one-file path.

  results = measure(config, clips=100, long_files=8, rounds=2)
  results['files_per_s'], results['baseline_files_per_s']      # 30 s clips

Writes, untimed, a folder of `clips` synthetic 30 s clips (`tfds_gtzan.synthetic`, 22050 Hz
16-bit mono WAV, as GTZAN's) and one of `long_files` 3-minute songs (44.1 kHz 16-bit stereo
WAV, as CD rips), then times, interleaved for `rounds` rounds (each keeps its best):

  baseline            today's path: `predict.predict_file` on one file after another (decoded in
                      this thread, the rest of the file decoded for its duration, 16 segments per
                      forward pass), with the process's BLAS threads as they are
  baseline_one_blas   the same inside threadpoolctl's limit of one BLAS thread: what part of the
                      gain is only that (on a loaded 2-core machine OpenBLAS's second thread makes
                      the features several times slower)
  process, thread     the library path (`predict.write_rows`: walk, `tagging.Tagger`, the CSV
                      written chunk by chunk) with spawned worker processes, started before the
                      timer (their start-up, and the model's compilation, timed apart: `startup_s`),
                      or threads, started in it (milliseconds; they limit BLAS process-wide while
                      they run, so they are stopped between their timers)

  before              with `before` (a checkout of the code before issue 18, `--predict_before`):
                      its one-file path as it was, timed by scripts/todays_path.py run from that
                      checkout on the same clips, in a child process with that code's own XLA
                      flags (training's; XLA_FLAGS cleared); its model is its configs/default.py's

The model is the config's with its initial weights: the speed of a trained one. With
--predict_only the process has predict's XLA flags (`tagging.set_inference_flags`), which both
paths then use; after the training benchmarks (--predict alone) it has training's. files/s
counts files, segments/s the segments through the model (14 per 30 s clip; 14 per song: the
default cap of 28 s, whose duration then comes from the header instead of a full decode).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import ml_collections
import numpy as np

CLIP_SECONDS = 30
LONG_SECONDS = 180
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_clips(folder: str, count: int) -> list[str]:
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top
  paths = []
  for i in range(count):
    genre, index = i % len(synthetic.GENRES), i // len(synthetic.GENRES)
    directory = os.path.join(folder, synthetic.GENRES[genre])
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f'{synthetic.track_name(genre, index)}.wav')
    sf.write(path, synthetic.generate_clip(genre, index), synthetic.SAMPLE_RATE, subtype='PCM_16')
    paths.append(path)
  return paths


def _write_songs(folder: str, count: int) -> list[str]:
  """3-minute 44.1 kHz stereo songs: six 30 s synthetic clips of one genre, end to end."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  paths = []
  for i in range(count):
    genre = i % len(synthetic.GENRES)
    y = np.concatenate([synthetic.generate_clip(genre, 100 + 6 * i + k, sample_rate=44100)
                        for k in range(LONG_SECONDS // CLIP_SECONDS)])
    path = os.path.join(folder, f'song{i:03d}.wav')
    sf.write(path, np.stack([y, 0.9 * np.roll(y, 37)], axis=1), 44100, subtype='PCM_16')
    paths.append(path)
  return paths


def _warm(paths: list[str]) -> None:
  for path in paths:
    with open(path, 'rb') as f:
      while f.read(1 << 24):
        pass


def initial_model(config: ml_collections.ConfigDict) -> Any:
  """The config's model with its initial weights, as `benchmark.create_state` makes it (not imported:
  under `python -m gtzan_jax.benchmark` that module is __main__, and importing it again redefines its flags).

  What the tagging timers run (here, scripts/row_forward_ab.py, scripts/tagging_bound.py): the speed
  of a trained model."""
  import jax  # pylint: disable=g-import-not-at-top
  from gtzan_jax import evaluation, models, train  # pylint: disable=g-import-not-at-top
  state = train.create_train_state(jax.random.PRNGKey(config.seed), config, models.create_model(config),
                                   steps_per_epoch=100, pretrained=False)
  return evaluation.Trained(config, jax.device_put(state, jax.local_devices()[0]), 0, 0.0)


def _before_timer(checkout: str, folder: str) -> Callable[[], tuple[int, int, float]]:
  """Times the one-file path of `checkout` (module docstring, `before`) on the clips in `folder`."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  script = os.path.join(REPO, 'scripts', 'todays_path.py')

  def run() -> tuple[int, int, float]:
    done = subprocess.run([sys.executable, script, folder, '--rounds=1'], cwd=checkout, env=env,
                          capture_output=True, text=True, check=False)
    found = re.search(r'round 1: .*\((\d+) files, (\d+) segments in ([\d.]+) s\)', done.stdout)
    if done.returncode or not found:
      raise RuntimeError(f'--predict_before: scripts/todays_path.py failed in {checkout}:\n{done.stderr[-3000:]}')
    return int(found.group(1)), int(found.group(2)), float(found.group(3))
  return run


def _commit(checkout: str) -> str | None:
  done = subprocess.run(['git', '-C', checkout, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=False)
  return done.stdout.strip() or None


def measure(config: ml_collections.ConfigDict, *, clips: int = 100, long_files: int = 8, rounds: int = 2,
            batch_size: int = 0, workers: int = 0, pools: tuple[str, ...] = ('process', 'thread'),
            before: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
  """Every measurement of the module docstring; returns them JSON-ready."""
  if before and not os.path.isfile(os.path.join(before, 'gtzan_jax', 'predict.py')):
    raise ValueError(f'--predict_before: {before} is not a checkout of this project (no gtzan_jax/predict.py).')
  import threadpoolctl  # pylint: disable=g-import-not-at-top
  from gtzan_jax import predict, tag_output, tag_report, tagging  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import library  # pylint: disable=g-import-not-at-top
  trained = initial_model(config)
  workers = workers or os.cpu_count() or 1
  results: dict[str, Any] = {'clips': clips, 'clip_seconds': CLIP_SECONDS, 'long_files': long_files,
                             'long_seconds': LONG_SECONDS, 'rounds': rounds, 'workers': workers,
                             'default_pool': predict.POOL, 'cpu_count': os.cpu_count()}
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    folders = {'clips': os.path.join(tmp, 'clips'), 'long': os.path.join(tmp, 'long')}
    paths = {'clips': _write_clips(folders['clips'], clips), 'long': _write_songs(folders['long'], long_files)}
    for kind in paths:
      _warm(paths[kind])
    log(f'predict benchmark: wrote {clips} clips of {CLIP_SECONDS} s and {long_files} songs of '
        f'{LONG_SECONDS} s in {time.perf_counter() - start:.0f} s (untimed)')
    taggers, startup = {}, {}
    for pool in pools:
      start = time.perf_counter()
      taggers[pool] = tagging.Tagger(trained, batch_size=batch_size, workers=workers, pool=pool).start()
      # The first batch compiles the model; the pool's workers have imported their modules by their reply.
      list(taggers[pool].tag(library.walk([paths['clips'][0]]).entries))
      startup[pool] = time.perf_counter() - start
      if pool == 'thread':
        taggers[pool].close()  # see library_run
    predict.predict_file(trained, paths['clips'][0])  # compiles today's path
    results['batch_size'] = next(iter(taggers.values())).batch_size if taggers else None
    results['model_devices'] = next(iter(taggers.values())).forward.parallel if taggers else None

    def baseline(kind: str, one_blas: bool) -> Callable[[], tuple[int, int]]:
      def run() -> tuple[int, int]:
        with threadpoolctl.threadpool_limits(1, 'blas') if one_blas else contextlib.nullcontext():
          segments = sum(len(predict.predict_file(trained, path).segment_probabilities) for path in paths[kind])
        return len(paths[kind]), segments
      return run

    def library_run(kind: str, pool: str) -> Callable[[], tuple[int, int]]:
      def run() -> tuple[int, int]:
        tagger = taggers[pool]
        before = tagger.counters.segments
        found = library.walk([folders[kind]])
        row_format = tag_output.RowFormat('csv')
        out = tag_output.OutputFile(os.path.join(tmp, f'{kind}_{pool}.csv'), row_format, found.entries,
                                    {'benchmark': True}, overwrite=True)
        try:
          predict.write_rows(tagger, found.entries, out, row_format, tag_report.LibraryStats(tagger.class_names))
        finally:
          if pool == 'thread':  # its BLAS limit is process-wide: off for the other timers (restarts in ms)
            tagger.close()
        return len(found.entries), tagger.counters.segments - before
      return run

    timers = {('clips', 'baseline'): baseline('clips', False),
              ('clips', 'baseline_one_blas'): baseline('clips', True),
              **{('clips', pool): library_run('clips', pool) for pool in pools}}
    if before:
      timers[('clips', 'before')] = _before_timer(before, folders['clips'])
      results['before'] = {'checkout': os.path.abspath(before), 'commit': _commit(before)}
    if long_files:
      timers.update({('long', 'baseline'): baseline('long', False),
                     **{('long', pool): library_run('long', pool) for pool in pools}})
    best: dict[tuple[str, str], dict[str, float]] = {}
    for round_ in range(rounds):
      for key, timer in timers.items():
        start = time.perf_counter()
        files, segments, *own = timer()  # a child process's timer gives its own seconds
        seconds = own[0] if own else time.perf_counter() - start
        rate = {'files_per_s': files / seconds, 'segments_per_s': segments / seconds, 'seconds': seconds}
        if key not in best or rate['files_per_s'] > best[key]['files_per_s']:
          best[key] = rate
        log(f'  round {round_ + 1}: {key[0]} {key[1]}: {files / seconds:.2f} files/s, '
            f'{segments / seconds:.0f} segments/s')
    for tagger in taggers.values():
      tagger.close()
  default = predict.POOL if predict.POOL in pools else pools[0]
  for kind in ('clips', 'long'):
    section = {name: best[(kind, name)] | ({'startup_s': startup[name]} if name in startup else {})
               for name in ('baseline', 'baseline_one_blas', 'before', *pools) if (kind, name) in best}
    if not section:
      continue
    figures = {'files_per_s': section[default]['files_per_s'], 'segments_per_s': section[default]['segments_per_s'],
               'baseline_files_per_s': section['baseline']['files_per_s'],
               'baseline_segments_per_s': section['baseline']['segments_per_s'],
               'speedup': section[default]['files_per_s'] / section['baseline']['files_per_s'], 'runs': section}
    if kind == 'clips':
      results.update(figures)
      results['baseline_one_blas_files_per_s'] = section['baseline_one_blas']['files_per_s']
      if 'before' in section:
        results['before'].update(files_per_s=section['before']['files_per_s'],
                                 speedup=section[default]['files_per_s'] / section['before']['files_per_s'])
    else:
      results['long'] = figures
  return results


def markdown(results: dict[str, Any]) -> str:
  """The results as one markdown table."""
  from gtzan_jax import tables  # pylint: disable=g-import-not-at-top
  rows = []
  for kind, section, length in (('clips', results, results['clip_seconds']),
                                ('long', results.get('long'), results['long_seconds'])):
    if not section:
      continue
    count = results['clips'] if kind == 'clips' else results['long_files']
    for name, rate in section['runs'].items():
      rows.append([f'{count} x {length} s', name, f"{rate['files_per_s']:.2f}", f"{rate['segments_per_s']:.0f}",
                   f"{rate['files_per_s'] / section['runs']['baseline']['files_per_s']:.2f}x",
                   f"{rate['startup_s']:.1f}" if 'startup_s' in rate else '-'])
  before = results.get('before')
  note = (f"\n\n'before': the one-file path of {before['checkout']} (commit {before['commit']}); the library "
          f"path ({results['default_pool']}s) is {before['speedup']:.2f}x it." if before and 'speedup' in before else '')
  return (f"Tagging ({results['workers']} workers, batch {results['batch_size']} on {results.get('model_devices')} "
          f"model device(s), best of {results['rounds']} "
          f"interleaved rounds; --pool=auto takes {results['default_pool']}s):\n\n"
          + tables.markdown_table(['files', 'path', 'files/s', 'segments/s', 'vs today', 'start-up s'], rows) + note)
