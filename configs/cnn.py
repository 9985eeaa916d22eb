"""A plain small CNN (98.7 k parameters): one conv per stage; training as configs/paper.py.

  python -m gtzan_jax.main --config=configs/cnn.py --workdir=runs/cnn \
      --config.manual_dir=/path/to/gtzan

Measured (2026-11-28, docs/study.md): 5-fold cross-validation on the 100 real clips of gtzan_mini,
15 epochs: track accuracy 75.0 +- 4.5 % (segment 71.9 +- 6.0 %); with one audio-augmented copy per
clip (`--config.augment.audio_copies=1`) 81.0 +- 7.3 %. The fastest family: ~0.25 s per epoch of 980
segments on an H200 shared by 12 runs.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'cnn'
  config.cnn = ml_collections.ConfigDict(dict(
      widths=(16, 32, 64, 128), kernel_size=3, pool_size=2, global_pool='avg', dropout_rate=0.0))
  return config
