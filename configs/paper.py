"""The paper's recipe: VGG 32-64-128-256 (1.18 M parameters), Adam 1e-3 constant, batch 64, 30 epochs.

  python -m gtzan_jax.main --config=configs/paper.py --workdir=runs/vgg \
      --config.manual_dir=/path/to/gtzan --config.dataset=gtzan_mel/fault_filtered
  # 5-fold cross-validation on gtzan_mini, 15 epochs per fold (the figure below):
  python -m gtzan_jax.crossval --config=configs/paper.py --workdir=runs/cv_vgg \
      --config.dataset=gtzan_mel/tracks --config.manual_dir=../shared/gtzan_mini \
      --config.num_epochs=15

For reproducing the paper; every other config starts from this one and lists
every key with what it does. configs/default.py is the recipe we recommend.

Expected result. 5-fold stratified, track-disjoint cross-validation on the 100
clips of ../shared/gtzan_mini, 15 epochs per fold (fp32, 2-core Intel Xeon CPU):
track accuracy 76.0 +- 11.6 %, segment accuracy 73.2 +- 9.1 % (last checkpoint;
one fold at 55 %; best-by-validation 80.0 +- 8.9 %); with
`--config.augment.audio_copies=1` 81.0 +- 5.8 % / 76.6 +- 5.2 % (docs/study.md).
The folds share artists, which flatters them (see configs/default.py). About
12 min of training per fold there (~22 examples/s; BENCHMARKS.md): 30 epochs of
full GTZAN's ~6.2k training segments would take ~2.6 h (an estimate): use a
GPU (one H200: ~20k examples/s in bf16, ~11k in fp32, BENCHMARKS.md). Full GTZAN
is not measured; published from-scratch CNNs reach ~54 % on its fault-filtered
split, not the 90 %+ of random-segment splits.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Data: a gtzan_mel TFDS config: GTZAN's (synthetic | fault_filtered | tracks | paper) or any labelled
  # collection's (folders | manifest | fma_small | fma_medium | fma_large; README "Train on your own music").
  config.dataset = 'gtzan_mel/fault_filtered'
  config.data_dir = config_dict.placeholder(str)    # TFDS data_dir; None: ~/tensorflow_datasets
  config.manual_dir = config_dict.placeholder(str)  # the audio (GTZAN: genres/<genre>/<genre>.NNNNN.wav)
  # A dataset prepared from other audio than manual_dir holds now is refused with one line; True rebuilds
  # it instead (the old copy is kept until the new one is complete).
  config.rebuild_data = False
  # Collections (folders, manifest, fma_*) only: segments per track, spread over the whole track (0: the
  # dataset's 15; K reads gtzan_mel/<config>_seg<K>). GTZAN's configs take the first 14 of each clip.
  config.segments_per_track = 0
  # Host memory the splits' features may take: 'auto' (a quarter of physical memory) or e.g. '2GB'. A split
  # that does not fit is streamed from the dataset's files batch by batch (same batches as in memory).
  config.memory_budget = 'auto'

  # Model: `config.model` picks the class, the sub-config of the same name its arguments.
  config.model = 'vgg'
  config.vgg = ml_collections.ConfigDict(dict(widths=(32, 64, 128, 256), convs_per_block=2, dropout_rate=0.0))
  config.dtype = 'float32'  # activations; 'bfloat16' keeps float32 params and loss
  config.features = 'mel'  # the dataset's feature set: 'mel' (the paper's) or 'musicnn' (configs/musicnn_probe.py)

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
