"""configs/musicnn_probe.py with the whole pretrained network fine-tuned, gently.

  python -m gtzan_jax.main --config=configs/musicnn_finetune.py --workdir=runs/finetune \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini

The same network, features and prior-and-probe head, but every step trains the network too,
on the log-mel patches (not cached embeddings): Adam at 1e-4 for the network
(`backbone_lr_scale` 0.01 of the head's 1e-2), its BatchNorm frozen at the MSD statistics
and its dropout off (`freeze_batch_norm`), 8 epochs at batch 32 (200 steps).

Expected result: see docs/study.md (measured beside the probe on the same data).
"""

import ml_collections

from configs import musicnn_probe


def get_config() -> ml_collections.ConfigDict:
  config = musicnn_probe.get_config()
  config.musicnn.train_backbone = True
  config.musicnn.backbone_lr_scale = 0.01
  config.musicnn.freeze_batch_norm = True
  config.num_epochs = 8
  return config
