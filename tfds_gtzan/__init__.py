"""GTZAN music-genre clips (or any labelled collection) as 2 s log-mel segments: the TFDS dataset `gtzan_mel`.

Importing this package registers the `gtzan_mel` builder with TFDS:

  import tfds_gtzan  # Registers 'gtzan_mel'.
  builder = tfds.builder('gtzan_mel/tracks', data_dir=D)

`tfds_gtzan.audio` turns audio files into the same features; `tfds_gtzan.data`
reads prepared splits into numpy and batches them. `tfds_gtzan.feature_sets` lists
what a config can store: 'mel' (the paper's 2 s log-mel segments, every built-in
config) and 'musicnn' (the pretrained musicnn networks' 3 s patches:
'gtzan_mel/tracks_musicnn' and the other '<config>_musicnn').
"""

import importlib.util

# TFDS and librosa are dependencies, but a machine without them (e.g. a GPU box
# training from arrays exported elsewhere) can still use `tfds_gtzan.data`'s batching.
if importlib.util.find_spec('tensorflow_datasets') and importlib.util.find_spec('librosa'):
  from tfds_gtzan.gtzan_mel import gtzan_mel_dataset_builder  # Registers 'gtzan_mel'.

  del gtzan_mel_dataset_builder
