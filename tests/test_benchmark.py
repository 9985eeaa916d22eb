"""The benchmark: end to end, its copy of the train step, device-resident epochs, and the PyTorch twin."""

import functools
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import paper
import gtzan_jax
from gtzan_jax import benchmark
from gtzan_jax import models
from gtzan_jax import xla_cpu_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs the benchmark's command line as on an accelerator image that lacks the dataset and audio
# libraries: importing them fails (a None entry in sys.modules makes `import` raise ImportError).
_RUN_WITHOUT_DATASET_LIBRARIES = """
import runpy, sys
for name in ('tensorflow_datasets', 'librosa', 'soundfile'):
  sys.modules[name] = None
sys.argv = ['benchmark'] + sys.argv[1:]
try:
  runpy.run_module('gtzan_jax.benchmark', run_name='__main__')
except SystemExit as e:
  if e.code:
    raise
"""


def _tiny_config(widths=(4, 8)):
  config = paper.get_config()
  config.vgg.widths = widths
  return config


def test_benchmark_runs_end_to_end_without_dataset_libraries(tmp_path):
  out = tmp_path / 'bench.json'
  subprocess.run(
      [sys.executable, '-c', _RUN_WITHOUT_DATASET_LIBRARIES, '--config=configs/paper.py', '--config.vgg.widths=(4,)',
       '--batch_sizes=4', '--steps=1', '--rounds=1', '--nopeer', '--epoch', '--mel=true', f'--out={out}',
       f'--profile_dir={tmp_path / "trace"}'],  # --epoch, --mel: off by default on CPU
      cwd=REPO, check=True, timeout=300)
  results = json.loads(out.read_text())
  assert results['platform'] == 'cpu' and results['batch_size'] == 4 and results['dtype'] == 'float32'
  run = results['runs'][0]
  assert (results['train_examples_per_s'], results['eval_examples_per_s']) == (
      run['train_examples_per_s'], run['eval_examples_per_s'])  # the headline figures are the first run's
  assert results['peer'] is None and results['ratio_vs_peer'] is None  # --nopeer
  # One 3x3 conv 1->4 and one 4->4 over 128 x 173 frames, 4 examples: the forward pass alone is
  # 2 * 128 * 173 * 9 * (4 + 16) * 4 FLOPs; a train step adds the gradients (about twice that again).
  forward = 2 * 128 * 173 * 9 * (4 + 16) * 4
  assert 2 * forward <= run['step_flops'] <= 6 * forward, run['step_flops'] / forward
  assert results['epoch']['max_loss_difference'] < 1e-4
  # Timed: the jnp log-mel (from the device and from the host) and the builder's numpy + scipy one;
  # not librosa, which this process may not import.
  assert set(results['mel']) == {'batch', 'jax_mel_segments_per_s', 'jax_mel_from_host_segments_per_s',
                                 'melspec_one_thread_segments_per_s'}
  profile = results['profile']  # the traced step's heaviest XLA ops
  assert profile and sum(p['share'] for p in profile) <= 1.0 + 1e-6
  assert any(p['name'].startswith('convolution') for p in profile), [p['name'] for p in profile]


@pytest.mark.slow
def test_predict_benchmark_times_the_library_path_beside_the_one_file_paths(tmp_path):
  """--predict --predict_only on a few clips and one song; --predict_before with this checkout as the 'before' one."""
  out = tmp_path / 'predict.json'
  subprocess.run([sys.executable, '-m', 'gtzan_jax.benchmark', '--config=configs/default.py', '--predict',
                  '--predict_only', '--predict_clips=3', '--predict_long_files=1', '--rounds=1',
                  '--predict_pools=thread,process', f'--predict_before={REPO}', f'--out={out}'],
                 cwd=REPO, check=True, timeout=600, env={k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'})
  results = json.loads(out.read_text())
  predict = results['predict']
  assert 'individual_convolution' in results['xla_flags']  # predict's own flags
  assert set(predict['runs']) == {'baseline', 'baseline_one_blas', 'before', 'thread', 'process'}
  assert predict['files_per_s'] == predict['runs']['thread']['files_per_s'] > 0  # the default pool's
  assert predict['baseline_files_per_s'] == predict['runs']['baseline']['files_per_s'] > 0
  for name, run in predict['runs'].items():  # 14 segments a 30 s clip, whichever path
    assert abs(run['segments_per_s'] / run['files_per_s'] - 14) < 0.1, (name, run)
  before = predict['before']
  assert before['checkout'] == REPO and before['files_per_s'] == predict['runs']['before']['files_per_s'] > 0
  assert before['speedup'] == pytest.approx(predict['files_per_s'] / before['files_per_s'])
  assert set(predict['long']['runs']) == {'baseline', 'thread', 'process'}


def test_predict_benchmark_names_a_before_folder_that_is_no_checkout(tmp_path):
  run = subprocess.run([sys.executable, '-m', 'gtzan_jax.benchmark', '--config=configs/default.py', '--predict',
                        '--predict_only', '--predict_clips=1', '--predict_long_files=0', '--rounds=1',
                        f'--predict_before={tmp_path}'], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert run.returncode == 1
  assert f'error: --predict_before: {tmp_path} is not a checkout' in run.stderr.strip().splitlines()[-1]


def test_defaults_time_what_the_trainer_does_on_the_platform(monkeypatch, capsys):
  """On CPU: no device-resident epoch, no jax_mel, the config's batch size; on an accelerator both on."""
  from configs import default
  config = default.get_config()
  auto = {'config': config, 'batch_sizes': None, 'epoch': None, 'mel': None, 'peer': None}
  monkeypatch.setitem(sys.modules, 'torch', None)  # a fresh install: torch is in the bench extra only
  assert not benchmark.torch_available()
  cpu = benchmark.resolve_defaults(auto, 'cpu')
  assert (cpu['epoch'], cpu['mel'], cpu['peer'], cpu['batch_sizes']) == (False, False, False, [config.batch_size])
  assert 'torch is not installed' in capsys.readouterr().out
  gpu = benchmark.resolve_defaults(auto, 'gpu')
  assert (gpu['epoch'], gpu['mel'], gpu['peer'], gpu['batch_sizes']) == (True, True, False, [config.batch_size])
  assert capsys.readouterr().out == ''
  with pytest.raises(ValueError, match='needs torch'):  # asked for explicitly: one line, not an ImportError
    benchmark.resolve_defaults({**auto, 'peer': True}, 'cpu')
  explicit = benchmark.resolve_defaults({**auto, 'epoch': True, 'mel': True, 'batch_sizes': ['64', '256']}, 'cpu')
  assert (explicit['epoch'], explicit['mel'], explicit['batch_sizes']) == (True, True, [64, 256])
  assert benchmark.resolve_defaults({**auto, 'epoch': False, 'mel': False}, 'tpu')['epoch'] is False
  with pytest.raises(ValueError, match='--batch_sizes must be ints > 0, got 0'):
    benchmark.resolve_defaults({**auto, 'batch_sizes': ['0']}, 'cpu')
  monkeypatch.setattr(benchmark, 'torch_available', lambda: True)
  assert benchmark.resolve_defaults(auto, 'cpu')['peer'] is True  # the twin, where it can run
  assert benchmark.FLAGS['config'].default_unparsed == 'configs/default.py'  # the recommended recipe


@pytest.mark.parametrize('argv, expected', [
    ([], None), (['--epoch'], True), (['--noepoch'], False), (['--epoch=false'], False),
    (['--epoch=auto'], None), (['--epoch=1'], True)])
def test_auto_bool_flags_take_auto_and_the_boolean_forms(argv, expected):
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FlagValues()
  benchmark.define_auto_bool('epoch', 'help', flag_values)
  flag_values(['benchmark', *argv])
  assert flag_values.epoch is expected


def test_step_flops_count_the_convolutions():
  """FLOPs of a train step ~ 3x the forward convolutions' multiply-adds x 2, on any backend."""
  batch_size, widths = 4, (4, 8)
  config = _tiny_config(widths)
  state = benchmark.create_state(config, models.create_model(config))
  lowered = jax.jit(benchmark.train_step).lower(state, _batch(batch_size))
  h, w, channels, forward = 128, 173, 1, 0
  for width in widths:
    forward += 2 * 9 * h * w * (channels * width + width * width)  # two 3x3 'SAME' convs
    channels, h, w = width, h // 2, w // 2
  assert 2.5 * batch_size * forward < benchmark._flops(lowered) < 4 * batch_size * forward


def _batch(n, seed=0):
  return jax.device_put(benchmark.random_split(n, seed))


def test_device_resident_epoch_matches_streaming():
  config = _tiny_config()
  model = models.create_model(config)
  data = benchmark.random_split(12, seed=1)
  order = np.random.default_rng((0, 3)).permutation(12).astype(np.int32)
  epoch_fn = benchmark.make_device_epoch_fn(benchmark.train_step)
  resident, resident_metrics = epoch_fn(benchmark.create_state(config, model), jax.device_put(data),
                                        order.reshape(3, 4))
  streamed, streamed_metrics = benchmark.stream_epoch(
      jax.jit(benchmark.train_step), benchmark.create_state(config, model), data, order, batch_size=4)
  assert resident_metrics['loss'].shape == (3,)
  np.testing.assert_allclose(resident_metrics['loss'], streamed_metrics['loss'], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(resident.params), jax.tree.leaves(streamed.params)):
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_max_pool_2x2_matches_flax_after_relu():
  x = jax.nn.relu(jax.random.normal(jax.random.PRNGKey(0), (2, 7, 9, 3)))
  g = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4, 3))
  flax_pool = functools.partial(nn.max_pool, window_shape=(2, 2), strides=(2, 2))
  y, pool_grad = jax.vjp(models.max_pool_2x2, x)
  y_ref, flax_grad = jax.vjp(flax_pool, x)
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_array_equal(pool_grad(g)[0], flax_grad(g)[0])  # ties (the ReLU's zeros) included


def test_torch_peer_has_the_flax_parameter_shapes():
  pytest.importorskip('torch', reason='the PyTorch peer needs the bench extra (torch)')
  from gtzan_jax import torch_peer
  config = paper.get_config()
  variables = jax.eval_shape(functools.partial(models.create_model(config).init, train=False),
                             jax.random.PRNGKey(0), jnp.zeros((1, 128, 173)))
  flax_sizes = sorted(x.size for x in jax.tree.leaves(variables['params']))
  peer = torch_peer.VGG(config.vgg.widths)
  assert sorted(p.numel() for p in peer.parameters()) == flax_sizes
  assert torch_peer.num_params(peer) == sum(flax_sizes)
  print('parameters: flax', sum(flax_sizes), 'torch', torch_peer.num_params(peer))


@pytest.mark.parametrize('env, expected', [
    ({}, ' '.join(gtzan_jax.CPU_XLA_FLAGS)),  # added on import
    ({'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'},  # a flag already set keeps its value
     '--xla_cpu_experimental_ynn_fusion_type=dot ' + ' '.join(gtzan_jax.CPU_XLA_FLAGS[1:])),
    ({'GTZAN_JAX_TUNE_XLA': '0', 'XLA_FLAGS': '--xla_dump_to=/x'}, '--xla_dump_to=/x'),
])
def test_importing_gtzan_jax_tunes_xla_cpu_unless_told_otherwise(env, expected):
  clean = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'GTZAN_JAX_TUNE_XLA')}
  out = subprocess.run([sys.executable, '-c', 'import os, gtzan_jax; print(os.environ.get("XLA_FLAGS"))'],
                       cwd=REPO, env={**clean, **env}, check=True, capture_output=True, text=True).stdout
  assert out.strip() == expected


@pytest.mark.parametrize('env, expected', [
    ({}, f'{xla_cpu_flags.INFERENCE_XLA_FLAG} {" ".join(gtzan_jax.CPU_XLA_FLAGS[1:])} '
         f'--xla_force_host_platform_device_count={os.cpu_count()}'),
    ({'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=dot'},  # the user's YNNPACK flag stays theirs
     f'--xla_cpu_experimental_ynn_fusion_type=dot {" ".join(gtzan_jax.CPU_XLA_FLAGS[1:])} '
     f'--xla_force_host_platform_device_count={os.cpu_count()}'),
    ({'GTZAN_JAX_TUNE_XLA': '0'}, f'--xla_force_host_platform_device_count={os.cpu_count()}'),
])
def test_a_tagging_process_takes_the_inference_flags(env, expected):
  """predict's command line: YNNPACK's convolutions instead of training's flag, and one CPU device per core."""
  clean = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'GTZAN_JAX_TUNE_XLA')}
  code = ('import os, gtzan_jax; from gtzan_jax import tagging; tagging.set_inference_flags(); '
          'print(os.environ.get("XLA_FLAGS"))')
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO, env={**clean, **env}, check=True,
                       capture_output=True, text=True).stdout
  assert out.strip() == expected


def test_conv_bound_finds_every_convolution_of_the_model_in_order():
  """scripts/conv_bound.py times the model's own convolutions: right shapes, same outputs."""
  sys.path.insert(0, os.path.join(REPO, 'scripts'))
  try:
    import conv_bound  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  config = paper.get_config()
  config.vgg.widths = (4, 8)
  convs = conv_bound.model_convolutions(config, batch_size=2)
  assert models.conv_general_dilated.__name__ == 'conv_general_dilated'  # restored
  assert [(x, k) for x, k, _ in convs] == [
      ((2, 128, 173, 1), (3, 3, 1, 4)), ((2, 128, 173, 4), (3, 3, 4, 4)),
      ((2, 64, 86, 4), (3, 3, 4, 8)), ((2, 64, 86, 8), (3, 3, 8, 8))]
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 64, 86, 4))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 8))
  np.testing.assert_allclose(convs[2][2](x, kernel), nn.Conv(8, (3, 3), use_bias=False).apply(
      {'params': {'kernel': kernel}}, x), rtol=1e-5, atol=1e-5)


def test_build_timer_times_the_base_and_the_augmented_build(tmp_path):
  import fake_gtzan  # pylint: disable=g-import-not-at-top
  manual_dir = fake_gtzan.write_fake_gtzan(tmp_path / 'gtzan')
  build = benchmark.build_segments_per_s(0, str(manual_dir), copies=2)
  readable = len(fake_gtzan.GENRES) * fake_gtzan.CLIPS_PER_GENRE  # and the 1 s clip, with no segment
  assert build['clips'] == readable + 1 and build['segments'] == readable * fake_gtzan.SEGMENTS_PER_CLIP
  augmented = build['augmented']
  assert augmented['copies'] == 2
  # The base segments plus two copies of each training clip's (a sped-up copy may have fewer).
  assert augmented['augmented_segments'] > 0
  assert augmented['segments'] == build['segments'] + augmented['augmented_segments']
  assert 'The same with 2 augmented copies' in benchmark.markdown({
      **{key: None for key in ('epoch', 'recipe', 'mel')}, 'date': '', 'platform': 'cpu',
      'device_kind': 'cpu', 'load_average': [0.0], 'cpu_count': 2, 'runs': [], 'peer': None,
      'build': build, 'peak_device_memory_mb': None, 'peak_host_memory_mb': 1.0})
