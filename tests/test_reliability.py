"""Restoring on another device count, NaN stops, SIGTERM, and run-to-run determinism."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from gtzan_jax import checkpointing, train

TIMING_KEYS = ('train_seconds_this_run', 'train_examples_per_s')


@pytest.mark.multidevice
@pytest.mark.parametrize('save_mode, save_devices, load_mode, load_devices',
                         [('pmap', 8, 'jit', 1), ('jit', 1, 'pmap', 8), ('jit', 8, 'pmap', 1), ('pmap', 1, 'jit', 8)])
def test_checkpoint_restores_on_another_device_count(tiny_config, fake_datasets, tmp_path,
                                                     save_mode, save_devices, load_mode, load_devices):
  tiny_config.num_epochs = 1
  tiny_config.parallelism = save_mode
  saved = train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:save_devices])
  tiny_config.parallelism = load_mode
  loaded = train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, jax.devices()[:load_devices])
  assert loaded['steps_trained_this_run'] == 0 and loaded['device_count'] == load_devices
  for split in ('validation', 'test'):
    assert loaded[split]['num_examples'] == saved[split]['num_examples']
    assert loaded[split]['accuracy'] == pytest.approx(saved[split]['accuracy'], abs=1e-6)
    assert loaded[split]['loss'] == pytest.approx(saved[split]['loss'], rel=1e-5)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, fake_datasets, tmp_path):
  devices = jax.devices()[:1]
  tiny_config.num_epochs = 1
  train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, devices)  # good checkpoint at step 4
  fake_datasets['train']['mel'][:] = np.nan
  tiny_config.num_epochs = 2
  with pytest.raises(train.NonFiniteLossError, match=r'loss .*became nan by step 6; .*last good checkpoint is step 4'):
    train.train_and_evaluate(tiny_config, str(tmp_path), fake_datasets, devices)
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'checkpoints'))
  assert ckpt.manager.all_steps() == [4]
  restored = ckpt.manager.restore(4)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored.state['params']))
  ckpt.close()


def test_same_config_and_seed_give_the_same_results(tiny_config, fake_datasets, tmp_path):
  devices = jax.devices()[:1]
  a = train.train_and_evaluate(tiny_config, str(tmp_path / 'a'), fake_datasets, devices)
  b = train.train_and_evaluate(tiny_config, str(tmp_path / 'b'), fake_datasets, devices)
  for r in (a, b):
    for key in TIMING_KEYS:
      r.pop(key)
  assert a == b


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_zero_then_resumes(synthetic_data_dir, tmp_path):
  workdir = str(tmp_path / 'w')
  cmd = [sys.executable, '-m', 'gtzan_jax.main', '--config=configs/synthetic.py', f'--workdir={workdir}',
         f'--config.data_dir={synthetic_data_dir}', '--config.vgg.widths=(4,)', '--config.batch_size=16',
         '--config.log_every_steps=2', '--config.num_epochs=1']
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=1')
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lines = []
  for line in proc.stdout:  # wait until training is under way
    lines.append(line)
    if '| loss ' in line:
      proc.send_signal(signal.SIGTERM)
      break
  out = ''.join(lines) + proc.communicate(timeout=300)[0]
  assert proc.returncode == 0, out[-3000:]
  stopped = [l for l in out.splitlines() if l.startswith('Stopped by SIGTERM at step ')]
  assert stopped, out[-3000:]
  step = int(stopped[0].split('at step ')[1].split(';')[0])
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', str(step)))
  assert not os.path.exists(os.path.join(workdir, 'results.json'))

  resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'Resumed from {workdir}/checkpoints/{step}' in resumed.stderr
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['epochs'] == 1.0 and results['steps_trained_this_run'] == results['step'] - step
