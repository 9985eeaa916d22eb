"""GRU: two bidirectional layers (496 k parameters) over a segment's 173 mel frames; training as configs/paper.py.

  python -m gtzan_jax.main --config=configs/gru.py --workdir=runs/gru \
      --config.manual_dir=/path/to/gtzan --config.gru.pooling=last

Expected accuracy and time: not measured yet.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'gru'
  config.gru = ml_collections.ConfigDict(dict(
      hidden_size=128, num_layers=2, bidirectional=True, pooling='mean', dropout_rate=0.0))
  return config
