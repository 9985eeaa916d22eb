"""The `gtzan_mel` TFDS builder: configs, clip sources, split assignment and featurisation."""
