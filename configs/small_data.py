"""A recipe for few real clips: small VGG (8-16-32-64, 74 k parameters), cosine lr, dropout 0.3, SpecAugment.

  python -m gtzan_jax.crossval --config=configs/small_data.py --workdir=runs/cv --folds=5 \
      --config.manual_dir=../shared/gtzan_mini

configs/paper.py with the VGG at a quarter of its width, batch 32, 15 epochs, a
cosine learning rate, dropout 0.3 and SpecAugment (2 time + 2 frequency masks),
on the `tracks` split.

Expected result. 5-fold stratified, track-disjoint cross-validation on the 100
clips of ../shared/gtzan_mini (fp32, 2-core Intel Xeon CPU): track accuracy
82.0 +- 9.3 %, segment accuracy 75.6 +- 7.4 % (last checkpoint), about 2 min of
training per fold (docs/study.md, docs/cv/small_data_fixed_pool_cpu_2026-11-30/).
No better than configs/default.py within the spread over folds. With
`--config.augment.audio_copies=1 --config.label_smoothing=0.1`: 86.0 +- 2.0 % /
75.6 +- 5.1 %, about 5 min per fold, the best of the 12 arms of docs/study.md but
+3.0 +- 4.0 points over configs/default.py, which 5 folds cannot resolve. The
folds share artists, which flatters them (see configs/default.py); full GTZAN
and held-out tracks are not measured.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.dataset = 'gtzan_mel/tracks'
  config.vgg.widths = (8, 16, 32, 64)
  config.vgg.dropout_rate = 0.3
  config.batch_size = 32
  config.num_epochs = 15
  config.lr_schedule = 'cosine'
  config.augment.time_masks = 2
  config.augment.freq_masks = 2
  config.log_every_steps = 100
  return config
