"""kill -9 a training run at random moments, resume it, and compare with an uninterrupted run.

  python scripts/kill9_trials.py --trials=20 [--seed=S] [--workdir=DIR] [--max_kills=3]

Every trial trains the same tiny config (`python -m gtzan_jax.main` on one CPU
device) in a fresh workdir and SIGKILLs it 1 to `--max_kills` times, each time
at one of these moments:

* `checkpoint_write`: as soon as orbax's temporary directory
  (`<step>.orbax-checkpoint-tmp`) of one of the run's next 4 checkpoints
  appears, i.e. while that checkpoint is being written;
* `checkpoint_commit`: as soon as one of the run's next 4 `<step>` directories
  appears, i.e. right after orbax's rename commits it, while older checkpoints
  are being deleted;
* `random`: a uniformly random time into what is left of the training phase
  (first logged step to exit, evaluation included), counted from the run's
  first logged step; its length is estimated as the steps left times the
  fastest seconds per step seen so far (the load of a shared machine varies).

A kill is skipped once the run has nothing left to train; a `random` one may
also come too late, when the run has already finished.

After every kill each `checkpoints/<step>` directory left behind must restore
with orbax. Then the same command runs once more to completion. A trial passes
when that run exits 0, its final checkpoint equals the reference run's leaf by
leaf (params, BatchNorm statistics, optimizer state, step and rng; bitwise, or
else to 1e-6) and its results.json has the reference's validation and test
metrics.

The dataset is `gtzan_mel/tracks` over a tiny GTZAN folder of generated clips
(4 genres x 5 clips x 4.5 s: 24/8/8 segments), written and built once into
`<workdir>/data`; building `gtzan_mel/synthetic` (200 clips of 30 s) would cost
minutes. A run trains 18 steps of batch 4 with a checkpoint every 2 steps,
keeping 2 (so old checkpoints are deleted as new ones commit). Two
uninterrupted runs come first: the reference, which also fills the persistent
JAX compilation cache all runs share (a restart then costs imports but no
compilation), and a second one that must equal it, showing that training
itself is deterministic (`--nodeterminism_check` leaves it out).

Prints one line per trial and a summary ending in `N/N resumed with equal final
parameters`, writes `<workdir>/summary.json`, and exits 1 unless every trial
passed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import numpy as np
import orbax.checkpoint as ocp
import soundfile as sf
import tensorflow_datasets as tfds

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # Runs from a checkout, installed or not.

from tfds_gtzan import data as gtzan_data  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfds_gtzan import synthetic  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_integer('trials', 20, 'Number of kill-and-resume trials.')
flags.DEFINE_integer('seed', 0, 'Seed of the kill schedule (training itself always uses seed 0).')
flags.DEFINE_string('workdir', None, 'Where the data, runs and summary.json go; default: a new temporary directory.')
flags.DEFINE_integer('max_kills', 3, 'Each trial kills its run between 1 and this many times before finishing it.')
flags.DEFINE_bool('determinism_check', True, 'Run a second uninterrupted run that must equal the reference '
                  '(--nodeterminism_check saves one run, e.g. in tests).')

GENRES = 4  # The first GENRES of synthetic.GENRES.
CLIPS_PER_GENRE = 5  # The tracks config splits them 3/1/1 into train/validation/test.
CLIP_SECONDS = 4.5  # Two 2 s segments per clip.
NUM_EPOCHS = 3
CHECKPOINT_EVERY = 2  # Steps; every epoch's end is checkpointed too.
TRAINING_FLAGS = (
    '--config=configs/synthetic.py', '--config.dataset=gtzan_mel/tracks', '--config.vgg.widths=(4,)',
    '--config.batch_size=4', f'--config.num_epochs={NUM_EPOCHS}',
    f'--config.checkpoint_every_steps={CHECKPOINT_EVERY}', '--config.keep_checkpoints=2',
    '--config.log_every_steps=1')
KILL_MODES = ('checkpoint_write', 'checkpoint_commit', 'random')
MAX_CHECKPOINTS_TO_SKIP = 3
TMP_MARKER = '.orbax-checkpoint-tmp'
STEP_LINE = re.compile(r'step (\d+)/\d+')
POLL_SECONDS = 0.001
RUN_TIMEOUT_SECONDS = 600


@dataclasses.dataclass
class Kill:
  """One SIGKILL and what it left behind."""
  mode: str  # One of KILL_MODES.
  killed: bool = False  # False: the run finished before its moment came.
  delay_seconds: float | None = None  # `random`: when, counted from the run's first logged step.
  last_logged_step: int | None = None
  steps_left: list[int] = dataclasses.field(default_factory=list)  # Step directories after the kill.
  tmp_dirs_written: list[str] = dataclasses.field(default_factory=list)  # By this run and unfinished.
  unreadable: dict[int, str] = dataclasses.field(default_factory=dict)  # Step -> restore error.

  def describe(self) -> str:
    if not self.killed:
      return f'{self.mode}: finished first'
    when = 'before the first step' if self.last_logged_step is None else f'after step {self.last_logged_step}'
    mid_write = f', mid-write ({", ".join(self.tmp_dirs_written)})' if self.tmp_dirs_written else ''
    unreadable = f', UNREADABLE {self.unreadable}' if self.unreadable else ''
    resume = f'resume from {self.steps_left[-1]}' if self.steps_left else 'restart from scratch'
    return f'{self.mode} {when}{mid_write}{unreadable}, {resume}'


@dataclasses.dataclass
class Trial:
  """The kills of one trial and how its final run compares with the reference run."""
  index: int
  kills: list[Kill] = dataclasses.field(default_factory=list)
  returncode: int | None = None  # Of the final run.
  steps_trained: int | None = None  # By the final run.
  parameters: str | None = None  # compare_trees() of the final checkpoints.
  results_equal: bool | None = None  # results.json step, validation and test metrics.
  tmp_dirs_left: list[str] = dataclasses.field(default_factory=list)  # After the final run.

  @property
  def passed(self) -> bool:
    return (self.returncode == 0 and self.parameters in ('bitwise', '1e-6') and bool(self.results_equal)
            and not any(kill.unreadable for kill in self.kills))

  def describe(self) -> str:
    if self.returncode:
      outcome = f'final run exited {self.returncode}'
    else:
      outcome = (f'final run trained {self.steps_trained} steps; parameters {self.parameters}; '
                 f'results {"equal" if self.results_equal else "DIFFER"}')
    return f'trial {self.index}: {"; ".join(kill.describe() for kill in self.kills)} -> {outcome}'


class Workspace:
  """The tiny dataset, the shared compilation cache, and the command that trains in a workdir."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    self.manual_dir = root / 'manual'
    self.data_dir = root / 'data'
    self.env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1',
                    XLA_FLAGS='--xla_force_host_platform_device_count=1',
                    JAX_COMPILATION_CACHE_DIR=str(root / 'jax_cache'),
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')

  def prepare_data(self) -> None:
    """Writes the generated clips in GTZAN's layout and builds gtzan_mel/tracks from them (once)."""
    for genre in range(GENRES):
      folder = self.manual_dir / 'genres' / synthetic.GENRES[genre]
      folder.mkdir(parents=True, exist_ok=True)
      for index in range(CLIPS_PER_GENRE):
        path = folder / f'{synthetic.track_name(genre, index)}.wav'
        if not path.exists():
          sf.write(path, synthetic.generate_clip(genre, index, seconds=CLIP_SECONDS), synthetic.SAMPLE_RATE)
    gtzan_data.get_builder('gtzan_mel/tracks', str(self.data_dir), str(self.manual_dir))

  def start(self, workdir: pathlib.Path, log: pathlib.Path) -> subprocess.Popen:
    """Starts (or resumes) training in `workdir`, its output going to `log`."""
    command = [sys.executable, '-m', 'gtzan_jax.main', f'--workdir={workdir}', *TRAINING_FLAGS,
               f'--config.data_dir={self.data_dir}', f'--config.manual_dir={self.manual_dir}']
    with open(log, 'w') as f:
      return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=f, stderr=subprocess.STDOUT)


def _wait_until(condition: Callable[[], bool], process: subprocess.Popen) -> bool:
  """Polls `condition` until it holds (True) or `process` exits first (False)."""
  deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
  while time.monotonic() < deadline:
    if condition():
      return True
    if process.poll() is not None:
      return False
    time.sleep(POLL_SECONDS)
  raise TimeoutError(f'{process.args} ran for more than {RUN_TIMEOUT_SECONDS} s.')


def _logged_steps(log: pathlib.Path) -> list[int]:
  return [int(step) for step in STEP_LINE.findall(log.read_text())]


def _entries(checkpoints: pathlib.Path, wanted: Callable[[str], bool]) -> set[tuple[str, int]]:
  """(name, inode) of the entries of `checkpoints` whose name is `wanted`: a re-created one is new."""
  if not checkpoints.is_dir():
    return set()
  with os.scandir(checkpoints) as entries:
    return {(entry.name, entry.inode()) for entry in entries if wanted(entry.name)}


def _is_tmp(name: str) -> bool:
  return TMP_MARKER in name


def _step_dirs(checkpoints: pathlib.Path) -> list[int]:
  return sorted(int(name) for name, _ in _entries(checkpoints, str.isdigit))


def _appears(checkpoints: pathlib.Path, wanted: Callable[[str], bool], skip: int) -> Callable[[], bool]:
  """A condition that holds once the (skip+1)-th entry absent now appears in `checkpoints`."""
  seen = _entries(checkpoints, wanted)
  appeared = 0

  def condition() -> bool:
    nonlocal appeared
    new = _entries(checkpoints, wanted) - seen
    seen.update(new)
    appeared += len(new)
    return appeared > skip

  return condition


def _after_first_step(log: pathlib.Path, delay_seconds: float) -> Callable[[], bool]:
  """A condition that holds `delay_seconds` after the run logs its first step."""
  first_step_at = None

  def condition() -> bool:
    nonlocal first_step_at
    if first_step_at is None and _logged_steps(log):
      first_step_at = time.monotonic()
    return first_step_at is not None and time.monotonic() - first_step_at >= delay_seconds

  return condition


def restore(checkpoints: pathlib.Path, step: int) -> dict[str, Any]:
  """The `state` item of `checkpoints/<step>` as a tree of numpy arrays; its `meta` item must name `step`."""
  options = ocp.CheckpointManagerOptions(read_only=True)
  with ocp.CheckpointManager(checkpoints, options=options) as manager:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                             meta=ocp.args.JsonRestore()))
  if restored.meta['step'] != step or not ocp.tree.to_flat_dict(restored.state):
    raise ValueError(f'checkpoint {step} holds meta step {restored.meta["step"]} or an empty state')
  return restored.state


def final_state(workdir: pathlib.Path) -> tuple[int, dict[str, Any]]:
  """The latest step in `workdir` and its restored state."""
  step = _step_dirs(workdir / 'checkpoints')[-1]
  return step, restore(workdir / 'checkpoints', step)


def compare_trees(a: dict[str, Any], b: dict[str, Any]) -> str:
  """'bitwise' if every leaf is identical, '1e-6' if all agree to 1e-6, else what differs."""
  leaves_a, leaves_b = ocp.tree.to_flat_dict(a, sep='/'), ocp.tree.to_flat_dict(b, sep='/')
  if leaves_a.keys() != leaves_b.keys():
    return f'different leaves: {sorted(leaves_a.keys() ^ leaves_b.keys())}'
  if all(np.array_equal(leaves_a[k], leaves_b[k]) for k in leaves_a):
    return 'bitwise'
  difference, key = max(
      (float(np.max(np.abs(np.asarray(leaves_a[k], np.float64) - np.asarray(leaves_b[k], np.float64)),
                    initial=0.0)), k) for k in leaves_a)
  return '1e-6' if difference <= 1e-6 else f'max |difference| {difference:.3g} in {key}'


@dataclasses.dataclass
class Reference:
  """The uninterrupted run the trials are compared with, and the pace of the runs so far."""
  step: int
  state: dict[str, Any]
  results: dict[str, Any]
  checkpoint_steps: list[int]  # The steps a run checkpoints at.
  determinism: str  # compare_trees() of two uninterrupted runs.
  seconds_per_step: float  # The fastest so far, from a run's first logged step to its exit.

  def observe(self, seconds: float, steps: int) -> None:
    if steps:
      self.seconds_per_step = min(self.seconds_per_step, seconds / steps)


def kill_run(workspace: Workspace, workdir: pathlib.Path, log: pathlib.Path, mode: str,
             rng: np.random.Generator, reference: Reference) -> Kill:
  """Starts a run in `workdir`, SIGKILLs it at a moment chosen by `mode`, and checks what it left."""
  checkpoints = workdir / 'checkpoints'
  resume_step = max(_step_dirs(checkpoints), default=0)
  kill = Kill(mode)
  if mode == 'random':
    kill.delay_seconds = float(rng.uniform(0.0, reference.seconds_per_step * (reference.step - resume_step)))
    moment = _after_first_step(log, kill.delay_seconds)
  else:
    writes_left = sum(step > resume_step for step in reference.checkpoint_steps)
    skip = int(rng.integers(0, min(writes_left, MAX_CHECKPOINTS_TO_SKIP + 1)))
    moment = _appears(checkpoints, _is_tmp if mode == 'checkpoint_write' else str.isdigit, skip)
  started = time.time()
  process = workspace.start(workdir, log)
  try:
    if _wait_until(moment, process):
      process.send_signal(signal.SIGKILL)
    kill.killed = process.wait() == -signal.SIGKILL
  finally:
    if process.poll() is None:  # Interrupted while waiting: leave no orphan.
      process.kill()
      process.wait()
  logged = _logged_steps(log)
  kill.last_logged_step = logged[-1] if logged else None
  kill.steps_left = _step_dirs(checkpoints)
  kill.tmp_dirs_written = sorted(name for name, _ in _entries(checkpoints, _is_tmp)
                                 if (checkpoints / name).stat().st_mtime >= started)
  for step in kill.steps_left:
    try:
      restore(checkpoints, step)
    except Exception as e:  # pylint: disable=broad-exception-caught  # Whatever fails is the finding.
      kill.unreadable[step] = f'{type(e).__name__}: {e}'.splitlines()[0]
  return kill


def run_to_completion(workspace: Workspace, workdir: pathlib.Path, log: pathlib.Path) -> tuple[int, float]:
  """Runs training to its end; returns the exit code and the seconds from the first logged step to exit."""
  process = workspace.start(workdir, log)
  try:
    _wait_until(lambda: bool(_logged_steps(log)), process)
    first_step_at = time.monotonic()
    return process.wait(timeout=RUN_TIMEOUT_SECONDS), time.monotonic() - first_step_at
  finally:
    if process.poll() is None:  # Timed out or interrupted: leave no orphan.
      process.kill()
      process.wait()


def _results(workdir: pathlib.Path) -> dict[str, Any]:
  with open(workdir / 'results.json') as f:
    return json.load(f)


def run_trial(workspace: Workspace, index: int, rng: np.random.Generator, reference: Reference) -> Trial:
  """Kills a fresh run 1 to --max_kills times, finishes it, and compares it with `reference`.

  The first kill's mode cycles through KILL_MODES from trial to trial; later ones are drawn at random.
  """
  trial = Trial(index)
  workdir = workspace.root / f'trial_{index:03d}'
  num_kills = int(rng.integers(1, FLAGS.max_kills + 1))
  modes = [KILL_MODES[index % len(KILL_MODES)], *rng.choice(KILL_MODES, num_kills - 1).tolist()]
  for k, mode in enumerate(modes):
    if max(_step_dirs(workdir / 'checkpoints'), default=0) == reference.step:
      break  # Nothing left to train.
    log = workspace.root / f'{workdir.name}_kill{k}.log'
    trial.kills.append(kill_run(workspace, workdir, log, mode, rng, reference))
  trial.returncode, seconds = run_to_completion(workspace, workdir, workspace.root / f'{workdir.name}_final.log')
  if trial.returncode:
    return trial
  step, state = final_state(workdir)
  trial.parameters = (compare_trees(state, reference.state) if step == reference.step
                      else f'final step {step}, not {reference.step}')
  results = _results(workdir)
  trial.steps_trained = results['steps_trained_this_run']
  reference.observe(seconds, trial.steps_trained)
  trial.results_equal = all(results[key] == reference.results[key] for key in ('step', 'validation', 'test'))
  trial.tmp_dirs_left = sorted(name for name, _ in _entries(workdir / 'checkpoints', _is_tmp))
  return trial


def summarize(trials: list[Trial]) -> str:
  """What the kills hit, and how many trials resumed to the reference's parameters."""
  kills = [kill for trial in trials for kill in trial.kills if kill.killed]
  by_mode = ', '.join(f'{sum(kill.mode == mode for kill in kills)} {mode}' for mode in KILL_MODES)
  passed = [trial for trial in trials if trial.passed]
  bitwise = sum(trial.parameters == 'bitwise' for trial in passed)
  return '\n'.join([
      f'{len(kills)} kills ({by_mode}): {sum(bool(kill.tmp_dirs_written) for kill in kills)} during a '
      f'checkpoint write, {sum(kill.last_logged_step is None for kill in kills)} before the first step.',
      f'{sum(len(kill.steps_left) for kill in kills)} checkpoint directories left behind by kills, '
      f'{sum(len(kill.unreadable) for kill in kills)} unreadable; '
      f'{sum(len(trial.tmp_dirs_left) for trial in trials)} temporary directories left after the final runs.',
      f'{len(passed)}/{len(trials)} resumed with equal final parameters '
      f'({bitwise} bitwise, {len(passed) - bitwise} to 1e-6).',
  ])


def run_reference(workspace: Workspace) -> Reference:
  """Trains twice without interruption and checks that both runs end equal.

  The first run fills the compilation cache and is the reference; the second
  shows how far uninterrupted training is deterministic and sets the pace.
  """
  runs = []
  for name in ('reference', 'reference_again')[:2 if FLAGS.determinism_check else 1]:
    workdir = workspace.root / name
    returncode, seconds = run_to_completion(workspace, workdir, workspace.root / f'{name}.log')
    if returncode:
      raise SystemExit(f'error: an uninterrupted run exited {returncode}; see {workdir}.log')
    runs.append((*final_state(workdir), _results(workdir), seconds))
  step, state, results, seconds = runs[0]
  determinism = 'not checked'
  if len(runs) > 1:
    _, state_again, results_again, seconds = runs[1]
    determinism = compare_trees(state_again, state)
    if determinism not in ('bitwise', '1e-6') or results_again['test'] != results['test']:
      raise SystemExit(f'error: two uninterrupted runs differ ({determinism}); nothing to compare resumption with')
  steps_per_epoch = step // NUM_EPOCHS
  checkpoint_steps = [s for s in range(1, step + 1) if s % CHECKPOINT_EVERY == 0 or s % steps_per_epoch == 0]
  return Reference(step, state, results, checkpoint_steps, determinism, seconds_per_step=seconds / step)


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.ERROR)  # Keep TFDS's and orbax's chatter out of the report.
  tfds.disable_progress_bar()
  root = pathlib.Path(FLAGS.workdir or tempfile.mkdtemp(prefix='kill9_')).resolve()
  root.mkdir(parents=True, exist_ok=True)
  workspace = Workspace(root)
  begin = time.monotonic()
  workspace.prepare_data()
  reference = run_reference(workspace)
  equal = ('not run' if reference.determinism == 'not checked'
           else f'{reference.determinism} equal to it')
  print(f'reference: {reference.step} steps; a second uninterrupted run: {equal}; '
        f'{reference.seconds_per_step:.2f} s per step; runs and logs in {root}', flush=True)
  trials = []
  for index in range(FLAGS.trials):
    trials.append(run_trial(workspace, index, np.random.default_rng((FLAGS.seed, index)), reference))
    print(trials[-1].describe(), flush=True)
  summary = summarize(trials)
  print(f'{summary}\n{time.monotonic() - begin:.0f} s in all.')
  with open(root / 'summary.json', 'w') as f:
    json.dump({'summary': summary, 'fastest_seconds_per_step': reference.seconds_per_step,
               'trials': [dataclasses.asdict(trial) | {'passed': trial.passed} for trial in trials]}, f, indent=2)
  return 0 if all(trial.passed for trial in trials) else 1


if __name__ == '__main__':
  app.run(main)
