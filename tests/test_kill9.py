"""kill -9 during an async checkpoint write and right after a commit, then resume.

Runs scripts/kill9_trials.py with two trials, one per kind of checkpoint moment, and without its
second uninterrupted run, to stay fast. `--trials=20` is the full experiment, random moments
included; its result is in docs/reliability.md.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO

TIMEOUT_SECONDS = 600  # It takes about a minute on 2 cores.


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_parameters(tmp_path):
  command = [sys.executable, 'scripts/kill9_trials.py', '--trials=2', '--max_kills=1', '--nodeterminism_check',
             f'--workdir={tmp_path}']
  # A session of its own, so that a timeout also ends the training run the script has started.
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
  try:
    stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
  except subprocess.TimeoutExpired:
    os.killpg(process.pid, signal.SIGKILL)
    stdout, stderr = process.communicate()
    pytest.fail(f'timed out after {TIMEOUT_SECONDS} s:\n{stdout[-3000:]}\n{stderr[-3000:]}', pytrace=False)
  assert process.returncode == 0, f'exit {process.returncode}:\n{stdout[-3000:]}\n{stderr[-3000:]}'
  assert '2/2 resumed with equal final parameters' in stdout, stdout
  trials = json.loads((tmp_path / 'summary.json').read_text())['trials']
  kills = [kill for trial in trials for kill in trial['kills']]
  assert [kill['mode'] for kill in kills] == ['checkpoint_write', 'checkpoint_commit']
  assert kills[0]['killed'] and kills[0]['tmp_dirs_written'], kills[0]  # It died mid-write.
  assert kills[1]['killed'] and kills[1]['steps_left'], kills[1]  # It died with a checkpoint to resume from.
  assert all(not kill['unreadable'] for kill in kills), kills
  assert all(trial['parameters'] in ('bitwise', '1e-6') and trial['results_equal'] for trial in trials), trials
  assert not any(trial['tmp_dirs_left'] for trial in trials), trials
