"""Two JAX processes with 4 CPU devices each train exactly like one process with 8 devices.

The test starts two worker processes that meet through `jax.distributed.initialize` on
127.0.0.1 (a free port). In one shared workdir per mode they train with `jit` for one epoch,
then resume from the checkpoint both wrote and train a second, and with `pmap` train two
epochs. The test compares them with one process over 8 devices. Both hold the same full
arrays; `tfds_gtzan.data.iterate_batches` gives each its own half of every global batch. Only
process 0 writes results.json, history.jsonl and TensorBoard events; both take part in every
orbax save and restore. Run as a script, this file is one worker:

  python tests/test_multiprocess.py PROCESS_ID PORT ROOT

(ROOT holds config.json and datasets.npz; docs/reliability.md shows how to launch training
itself on several processes).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
if __name__ == '__main__':
  sys.path.insert(0, str(REPO))

from gtzan_jax import arrays_io, metric_writers  # pylint: disable=g-import-not-at-top,wrong-import-position
from gtzan_jax import cli, train  # pylint: disable=g-import-not-at-top,wrong-import-position

NUM_PROCESSES = 2
DEVICES_PER_PROCESS = 4
# Epochs to train to in turn: jit trains 1, then resumes from the checkpoint both processes wrote
# and trains a second; pmap trains both in one run (a restart costs ~10 s of compilation).
RUNS = {'jit': (1, 2), 'pmap': (2,)}
TIMEOUT_SECONDS = 420  # For the whole job, which took 60-75 s on 2 busy cores.
GRACE_SECONDS = 60  # How much longer than the first to end the other may take before it is killed.


def save_datasets(datasets: dict[str, dict[str, np.ndarray]], path: pathlib.Path) -> None:
  arrays_io.save_splits(str(path), datasets)


def load_datasets(path: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
  return arrays_io.load_splits(str(path))


def _start_worker(process_id: int, port: int, root: pathlib.Path) -> ml_collections.ConfigDict:
  """Joins the other process on 127.0.0.1:`port`, sets up logging; returns `root`'s config."""
  jax.distributed.initialize(coordinator_address=f'127.0.0.1:{port}', num_processes=NUM_PROCESSES,
                             process_id=process_id, initialization_timeout=120)
  assert jax.process_count() == NUM_PROCESSES and jax.local_device_count() == DEVICES_PER_PROCESS
  logging.use_absl_handler()  # Timestamped lines on stderr, which a failing test prints.
  logging.set_verbosity(logging.INFO)
  cli.quiet_library_logs()
  return ml_collections.ConfigDict(json.loads((root / 'config.json').read_text()))


def sigterm_worker(process_id: int, port: int, root: pathlib.Path) -> None:
  """One process of the SIGTERM test: trains until stopped; its last stdout line is {'stopped_at': step}."""
  config = _start_worker(process_id, port, root)
  try:
    train.train_and_evaluate(config, str(root / 'sigterm'), load_datasets(root / 'datasets.npz'))
  except train.TrainingInterrupted as e:
    print(f'process {process_id}: {e}', file=sys.stderr, flush=True)
    print(json.dumps({'stopped_at': e.step}), flush=True)
    return
  print(json.dumps({'stopped_at': None}), flush=True)


def worker(process_id: int, port: int, root: pathlib.Path) -> None:
  """One process: for each mode of RUNS, trains to each of its epochs in turn in `root/<mode>`.

  Its last stdout line is a JSON object {mode: [results of each run]}.
  """
  config = _start_worker(process_id, port, root)
  datasets = load_datasets(root / 'datasets.npz')
  outcomes = {}
  for mode, epochs in RUNS.items():
    config.parallelism = mode
    outcomes[mode] = []
    for num_epochs in epochs:
      config.num_epochs = num_epochs
      started = time.perf_counter()
      outcomes[mode].append(train.train_and_evaluate(config, str(root / mode), datasets))
      print(f'process {process_id}: {mode} to epoch {num_epochs} in {time.perf_counter() - started:.1f} s',
            file=sys.stderr, flush=True)
  print(json.dumps(outcomes), flush=True)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def run_workers(root: pathlib.Path, role: str = 'train',
                on_poll: Any = None) -> list[dict[str, list[dict[str, Any]]]]:
  """Runs NUM_PROCESSES workers over `root` and returns what each printed; fails with their stderr.

  A worker whose peer has died waits for it forever in a collective, so once one fails, or
  one has ended and GRACE_SECONDS have passed, the rest are killed.
  """
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={DEVICES_PER_PROCESS}')
  port = _free_port()
  outs = [root / f'process_{i}.out' for i in range(NUM_PROCESSES)]
  errs = [root / f'process_{i}.err' for i in range(NUM_PROCESSES)]
  processes = []
  for i in range(NUM_PROCESSES):
    with open(outs[i], 'w') as out, open(errs[i], 'w') as err:
      processes.append(subprocess.Popen([sys.executable, __file__, str(i), str(port), str(root), role],
                                        cwd=REPO, env=env, stdout=out, stderr=err))
  deadline, first_end, problem = time.monotonic() + TIMEOUT_SECONDS, None, None
  try:
    while any(p.poll() is None for p in processes):
      if any(p.returncode for p in processes):
        problem = 'a process failed'
        break
      now = time.monotonic()
      first_end = first_end or (now if any(p.returncode is not None for p in processes) else None)
      if on_poll:
        on_poll(processes)
      if now > deadline or (first_end and now > first_end + GRACE_SECONDS):
        problem = f'timed out after {TIMEOUT_SECONDS if now > deadline else GRACE_SECONDS} s'
        break
      time.sleep(0.2)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
      p.wait()
  if problem or any(p.returncode for p in processes):
    report = [f'{problem or "a process failed"}; exit codes {[p.returncode for p in processes]} '
              f'(-9: killed here after the other failed or timed out)']
    for i in range(NUM_PROCESSES):
      report.append(f'--- process {i} stderr (last 4000 characters) ---\n{errs[i].read_text()[-4000:]}')
    pytest.fail('\n'.join(report), pytrace=False)
  return [json.loads(out.read_text().splitlines()[-1]) for out in outs]


def _latest_state(workdir: pathlib.Path) -> tuple[int, dict[str, Any]]:
  """The latest checkpoint step of `workdir` and its state, as numpy."""
  options = ocp.CheckpointManagerOptions(read_only=True)
  with ocp.CheckpointManager(workdir / 'checkpoints', options=options) as manager:
    step = manager.latest_step()
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  return step, jax.device_get(state)


@pytest.mark.slow
@pytest.mark.multidevice
def test_two_processes_train_like_one_with_eight_devices(tiny_config, fake_datasets, tmp_path):
  tiny_config.vgg.widths = (4,)  # Compilation dominates: the smallest model that has BatchNorm.
  tiny_config.checkpoint_every_steps = 3  # A mid-epoch checkpoint too.
  root = tmp_path / 'two_processes'
  root.mkdir()
  (root / 'config.json').write_text(tiny_config.to_json())
  save_datasets(fake_datasets, root / 'datasets.npz')
  per_process = run_workers(root)

  assert jax.device_count() == NUM_PROCESSES * DEVICES_PER_PROCESS, 'conftest.py gives 8 fake devices'
  tiny_config.parallelism = 'jit'
  single_dir = tmp_path / 'one_process'
  single = train.train_and_evaluate(tiny_config, str(single_dir), fake_datasets)  # 2 epochs
  assert single['device_count'] == 8 and single['process_count'] == 1
  _, single_state = _latest_state(single_dir)

  for mode, epochs in RUNS.items():
    workdir = root / mode
    runs = [outcome[mode] for outcome in per_process]  # Per process, the result of each run.
    for results in runs:
      last = results[-1]
      assert last['process_count'] == NUM_PROCESSES and last['device_count'] == 8, mode
      assert [r['step'] for r in results] == [4 * e for e in epochs], mode
      # A resumed run restored the checkpoint both processes wrote and trained only what was left.
      resumed_at = 4 * epochs[-2] if len(epochs) > 1 else 0
      assert last['steps_trained_this_run'] == 8 - resumed_at, mode
      for split in ('validation', 'test'):
        assert last[split]['num_examples'] == single[split]['num_examples'], (mode, split)
        assert last[split]['accuracy'] == single[split]['accuracy'], (mode, split)
        np.testing.assert_allclose(last[split]['loss'], single[split]['loss'], rtol=1e-5, err_msg=mode)
    assert runs[0][-1]['test'] == runs[1][-1]['test'], mode  # Both processes get the same global metrics.

    # Same per-epoch losses as the single process (history.jsonl holds the mean train loss).
    history = metric_writers.read_history(str(workdir))
    for got, expected in zip(history, metric_writers.read_history(str(single_dir)), strict=True):
      for key in ('train_loss', 'validation_loss'):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=f'{mode} {key}')

    # Only process 0 writes: one history line per epoch, one event file per run, results.json.
    assert len((workdir / 'history.jsonl').read_text().splitlines()) == 2, mode
    assert len(list((workdir / 'tensorboard').iterdir())) == len(epochs), mode
    results = json.loads((workdir / 'results.json').read_text())
    assert results['process_count'] == NUM_PROCESSES and results['test'] == runs[0][-1]['test'], mode

    # One set of checkpoints, written by both processes, equal to the single process's.
    step, state = _latest_state(workdir)
    assert step == 8 and int(state['step']) == 8, mode
    # Tolerance: see test_train.test_eight_devices_match_one_device (float reordering in the mean).
    for a, b in zip(jax.tree.leaves(state['params']), jax.tree.leaves(single_state['params']), strict=True):
      np.testing.assert_allclose(a, b, atol=1e-4, err_msg=mode)
    assert not list((workdir / 'checkpoints').glob('*orbax-checkpoint-tmp*')), mode


@pytest.mark.slow
@pytest.mark.multidevice
def test_sigterm_to_one_process_stops_both_at_one_checkpoint(tiny_config, fake_datasets, tmp_path):
  """SIGTERM to process 1 alone: both processes agree (an all-gather), checkpoint the same step and stop."""
  tiny_config.vgg.widths = (4,)
  tiny_config.parallelism = 'jit'
  tiny_config.num_epochs = 10_000  # never reached: the test stops it
  tiny_config.log_every_steps = 1
  root = tmp_path / 'sigterm_root'
  root.mkdir()
  (root / 'config.json').write_text(tiny_config.to_json())
  save_datasets(fake_datasets, root / 'datasets.npz')
  history = root / 'sigterm' / 'history.jsonl'
  signalled = []

  def signal_process_1_after_an_epoch(processes):
    if not signalled and history.exists() and history.read_text().strip():
      processes[1].send_signal(signal.SIGTERM)  # process 0, which writes the logs, gets nothing
      signalled.append(time.monotonic())

  outcomes = run_workers(root, role='sigterm', on_poll=signal_process_1_after_an_epoch)
  assert signalled
  steps = {outcome['stopped_at'] for outcome in outcomes}
  assert len(steps) == 1 and None not in steps, outcomes  # the same step in both processes
  step, state = _latest_state(root / 'sigterm')
  assert step == steps.pop() and int(state['step']) == step and step >= 4  # past the first epoch
  assert not list((root / 'sigterm' / 'checkpoints').glob('*orbax-checkpoint-tmp*'))


if __name__ == '__main__':
  (sigterm_worker if sys.argv[4:] == ['sigterm'] else worker)(
      int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3]))
