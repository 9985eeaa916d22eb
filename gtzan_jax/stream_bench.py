"""`python -m gtzan_jax.benchmark --stream`: training from a split streamed from disk beside the same split in memory.

  results = measure(config, clips=20000, seconds=6, directory='bench/stream')
  results['streamed']['examples_per_s'], results['streamed']['peak_rss_mb']

Writes (once, untimed) a collection of `clips` synthetic clips of `seconds` each in the
`folders` layout (10 labels; each clip a different stretch of a `tfds_gtzan.synthetic` clip,
22050 Hz 16-bit mono WAV) under `directory/collection`, builds `gtzan_mel/folders` from it into
`directory/data` (timed: clips/s and the build's peak RSS), then trains the config for one
epoch twice per round, in a fresh process each: with every split in memory
(`--config.memory_budget` large enough) and with every split streamed (`memory_budget=0`), and
reports for each the trainer's examples/s (results.json: the first step, which compiles, left
out), the wall time and the process's peak RSS (its own `wait4` rusage). Interleaved for
`rounds` rounds; the best examples/s and the largest peak of each mode count. It also times the
streamed split's reader alone (batches read and decoded per second, a background thread ahead),
the headroom a faster accelerator would need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import ml_collections

LABELS = 10
CLIP_PIECES = 5  # clips cut from each generated 30 s synthetic clip


def write_collection(folder: str, clips: int, seconds: float) -> int:
  """`clips` WAV files under folder/<label>/; returns how many were written now (0: already there)."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top
  done = os.path.join(folder, '.complete')
  if os.path.exists(done) and open(done).read() == f'{clips} {seconds}':
    return 0
  size = int(seconds * synthetic.SAMPLE_RATE)
  for i in range(0, clips, CLIP_PIECES):
    label, index = (i // CLIP_PIECES) % LABELS, i // (CLIP_PIECES * LABELS)
    y = synthetic.generate_clip(label, index)
    directory = os.path.join(folder, f'label{label}')
    os.makedirs(directory, exist_ok=True)
    for piece in range(min(CLIP_PIECES, clips - i)):
      sf.write(os.path.join(directory, f'{index:05d}_{piece}.wav'), y[piece * size:(piece + 1) * size],
               synthetic.SAMPLE_RATE, subtype='PCM_16')
  with open(done, 'w') as f:
    f.write(f'{clips} {seconds}')
  return clips


def _build(collection: str, data_dir: str) -> dict[str, Any]:
  """Builds gtzan_mel/folders in a fresh process: its seconds and peak RSS."""
  program = "import sys\nfrom tfds_gtzan import data\ndata.get_builder('gtzan_mel/folders', sys.argv[2], sys.argv[1])\n"
  start = time.perf_counter()
  process = subprocess.Popen([sys.executable, '-c', program, collection, data_dir], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  out, err = _communicate_with_rusage(process)
  if process.returncode:
    raise RuntimeError(f'building gtzan_mel/folders from {collection} failed: {err[-3000:]}')
  return {'seconds': time.perf_counter() - start, 'peak_rss_mb': out['peak_rss_mb']}


def _train(config_file: str, collection: str, data_dir: str, workdir: str, budget: str,
           overrides: list[str]) -> dict[str, Any]:
  command = [sys.executable, '-m', 'gtzan_jax.main', f'--config={config_file}', f'--workdir={workdir}',
             '--config.dataset=gtzan_mel/folders', f'--config.manual_dir={collection}',
             f'--config.data_dir={data_dir}', f'--config.memory_budget={budget}', '--config.num_epochs=1',
             '--config.augment.audio_copies=0', '--config.compilation_cache_dir=', *overrides]
  start = time.perf_counter()
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  out, err = _communicate_with_rusage(process)
  seconds = time.perf_counter() - start
  if process.returncode:
    raise RuntimeError(f'training with memory_budget={budget} failed: {err[-3000:]}')
  results = json.load(open(os.path.join(workdir, 'results.json')))
  return {'examples_per_s': results['train_examples_per_s'], 'train_seconds': results['train_seconds_this_run'],
          'wall_seconds': seconds, 'peak_rss_mb': out['peak_rss_mb'], 'steps': results['step'],
          'test_accuracy': results['test']['accuracy']}


def _communicate_with_rusage(process: subprocess.Popen) -> tuple[dict[str, Any], str]:
  """Waits for `process` with wait4 (its own rusage), reading its output meanwhile."""
  import threading  # pylint: disable=g-import-not-at-top
  chunks = {'stdout': [], 'stderr': []}
  readers = [threading.Thread(target=lambda s=stream, n=name: chunks[n].append(s.read()))
             for name, stream in (('stdout', process.stdout), ('stderr', process.stderr))]
  for reader in readers:
    reader.start()
  _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  for reader in readers:
    reader.join()
  return {'peak_rss_mb': usage.ru_maxrss / 1024, 'stdout': ''.join(chunks['stdout'])}, ''.join(chunks['stderr'])


def reader_examples_per_s(data_dir: str, batch_size: int, batches: int = 300) -> dict[str, float]:
  """Batches of the streamed training split read and decoded (with `prefetch`) per second, no model."""
  from tfds_gtzan import data  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  split = data.StreamedSplit('gtzan_mel/folders', 'train', data_dir)
  opened = time.perf_counter() - start
  start = time.perf_counter()
  count = 0
  for batch in data.prefetch(data.iterate_batches(split, batch_size, shuffle=True, seed=0, epoch=0), 4):
    count += len(batch['label'])
    if count >= batches * batch_size:
      break
  return {'open_seconds': opened, 'examples_per_s': count / (time.perf_counter() - start), 'batch_size': batch_size}


def measure(config_file: str, config: ml_collections.ConfigDict, *, clips: int, seconds: float, directory: str,
            rounds: int = 2, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
  """Everything of the module docstring, JSON-ready."""
  collection, data_dir = os.path.join(directory, 'collection'), os.path.join(directory, 'data')
  start = time.perf_counter()
  written = write_collection(collection, clips, seconds)
  results: dict[str, Any] = {'clips': clips, 'clip_seconds': seconds, 'rounds': rounds,
                             'written_now': written, 'write_seconds': time.perf_counter() - start}
  if not os.path.isdir(os.path.join(data_dir, 'gtzan_mel', 'folders')):
    results['build'] = _build(collection, data_dir)
  example_bytes = 128 * 173 * 2
  from tfds_gtzan import data  # pylint: disable=g-import-not-at-top
  builder = data.get_builder('gtzan_mel/folders', data_dir, collection)
  sizes = {s: builder.info.splits[s].num_examples for s in ('train', 'validation', 'test')}
  results['segments'] = sizes
  results['feature_gb'] = sum(sizes.values()) * example_bytes / 1e9
  results['reader'] = reader_examples_per_s(data_dir, config.batch_size)
  budgets = {'in_memory': f'{int(2 * sum(sizes.values()) * example_bytes)}', 'streamed': '0'}
  runs = {mode: [] for mode in budgets}
  for round_ in range(rounds):
    for mode, budget in budgets.items():
      workdir = os.path.join(directory, f'run_{mode}_{round_}')
      if os.path.isdir(workdir):
        import shutil  # pylint: disable=g-import-not-at-top
        shutil.rmtree(workdir)
      runs[mode].append(_train(config_file, collection, data_dir, workdir, budget, list(overrides)))
      results[mode] = {'runs': runs[mode], 'examples_per_s': max(r['examples_per_s'] for r in runs[mode]),
                       'peak_rss_mb': max(r['peak_rss_mb'] for r in runs[mode])}
      print(f'{mode} round {round_ + 1}: {runs[mode][-1]}', flush=True)
  results['streamed_over_in_memory'] = results['streamed']['examples_per_s'] / results['in_memory']['examples_per_s']
  return results


def markdown(results: dict[str, Any]) -> str:
  s, m = results['streamed'], results['in_memory']
  sizes = results['segments']
  lines = [f"Streaming: {results['clips']} clips of {results['clip_seconds']:g} s, "
           f"{sum(sizes.values())} segments ({results['feature_gb']:.2f} GB of features; train {sizes['train']}), "
           f"one epoch per run, best of {results['rounds']} interleaved rounds:", '',
           '| split | train examples/s | peak RSS MB | wall s |', '|---|---|---|---|',
           f"| in memory | {m['examples_per_s']:.1f} | {m['peak_rss_mb']:.0f} | "
           f"{min(r['wall_seconds'] for r in m['runs']):.0f} |",
           f"| streamed | {s['examples_per_s']:.1f} | {s['peak_rss_mb']:.0f} | "
           f"{min(r['wall_seconds'] for r in s['runs']):.0f} |", '',
           f"Streamed / in memory: {results['streamed_over_in_memory']:.3f}. Reader alone: "
           f"{results['reader']['examples_per_s']:.0f} examples/s at batch {results['reader']['batch_size']} "
           f"(opening the split: {results['reader']['open_seconds']:.1f} s)."]
  if results.get('build'):
    b = results['build']
    lines.append(f"Build of gtzan_mel/folders: {b['seconds']:.0f} s ({results['clips'] / b['seconds']:.0f} clips/s), "
                 f"peak RSS {b['peak_rss_mb']:.0f} MB.")
  return '\n'.join(lines)
