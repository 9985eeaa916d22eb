"""GRU: two bidirectional layers (496 k parameters) over a segment's 173 mel frames; training as configs/paper.py.

  python -m gtzan_jax.main --config=configs/gru.py --workdir=runs/gru \
      --config.manual_dir=/path/to/gtzan --config.gru.pooling=last

Measured (2026-11-28, docs/study.md): 5-fold cross-validation on the 100 real clips of gtzan_mini,
15 epochs: track accuracy 78.0 +- 8.1 % (segment 72.1 +- 7.1 %); folds 1-2 on an H200, 3-5 on a 2-core CPU,
where an epoch of 980 segments took 16-26 s (37-60 examples/s, machine shared).
With one audio-augmented copy per clip: 73.0 +- 11.2 % (docs/study.md).
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'gru'
  config.gru = ml_collections.ConfigDict(dict(
      hidden_size=128, num_layers=2, bidirectional=True, pooling='mean', dropout_rate=0.0))
  return config
