"""The paper's recipe: VGG 32-64-128-256 (1.18 M parameters), Adam 1e-3 constant, batch 64, 30 epochs.

  python -m gtzan_jax.main --config=configs/paper.py --workdir=runs/vgg \
      --config.manual_dir=/path/to/gtzan --config.dataset=gtzan_mel/fault_filtered

The reference for the paper's study (configs/cnn.py, lstm.py and gru.py train
the other families the same way). configs/default.py is the recipe we
recommend; it starts from this one.

Measured (2026-11-30, a 2-core CPU, fp32; docs/study.md): 5-fold stratified,
track-disjoint cross-validation over the 100 real clips of gtzan_mini, 15
epochs per fold: track accuracy 76.0 +- 11.6 %, segment accuracy 73.2 +- 9.1 %
(last checkpoint; one fold fell to 55 % at its last epoch; best-by-validation
80.0 +- 8.9 %); with one audio-augmented copy of each training clip
(`--config.augment.audio_copies=1`) 81.0 +- 5.8 % / 76.6 +- 5.2 %. Before
the 2026-11-30 max-pool gradient fix (one NVIDIA H200, 2026-11-28): 79.0 +-
7.3 % and 82.0 +- 11.2 %. Training
runs at ~20k examples/s in bf16 and ~11k in fp32 at batch 64 on that chip
(BENCHMARKS.md), but ~20/s on an idle 2-core CPU of our CI machines (30 epochs
of full GTZAN's ~6.2k training segments: ~2.6 h): use a GPU.

Full GTZAN (fault_filtered: 443 training tracks, ~6.2k segments) has not been
measured here (it cannot be downloaded in our environment). Published
from-scratch CNNs reach about 54 % track accuracy on that split; expect
that order, not the 90 %+ of random-segment splits.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Data: a gtzan_mel TFDS config (synthetic | fault_filtered | tracks | paper).
  config.dataset = 'gtzan_mel/fault_filtered'
  config.data_dir = config_dict.placeholder(str)    # TFDS data_dir; None: ~/tensorflow_datasets
  config.manual_dir = config_dict.placeholder(str)  # GTZAN folder (genres/<genre>/<genre>.NNNNN.wav)

  # Model: `config.model` picks the class, the sub-config of the same name its arguments.
  config.model = 'vgg'
  config.vgg = ml_collections.ConfigDict(dict(widths=(32, 64, 128, 256), convs_per_block=2, dropout_rate=0.0))
  config.dtype = 'float32'  # activations; 'bfloat16' keeps float32 params and loss

  # Augmentation of the training split only (validation and test are never augmented).
  # Audio (the paper's; slow, so materialised by the builder as `audio_copies` seeded copies per
  # training clip): additive noise, pitch shift then time stretch back to the clip's length, each
  # applied with its probability. Spectrogram (on device, inside the jitted step): SpecAugment
  # time/frequency masks and mixup.
  config.augment = ml_collections.ConfigDict(dict(
      audio_copies=0,          # 0: off; K: K augmented copies of every training clip besides the original
      seed=0,                  # seed of the audio augmentation (the builder's; copies are deterministic)
      noise_prob=0.5,          # probability of additive Gaussian noise
      noise_level=0.005,       # noise std relative to the clip's peak amplitude
      pitch_prob=0.5,          # probability of pitch shift + time stretch
      pitch_semitones=2.0,     # shift drawn uniformly from [-x, x] semitones
      stretch_range=0.1,       # stretch rate drawn from [1 - x, 1 + x], then the clip is cut/padded back
      time_masks=0,            # SpecAugment: masks per example along time (0: off)
      time_mask_width=20,      # widest time mask, in frames (of 173)
      freq_masks=0,            # SpecAugment: masks per example along mel bands (0: off)
      freq_mask_width=16,      # widest frequency mask, in mel bands (of 128)
      mixup_alpha=0.0,         # mixup Beta(alpha, alpha) (0: off)
  ))

  # Optimisation: the paper's Adam at 1e-3, batch 64 (global: split over all devices).
  config.batch_size = 64
  config.eval_batch_size = 0  # 0: same as batch_size
  config.learning_rate = 1e-3
  config.lr_schedule = 'constant'  # or 'cosine'
  config.warmup_epochs = 0.0
  config.weight_decay = 0.0
  config.label_smoothing = 0.0
  config.num_epochs = 30

  # Execution.
  config.parallelism = 'jit'  # or 'pmap'
  # 'auto': on accelerators, keep the training split on the devices and run each epoch as one
  # compiled program when it fits (a quarter of device memory); 'on' forces it (on CPU ~17x slower:
  # BENCHMARKS.md), 'off'
  # streams batches from the host. Device-resident epochs check SIGTERM and NaN at epoch ends.
  config.device_resident = 'auto'
  config.seed = 0
  config.log_every_steps = 50
  config.checkpoint_every_steps = 0  # 0: checkpoint at the end of every epoch only
  config.keep_checkpoints = 3
  # Persistent XLA compilation cache ('' off): a later run of the same step loads it from here
  # instead of compiling. JAX_COMPILATION_CACHE_DIR, when set, wins.
  config.compilation_cache_dir = '~/.cache/gtzan_jax/jax_compilation_cache'
  return config
