"""GRU: two bidirectional layers (496 k parameters) over a segment's 173 mel frames; training as configs/paper.py.

  # Training on full GTZAN (fault_filtered split), here with one override:
  python -m gtzan_jax.main --config=configs/gru.py --workdir=runs/gru \
      --config.manual_dir=/path/to/gtzan --config.gru.pooling=last
  # 5-fold cross-validation on gtzan_mini, 15 epochs per fold (the figure below):
  python -m gtzan_jax.crossval --config=configs/gru.py --workdir=runs/cv_gru \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini \
      --config.num_epochs=15

Expected result. 5-fold stratified, track-disjoint cross-validation on the 100
clips of ../shared/gtzan_mini (fp32, features stored as 8 bits; folds 1-2 on an
H200, 3-5 on a 2-core CPU): track accuracy 78.0 +- 8.1 %, segment 72.1 +- 7.1 %
(last checkpoint); with `--config.augment.audio_copies=1` 73.0 +- 11.2 %
(docs/study.md). The folds share artists, which flatters them (see
configs/default.py). 16-17 s per epoch of 980 segments on the 2-core CPU.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'gru'
  config.gru = ml_collections.ConfigDict(dict(
      hidden_size=128, num_layers=2, bidirectional=True, pooling='mean', dropout_rate=0.0))
  return config
