"""Fine-tuning the whole pretrained network, gently, from a trained configs/musicnn_probe.py workdir.

  python -m gtzan_jax.main --config=configs/musicnn_probe.py --workdir=runs/probe \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini
  python -m gtzan_jax.main --config=configs/musicnn_finetune.py --workdir=runs/finetune \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini \
      --config.musicnn.init_from=runs/probe

The probe's network, features and prior-and-probe head, started from the probe's trained
weights (`musicnn.init_from`; linear probe then fine-tune), and every step now trains the
network too, on the log-mel patches (not cached embeddings): Adam at 1e-3 for the head and
1e-4 for the network (`backbone_lr_scale` 0.1), its BatchNorm frozen at the MSD statistics
and its dropout off (`freeze_batch_norm`), 2 epochs at batch 32 (50 steps on gtzan_mini's 80
training clips).

Expected result and time: docs/study.md. On a 2-core CPU a step of the whole network takes
seconds (its compilation minutes), so this is a recipe for accelerators; on CPU prefer the probe.
"""

import ml_collections

from configs import musicnn_probe


def get_config() -> ml_collections.ConfigDict:
  config = musicnn_probe.get_config()
  config.musicnn.train_backbone = True
  config.musicnn.backbone_lr_scale = 0.1
  config.musicnn.freeze_batch_norm = True
  config.learning_rate = 1e-3
  config.num_epochs = 2
  return config
