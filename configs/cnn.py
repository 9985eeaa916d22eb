"""A plain small CNN (98.7 k parameters): one conv per stage; training as configs/paper.py.

  python -m gtzan_jax.main --config=configs/cnn.py --workdir=runs/cnn \
      --config.manual_dir=/path/to/gtzan

Expected accuracy and time: not measured yet.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'cnn'
  config.cnn = ml_collections.ConfigDict(dict(
      widths=(16, 32, 64, 128), kernel_size=3, pool_size=2, global_pool='avg', dropout_rate=0.0))
  return config
