"""The quick embedded run that ./run.sh trains: a small VGG (8-16-32-64), 3 epochs on gtzan_mel/synthetic.

  ./run.sh        # or: python -m gtzan_jax.main --config=configs/synthetic.py --workdir=runs/synthetic

No download or manual_dir: the dataset (200 generated 30 s clips of 10
GTZAN-like classes; 1960 / 420 / 420 segments of 2 s in train / validation /
test, track-disjoint) is built on first use.

Expected result: validation and test accuracy 100 % (420 segments, 30 tracks);
`./run.sh` from a fresh clone took 4 min 18 s on a loaded 2-core CPU, install
included (measured before the max-pool fix; docs/study.md, "History"). Synthetic
accuracy says the pipeline works, nothing about music.
"""

from configs import paper


def get_config():
  config = paper.get_config()
  config.dataset = 'gtzan_mel/synthetic'
  config.vgg.widths = (8, 16, 32, 64)
  config.batch_size = 32
  config.num_epochs = 3
  config.log_every_steps = 20
  return config
