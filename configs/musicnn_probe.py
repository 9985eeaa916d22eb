"""The recommended recipe: musicnn's pretrained MSD network, frozen, under a prior-and-probe genre head.

  # Trained on the 80 training clips of gtzan_mini, tested on unheard artists (the figure below):
  python -m gtzan_jax.main --config=configs/musicnn_probe.py --workdir=runs/probe \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini
  python scripts/heldout_eval.py --workdir=runs/probe --audio=../shared/gtzan_heldout
  # 5-fold cross-validation on gtzan_mini:
  python -m gtzan_jax.crossval --config=configs/musicnn_probe.py --workdir=runs/probe_cv \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini

The network is musicnn's MSD_musicnn (Pons & Serra 2019; trained by its authors on the
Million Song Dataset's top-50 last.fm tags; weights from the musicnn 0.1.0 wheel, ISC
licence, `gtzan_jax.pretrained.weights`), read on its own features: 3 s patches of a
16 kHz, 96-band log-mel (`config.features = 'musicnn'`; the dataset builder makes them, 10
patches per 30 s clip). It stays frozen: its embedding of each training patch (50 tag
logits + 1506 pooled features) is computed once, and only the head trains
(`gtzan_jax.pretrained.transfer`): p = (probe + prior) / 2, where the probe is a logistic
layer on the standardised pooled features (L2 0.02) and the prior scores each genre by the
MSD tags that name it (rock <- rock, classic rock, hard rock, ...; disco and reggae have
none). The probe is trained through the mixture, so it learns what the tags miss and keeps
what they know. Adam 1e-2, batch 32, 16 epochs (400 steps), no augmentation.

Expected result (docs/study.md; 2026-12-02, 2-core AMD EPYC CPU shared with other jobs, fp32,
one seed). On music it has not heard: trained on the 80 training clips of gtzan_mel/tracks
over ../shared/gtzan_mini, it classifies **96.7 % (58/60)** of ../shared/gtzan_heldout
(classical 18/20, jazz 20/20, rock 20/20; the two misses are classical called jazz), against
55.0 % for configs/default.py from scratch and 90.0 % for the tags alone, zero-shot.
5-fold stratified, track-disjoint CV on gtzan_mini: track accuracy **90.0 +- 3.2 %** (last
checkpoint; 94.0 +- 3.7 % at the best validation epoch), segment accuracy 83.1 +- 4.3 %
(docs/cv/musicnn_probe_cpu_2026-12-02/); gtzan_mini's folds share artists, so the held-out
figure is the one to trust. Time: the features of gtzan_mini's 100 clips take ~5 s to build;
embedding the training patches once takes 0.5-1.5 min (compilation included, loaded CPU), the
400 head steps ~10 s, and scoring validation/test with the whole network a few seconds each.
"""

import ml_collections

from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.features = 'musicnn'
  config.model = 'musicnn'
  config.musicnn = ml_collections.ConfigDict(dict(
      backbone='MSD_musicnn',
      prior_weight=1.0,        # weight of the tag prior against the probe (0: the probe alone)
      head_l2=0.02,            # L2 on the probe's weights
      train_backbone=False,    # True: fine-tune the network too (configs/musicnn_finetune.py)
      backbone_lr_scale=0.1,   # the network's learning rate / config.learning_rate when fine-tuned
      freeze_batch_norm=True,  # fine-tuning: the network in inference mode (MSD statistics, no dropout)
      init_from='',            # a trained workdir of this model to start from (e.g. a probe, to fine-tune)
  ))
  config.vgg = ml_collections.ConfigDict()
  config.learning_rate = 1e-2
  config.batch_size = 32
  config.num_epochs = 16
  config.log_every_steps = 100
  return config
