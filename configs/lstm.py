"""LSTM: two bidirectional layers (660 k parameters) over a segment's 173 mel frames; training as configs/paper.py.

  python -m gtzan_jax.main --config=configs/lstm.py --workdir=runs/lstm \
      --config.manual_dir=/path/to/gtzan --config.lstm.hidden_size=64

Measured (2026-11-28, docs/study.md): 5-fold cross-validation on the 100 real clips of gtzan_mini,
15 epochs: track accuracy 77.0 +- 6.0 % (segment 68.1 +- 7.9 %); folds 1-2 on an H200, 3-5 on a 2-core CPU,
where an epoch of 980 segments took 16-26 s (37-60 examples/s, machine shared).
With one audio-augmented copy per clip: 67.0 +- 12.9 % (worse or equal on every fold; docs/study.md).
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.model = 'lstm'
  config.lstm = ml_collections.ConfigDict(dict(
      hidden_size=128, num_layers=2, bidirectional=True, pooling='mean', dropout_rate=0.0))
  return config
