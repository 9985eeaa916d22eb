"""A plain small CNN (98.7 k parameters): one conv per stage; training as configs/paper.py.

  # Training on full GTZAN (fault_filtered split):
  python -m gtzan_jax.main --config=configs/cnn.py --workdir=runs/cnn \
      --config.manual_dir=/path/to/gtzan
  # 5-fold cross-validation on gtzan_mini, 15 epochs per fold (the figure below):
  python -m gtzan_jax.crossval --config=configs/cnn.py --workdir=runs/cv_cnn \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini \
      --config.num_epochs=15

Expected result. 5-fold stratified, track-disjoint cross-validation on the 100
clips of ../shared/gtzan_mini (fp32, one H200, features stored as 8 bits):
track accuracy 75.0 +- 4.5 %, segment 71.9 +- 6.0 % (last checkpoint); with
`--config.augment.audio_copies=1` 81.0 +- 7.3 % (docs/study.md). The folds share
artists, which flatters them (see configs/default.py). The fastest family:
~0.25 s per epoch of 980 segments on an H200 shared by 12 runs.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'cnn'
  config.cnn = ml_collections.ConfigDict(dict(
      widths=(16, 32, 64, 128), kernel_size=3, pool_size=2, global_pool='avg', dropout_rate=0.0))
  return config
