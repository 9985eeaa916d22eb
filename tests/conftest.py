"""Shared test setup: 8 fake CPU devices (set before JAX is imported) and tiny configs.

Compilation dominates the tests' time (a tiny train_and_evaluate: ~30 s cold,
~4 s warm), so every test process, subprocesses included, shares a persistent
JAX compilation cache under .pytest_cache/.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MINI = os.path.join(os.path.dirname(REPO), 'shared', 'gtzan_mini')

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(REPO, '.pytest_cache', 'jax_compilation_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def fake_split(n: int, seed: int) -> dict[str, np.ndarray]:
  """Random log-mel-like arrays whose label is visible as a band of extra energy."""
  rng = np.random.default_rng(seed)
  label = rng.integers(0, 10, n).astype(np.int32)
  mel = rng.normal(-40.0, 10.0, size=(n, 128, 173))
  for i, y in enumerate(label):
    mel[i, 12 * y:12 * y + 12] += 20.0
  return {'mel': mel.astype(np.float16), 'label': label,
          'track': np.array([f'fake.{i:05d}' for i in range(n)]), 'segment': np.zeros(n, np.int32)}


@pytest.fixture
def fake_datasets():
  return {'train': fake_split(64, 0), 'validation': fake_split(24, 1), 'test': fake_split(24, 2)}


@pytest.fixture
def tiny_config():
  from configs import paper
  config = paper.get_config()
  config.dataset = 'gtzan_mel/synthetic'
  config.vgg.widths = (4, 8)
  config.batch_size = 16
  config.num_epochs = 2
  config.log_every_steps = 2
  return config


@pytest.fixture(scope='session')
def synthetic_data_dir(tmp_path_factory):
  """A TFDS data_dir holding gtzan_mel/synthetic, built once per test session."""
  from tfds_gtzan import data
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  data.get_builder('gtzan_mel/synthetic', data_dir)
  return data_dir
