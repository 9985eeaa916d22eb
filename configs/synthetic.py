"""The quick embedded default that ./run.sh trains: a small VGG on gtzan_mel/synthetic.

No download or manual_dir: the dataset (200 generated 30 s clips of 10
GTZAN-like classes, 2800/600/600... segments in train/validation/test) is built on first use.

Expected accuracy and time: filled in from measured runs only (see below).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset = 'gtzan_mel/synthetic'
  config.vgg.widths = (8, 16, 32, 64)
  config.batch_size = 32
  config.num_epochs = 3
  config.log_every_steps = 20
  return config
