"""The command line end to end: train, rerun (nothing left to do), extend (resume), config errors."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def _main(workdir, data_dir, *overrides, devices=8, env=None):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', JAX_PLATFORMS='cpu',
             **(env or {}))
  cmd = [sys.executable, '-m', 'gtzan_jax.main', '--config=configs/synthetic.py', f'--workdir={workdir}',
         f'--config.data_dir={data_dir}', '--config.vgg.widths=(4,)', '--config.batch_size=64',
         '--config.log_every_steps=10', *overrides]
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _results(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


@pytest.mark.slow
@pytest.mark.multidevice
@pytest.mark.parametrize('mode', ['jit'])  # pmap on 8 devices resumes in-process: test_reliability, test_train
def test_train_rerun_and_resume_on_eight_devices(synthetic_data_dir, tmp_path, mode):
  workdir = str(tmp_path / mode)
  first = _main(workdir, synthetic_data_dir, f'--config.parallelism={mode}', '--config.num_epochs=1')
  assert first.returncode == 0, first.stderr[-3000:]
  assert f'Results: {workdir}/results.json' in first.stdout
  r1 = _results(workdir)
  assert r1['device_count'] == 8 and r1['epochs'] == 1.0 and r1['steps_trained_this_run'] == r1['step'] > 0
  assert r1['test']['num_examples'] == 420 and r1['validation']['num_examples'] == 420

  again = _main(workdir, synthetic_data_dir, f'--config.parallelism={mode}', '--config.num_epochs=1')
  assert again.returncode == 0, again.stderr[-3000:]
  r2 = _results(workdir)
  assert r2['steps_trained_this_run'] == 0 and r2['step'] == r1['step'] and r2['test'] == r1['test']

  more = _main(workdir, synthetic_data_dir, f'--config.parallelism={mode}', '--config.num_epochs=2')
  assert more.returncode == 0, more.stderr[-3000:]
  assert f'Resumed from {workdir}/checkpoints/{r1["step"]}' in more.stderr
  r3 = _results(workdir)
  assert r3['epochs'] == 2.0 and r3['steps_trained_this_run'] == r1['step']
  assert os.path.isdir(os.path.join(workdir, 'tensorboard'))
  with open(os.path.join(workdir, 'history.jsonl')) as f:
    assert [json.loads(line)['epoch'] for line in f] == [1, 2]


@pytest.mark.parametrize('override, message', [
    ('--config.batch_size=12', 'config.batch_size=12 does not divide by the 8 devices'),
    ('--config.parallelism=spmd', "config.parallelism must be one of ('pmap', 'jit')"),
    ('--config.model=resnet', "Unknown model 'resnet'"),
    ('--config.batch_sise=32', "error: --config.batch_sise=32: configs/synthetic.py has no field 'batch_sise'; "
                               "did you mean 'batch_size'"),
    ('--config.learning_rate=-1', "error: config: learning_rate=-1.0 (positive)."),
])
def test_config_mistakes_are_one_line_errors(tmp_path, override, message):
  """A mistyped key, a value of the wrong type or one that cannot work: one line, no traceback."""
  result = _main(str(tmp_path / 'w'), str(tmp_path / 'data'), override)
  assert result.returncode != 0
  assert message in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]
  assert 'Traceback' not in result.stderr, result.stderr[-2000:]


def test_an_unknown_nested_field_names_the_closest_ones():
  """In-process twin of the command-line cases above (each of those costs a process start)."""
  from gtzan_jax import cli
  argv = ['main', '--config=configs/synthetic.py', '--config.vgg.widthz=(4,)']
  assert cli.unknown_config_field(argv) == (
      "--config.vgg.widthz=(4,): configs/synthetic.py has no field 'vgg.widthz'; did you mean 'vgg.widths'?")
  assert cli.unknown_config_field(['main', '--config=configs/synthetic.py', '--config.vgg.widths=(4,)']) is None


@pytest.mark.slow
def test_a_second_run_loads_its_compiled_step_from_the_cache(synthetic_data_dir, tmp_path):
  """config.compilation_cache_dir: the first run writes its compiled steps there, the second adds none.

  A second run that compiled anything again would add entries: the cache keys are the programs'.
  """
  cache = tmp_path / 'cache'
  env = {'JAX_COMPILATION_CACHE_DIR': ''}  # conftest's suite-wide cache would win over the config
  runs, entries = [], []
  for name in ('first', 'second'):
    result = _main(str(tmp_path / name), synthetic_data_dir, '--config.num_epochs=1',
                   f'--config.compilation_cache_dir={cache}', devices=1, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'First step (compilation included)' in result.stderr
    runs.append(_results(str(tmp_path / name)))
    entries.append(sorted(os.listdir(cache)))
  assert any(e.startswith('jit_train_step-') for e in entries[0]), entries[0]
  assert entries[1] == entries[0]  # every program of the second run came from the cache
  assert runs[0]['test'] == runs[1]['test']


def test_jax_compilation_cache_dir_wins_over_the_config():
  import jax
  from gtzan_jax import cli
  before = jax.config.jax_compilation_cache_dir
  assert before  # conftest sets JAX_COMPILATION_CACHE_DIR for the suite
  cli.use_compilation_cache('/nonexistent/elsewhere')
  assert jax.config.jax_compilation_cache_dir == before
