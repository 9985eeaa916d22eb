"""Runs several cross-validation "arms" (config variants) side by side and tabulates them.

  python scripts/crossval_arms.py --arms=scripts/cv_arms.txt --arrays=pooled.npz \
      --workdir=/tmp/cv --jobs=8 --deadline_s=300 --out=cv_out

Each non-comment line of --arms is `name | config file | --config.x=... overrides`; each
arm runs `python -m gtzan_jax.crossval --arrays=...` in its own process, at most --jobs
at a time, in the file's order (put the arms that matter most first). On a GPU the
processes share the chip (no preallocation, one persistent compilation cache), which
keeps a small model's chip busy while another process compiles or checkpoints. At
--deadline_s the arms still running are stopped; their finished folds still count.

Writes to --out: `arms.md` and `arms.json` (mean +- std of segment and track accuracy
over the folds that finished, per arm) and `arms.tgz` (every arm's crossval.json/md,
fold.json files and log).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gtzan_jax import report, tables  # noqa: E402  pylint: disable=wrong-import-position


def read_arms(path: str) -> list[dict[str, object]]:
  arms = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      line = line.split('#', 1)[0].strip()
      if not line:
        continue
      parts = [p.strip() for p in line.split('|')]
      if len(parts) != 3:
        raise SystemExit(f'{path}:{number}: expected "name | config | overrides", got {line!r}')
      arms.append({'name': parts[0], 'config': parts[1], 'overrides': shlex.split(parts[2])})
  return arms


def summarize(workdir: str, arm: dict[str, object], seconds: float, status: str) -> dict[str, object]:
  folds = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(workdir, 'fold_*', 'fold.json')))]
  row: dict[str, object] = {'name': arm['name'], 'config': arm['config'], 'overrides': arm['overrides'],
                            'folds_done': len(folds), 'wall_s': round(seconds, 1), 'status': status}
  for kind in ('last', 'best'):
    for level in ('segment', 'track'):
      values = [100 * f[kind][level]['accuracy'] for f in folds]
      stats = tables.mean_std(values)
      row[f'{kind}_{level}'] = values
      row[f'{kind}_{level}_mean'], row[f'{kind}_{level}_std'] = stats['mean'], stats['std']
  rates = [f['train_examples_per_s'] for f in folds if f.get('train_examples_per_s')]
  row['train_examples_per_s'] = float(np.mean(rates)) if rates else None
  seconds = [f['segments']['train'] / f['train_examples_per_s'] for f in folds if f.get('train_examples_per_s')]
  row['epoch_s'] = float(np.mean(seconds)) if seconds else None  # as timed by the trainer, compilation excluded
  row['devices'] = sorted({f.get('device_kind', 'unrecorded') for f in folds})
  return row


def markdown(rows: list[dict[str, object]]) -> str:
  def cell(row, key):
    return tables.percent_mean_std({'mean': row[f'{key}_mean'], 'std': row[f'{key}_std']}, scale=1)
  header = ['arm', 'overrides', 'folds', 'segment % (last)', 'track % (last)', 'segment % (best val.)',
            'track % (best val.)', 'track % per fold (last)', 'train ex/s', 's per epoch', 'wall s']
  return tables.markdown_table(header, [
      [r['name'], f"{os.path.basename(str(r['config']))} {' '.join(r['overrides'])}", r['folds_done'],
       cell(r, 'last_segment'), cell(r, 'last_track'), cell(r, 'best_segment'), cell(r, 'best_track'),
       ', '.join(f'{v:.0f}' for v in r['last_track']),
       f"{r['train_examples_per_s']:.0f}" if r['train_examples_per_s'] else '-',
       '-' if r['epoch_s'] is None else format(r['epoch_s'], '.1f'), r['wall_s']] for r in rows])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--arms', required=True)
  parser.add_argument('--arrays', required=True)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--out', required=True)
  parser.add_argument('--jobs', type=int, default=1)
  parser.add_argument('--folds', type=int, default=5)
  parser.add_argument('--deadline_s', type=float, default=float('inf'))
  parser.add_argument('--only', default='', help='Comma-separated arm names (default: all).')
  parser.add_argument('--tabulate', action='store_true',
                      help='Run nothing: tabulate the folds already in --workdir (from any machine).')
  parser.add_argument('--extra', default='', help='Overrides appended to every arm, e.g. "--config.num_epochs=1".')
  args = parser.parse_args()
  arms = read_arms(args.arms)
  if args.only:
    arms = [a for a in arms if a['name'] in args.only.split(',')]
  os.makedirs(args.out, exist_ok=True)
  env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE='false', PYTHONUNBUFFERED='1',
             JAX_COMPILATION_CACHE_DIR=os.environ.get('JAX_COMPILATION_CACHE_DIR',
                                                      os.path.join(args.workdir, 'jax_cache')))
  start = time.monotonic()
  pending, running, rows = list(arms), {}, []
  if args.tabulate:
    rows, pending = [summarize(os.path.join(args.workdir, str(a['name'])), a, 0.0, 'tabulated') for a in arms], []

  def finish(name: str, status: str) -> None:
    process, arm, began, log = running.pop(name)
    log.close()
    rows.append(summarize(os.path.join(args.workdir, name), arm, time.monotonic() - began, status))
    print(f'[{time.monotonic() - start:6.0f} s] {name}: {status}, {rows[-1]["folds_done"]} folds, '
          f'track {rows[-1]["last_track"]}', flush=True)

  while pending or running:
    while pending and len(running) < args.jobs and time.monotonic() - start < args.deadline_s:
      arm = pending.pop(0)
      workdir = os.path.join(args.workdir, str(arm['name']))
      os.makedirs(workdir, exist_ok=True)
      command = [sys.executable, '-m', 'gtzan_jax.crossval', f'--config={arm["config"]}', f'--workdir={workdir}',
                 f'--arrays={args.arrays}', f'--folds={args.folds}', *arm['overrides'],
                 *shlex.split(args.extra)]
      log = open(os.path.join(workdir, 'log.txt'), 'w')
      running[str(arm['name'])] = (subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                                    stderr=subprocess.STDOUT), arm, time.monotonic(), log)
    for name, (process, *_) in list(running.items()):
      if process.poll() is not None:
        finish(name, 'done' if process.returncode == 0 else f'exit {process.returncode}')
    if time.monotonic() - start > args.deadline_s:
      for name, (process, *_) in list(running.items()):
        process.kill()
        process.wait()
        finish(name, 'cut at deadline')
      rows += [summarize(os.path.join(args.workdir, str(a['name'])), a, 0.0, 'not started') for a in pending]
      pending = []
    time.sleep(1)
  order = {a['name']: i for i, a in enumerate(arms)}
  rows.sort(key=lambda r: order[r['name']])
  report.write_json(os.path.join(args.out, 'arms.json'), rows)
  report.write_text(os.path.join(args.out, 'arms.md'), markdown(rows))
  with tarfile.open(os.path.join(args.out, 'arms.tgz'), 'w:gz') as tar:
    for pattern in ('*/crossval.json', '*/crossval.md', '*/log.txt', '*/fold_*/fold.json',
                    '*/crossval_confusion_*.png'):
      for path in sorted(glob.glob(os.path.join(args.workdir, pattern))):
        tar.add(path, arcname=os.path.relpath(path, args.workdir))
  print(markdown(rows), flush=True)


if __name__ == '__main__':
  main()
